// Recording decorators of the engine's kernel seams (engine/kernel.h) and its cgroup driver:
// each logs its typed calls, in order, into one CallLog ("cgroup.create stack/p/c", "clone
// flags=PID|NS|UTS|IPC|NET", "send config 1234 bytes", "expect READY") and can fail the Nth
// call of a kind, then delegates to an inner implementation: the simulated kernel of
// fake_engine_kernel.h in unit tests, the real one in the contract test (root).
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/cgroup.h"
#include "engine/kernel.h"
#include "engine/wire.h"

namespace stack::test {

class CallLog {
 public:
  std::vector<std::string> calls;      // "kind args", in order
  std::map<std::string, int> fail_on;  // {"cgroup.attach", 1}: the 1st such call fails
  // The scenario's hand, not the engine's: the init exits just before the Nth "expect", and
  // whatever it had answered is lost, as when an init crashes.
  int init_exits_before_expect = 0;

  // Records the call; the injected failure when it is the Nth call of KIND.
  std::optional<Error> record(const std::string& kind, const std::string& args = "") {
    calls.push_back(args.empty() ? kind : kind + " " + args);
    auto it = fail_on.find(kind);
    if (it != fail_on.end() && it->second == static_cast<int>(count(kind)))
      return Error{kind + ": injected failure", EIO};
    return std::nullopt;
  }
  [[nodiscard]] size_t count(const std::string& kind) const {
    return static_cast<size_t>(std::count_if(calls.begin(), calls.end(), [&](const auto& c) {
      return c == kind || c.rfind(kind + " ", 0) == 0;
    }));
  }

  // A name that differs between worlds (a PID, a temp dir, a cgroup) shown as the same word;
  // byte counts show as "N bytes". What a fake and the real kernel must agree on.
  void alias(const std::string& from, const std::string& to) {
    static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
    aliases_.emplace_back(
        std::regex("(^|[ =])" + std::regex_replace(from, special, R"(\$&)") + "(?=$|[ /])"), to);
  }
  [[nodiscard]] std::string normalise(std::string c) const {
    static const std::regex bytes(R"(\b\d+ bytes\b)");
    c = std::regex_replace(c, bytes, "N bytes");  // first: a count may look like a PID
    for (const auto& [from, to] : aliases_) c = std::regex_replace(c, from, "$1" + to);
    return c;
  }
  [[nodiscard]] std::vector<std::string> normalised() const {
    std::vector<std::string> out;
    for (const auto& c : calls) out.push_back(normalise(c));
    return out;
  }
  // The calls from the Nth on (0-based), normalised.
  [[nodiscard]] std::vector<std::string> since(size_t n) const {
    auto all = normalised();
    return {all.begin() + static_cast<ptrdiff_t>(std::min(n, all.size())), all.end()};
  }
  void reset() {
    calls.clear();
    fail_on.clear();
    init_exits_before_expect = 0;
  }

 private:
  std::vector<std::pair<std::regex, std::string>> aliases_;
};

// How a scenario makes an init exit, outside the engine (so unrecorded): killed, and waited
// for until it is a zombie still to be reaped by the engine.
class InitKiller {
 public:
  virtual ~InitKiller() = default;
  virtual void kill_and_wait(pid_t pid) = 0;
};

class RecordingCgroups final : public engine::CgroupDriver {
 public:
  RecordingCgroups(engine::CgroupDriver& inner, CallLog& log) : inner_(inner), log_(log) {}
  std::string_view name() const override { return inner_.name(); }
  Result<void> create(const std::string& path, const engine::CgroupLimits& limits) override {
    if (auto f = log_.record("cgroup.create", path)) return fail(*f);
    return inner_.create(path, limits);
  }
  Result<void> attach(const std::string& path, pid_t pid) override {
    if (auto f = log_.record("cgroup.attach", path + " " + std::to_string(pid))) return fail(*f);
    return inner_.attach(path, pid);
  }
  Result<uint64_t> oom_kills(const std::string& path) override {
    if (auto f = log_.record("cgroup.oom_kills", path)) return fail(*f);
    return inner_.oom_kills(path);
  }
  Result<std::vector<pid_t>> pids(const std::string& path) override {
    if (auto f = log_.record("cgroup.pids", path)) return fail(*f);
    return inner_.pids(path);
  }
  Result<engine::CgroupStats> stats(const std::string& path) override {
    if (auto f = log_.record("cgroup.stats", path)) return fail(*f);
    return inner_.stats(path);
  }
  Result<void> freeze(const std::string& path, bool frozen) override {
    if (auto f = log_.record(frozen ? "cgroup.freeze" : "cgroup.thaw", path)) return fail(*f);
    return inner_.freeze(path, frozen);
  }
  Result<bool> frozen(const std::string& path) override { return inner_.frozen(path); }
  Result<void> remove(const std::string& path) override {
    if (auto f = log_.record("cgroup.remove", path)) return fail(*f);
    return inner_.remove(path);
  }
  Result<void> check_writable() const override { return inner_.check_writable(); }

 private:
  engine::CgroupDriver& inner_;
  CallLog& log_;
};

// One init's control socket: "send config N bytes" / "send GO", and "expect READY" / "expect
// STARTED" for what the engine waits for at that point of the protocol.
class RecordingChannel final : public engine::InitChannel {
 public:
  RecordingChannel(std::unique_ptr<engine::InitChannel> inner, pid_t pid, bool exec_mode,
                   CallLog& log, InitKiller& killer)
      : inner_(std::move(inner)), pid_(pid), exec_(exec_mode), log_(log), killer_(killer) {}

  Result<void> send(std::string_view message) override {
    bool go = false;
    if (message.size() >= 4)
      if (auto r = engine::wire::decode(message.substr(4)); r && !r->empty())
        go = r->front().tag == W_GO;
    std::string what = go ? "GO"
                          : std::string(exec_ ? "exec config " : "config ") +
                                std::to_string(message.size()) + " bytes";
    if (auto f = log_.record("send", what)) return fail(*f);
    expect_ = go || exec_ ? "STARTED" : "READY";
    return inner_->send(message);
  }
  Result<std::string> receive(std::chrono::milliseconds timeout) override {
    if (auto f = log_.record("expect", expect_)) return fail(*f);
    if (log_.init_exits_before_expect == static_cast<int>(log_.count("expect"))) {
      killer_.kill_and_wait(pid_);
      // What it may have answered before it died is dropped: the engine sees the exit.
      if (auto lost = inner_->receive(timeout); !lost) return lost;
    }
    return inner_->receive(timeout);
  }

 private:
  std::unique_ptr<engine::InitChannel> inner_;
  pid_t pid_;
  bool exec_;
  CallLog& log_;
  InitKiller& killer_;
  std::string expect_ = "READY";
};

class RecordingLauncher final : public engine::InitLauncher {
 public:
  RecordingLauncher(engine::InitLauncher& inner, CallLog& log, InitKiller& killer)
      : inner_(inner), log_(log), killer_(killer) {}
  std::vector<pid_t> launched;  // every init started, in order

  Result<engine::LaunchedInit> launch(const std::filesystem::path& init,
                                      const engine::InitLaunch& how) override {
    bool exec_mode = how.mode == engine::InitLaunch::Mode::kExec;
    std::string args = exec_mode ? "exec" : "flags=" + engine::namespace_names(how.namespaces);
    if (!how.join_netns.empty()) args += " netns=" + how.join_netns.string();
    if (how.userns_fd >= 0) args += " userns";
    if (auto f = log_.record("clone", args)) return fail(*f);
    auto r = inner_.launch(init, how);
    if (!r) return r;
    launched.push_back(r->pid);
    log_.alias(std::to_string(r->pid), "PID");
    r->ctl =
        std::make_unique<RecordingChannel>(std::move(r->ctl), r->pid, exec_mode, log_, killer_);
    return r;
  }

 private:
  engine::InitLauncher& inner_;
  CallLog& log_;
  InitKiller& killer_;
};

class RecordingProcesses final : public engine::Processes {
 public:
  RecordingProcesses(engine::Processes& inner, CallLog& log) : inner_(inner), log_(log) {}
  Result<UniqueFd> open_pidfd(pid_t pid) override {
    if (auto f = log_.record("pidfd_open", std::to_string(pid))) return fail(*f);
    return inner_.open_pidfd(pid);
  }
  uint64_t start_time(pid_t pid) override {
    log_.record("start_time", std::to_string(pid));
    return inner_.start_time(pid);
  }
  Result<UniqueFd> open_netns(pid_t pid) override {
    if (auto f = log_.record("netns_open", std::to_string(pid))) return fail(*f);
    return inner_.open_netns(pid);
  }
  void kill(pid_t pid, int pidfd) override {
    log_.record("kill", std::to_string(pid) + (pidfd >= 0 ? " pidfd" : ""));
    inner_.kill(pid, pidfd);
  }
  void reap(pid_t pid) override {
    log_.record("reap", std::to_string(pid));
    inner_.reap(pid);
  }

 private:
  engine::Processes& inner_;
  CallLog& log_;
};

class RecordingFiles final : public engine::ContainerFiles {
 public:
  RecordingFiles(engine::ContainerFiles& inner, CallLog& log) : inner_(inner), log_(log) {}
  Result<void> make_dir(const std::filesystem::path& dir, unsigned mode) override {
    char m[8];
    std::snprintf(m, sizeof m, "%04o", mode);
    if (auto f = log_.record("mkdir", dir.string() + " " + m)) return fail(*f);
    return inner_.make_dir(dir, mode);
  }
  Result<void> write(const std::filesystem::path& file, std::string_view content) override {
    if (auto f =
            log_.record("write", file.string() + " " + std::to_string(content.size()) + " bytes"))
      return fail(*f);
    return inner_.write(file, content);
  }
  void remove(const std::filesystem::path& file) override {
    log_.record("unlink", file.string());
    inner_.remove(file);
  }
  Result<UniqueFd> open_dir(const std::filesystem::path& dir) override {
    if (auto f = log_.record("opendir", dir.string())) return fail(*f);
    return inner_.open_dir(dir);
  }

 private:
  engine::ContainerFiles& inner_;
  CallLog& log_;
};

class RecordingUserns final : public engine::UserNamespaces {
 public:
  RecordingUserns(engine::UserNamespaces& inner, CallLog& log) : inner_(inner), log_(log) {}
  Result<UniqueFd> make(const model::IdMapping& map) override {
    if (auto f = log_.record("userns.make", std::to_string(map.uid_base) + ":" +
                                                std::to_string(map.gid_base) + ":" +
                                                std::to_string(map.count)))
      return fail(*f);
    return inner_.make(map);
  }
  Result<UniqueFd> open(const std::filesystem::path& ns) override {
    if (auto f = log_.record("userns.open", ns.string())) return fail(*f);
    return inner_.open(ns);
  }
  Result<void> own_for(const std::filesystem::path& dir, const model::IdMapping& map) override {
    if (auto f = log_.record("userns.own", dir.string())) return fail(*f);
    return inner_.own_for(dir, map);
  }
  bool idmap_supported(const std::filesystem::path& layer, int userns_fd) override {
    log_.record("userns.idmap", layer.string());
    return inner_.idmap_supported(layer, userns_fd);
  }
  Result<std::filesystem::path> shifted_layer(const std::filesystem::path& layer,
                                              const model::IdMapping& map,
                                              const std::filesystem::path& cache) override {
    if (auto f = log_.record("userns.shift", layer.string())) return fail(*f);
    return inner_.shifted_layer(layer, map, cache);
  }
  bool in_other(pid_t pid) override {
    log_.record("userns.other", std::to_string(pid));
    return inner_.in_other(pid);
  }

 private:
  engine::UserNamespaces& inner_;
  CallLog& log_;
};

// Every seam and the cgroup driver recorded into one log, over INNER.
class RecordingKernel {
 public:
  RecordingKernel(engine::KernelSeams inner, engine::CgroupDriver& inner_cgroups,
                  InitKiller& killer)
      : cgroups_(inner_cgroups, log),
        launcher_(inner.launcher, log, killer),
        processes_(inner.processes, log),
        files_(inner.files, log),
        userns_(inner.userns, log) {}
  RecordingKernel(const RecordingKernel&) = delete;
  RecordingKernel& operator=(const RecordingKernel&) = delete;

  CallLog log;
  engine::KernelSeams seams() { return {launcher_, processes_, files_, userns_}; }
  engine::CgroupDriver& cgroups() { return cgroups_; }
  [[nodiscard]] const std::vector<pid_t>& launched() const { return launcher_.launched; }

 private:
  RecordingCgroups cgroups_;
  RecordingLauncher launcher_;
  RecordingProcesses processes_;
  RecordingFiles files_;
  RecordingUserns userns_;
};

}  // namespace stack::test
