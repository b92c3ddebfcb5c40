// The engine's kernel without a kernel, for unit tests: a simulated world (processes, cgroups,
// the container directory, stack-init's side of the control socket) behind the seams of
// engine/kernel.h, seen through the recording decorators of engine_recorder.h. Nothing here
// touches the host beyond opening /dev/null (the descriptors handed out) and a memfd. The
// simulated init decodes the engine's configuration with the init's own decoder
// (stack_init_config) and answers in the wire format (wire_put, as the init does).
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/cgroup.h"
#include "engine/kernel.h"
#include "engine/wire.h"
#include "support/engine_recorder.h"

extern "C" {
#include "engine/init/init.h"
}

namespace stack::test {

struct SimWorld {
  struct Proc {
    bool ours = false;  // our child (an init): the engine must reap it
    pid_t init = 0;     // a service: the init whose PID namespace it lives in
    uint64_t start_time = 0;
    bool exited = false, reaped = false;
  };
  // How the inits launched from now on answer: READY / STARTED, ERROR with TEXT (and exit),
  // or exit without a word.
  struct Reply {
    enum Kind { kOk, kError, kExit } kind = kOk;
    std::string text;
  };

  pid_t next_pid = 4242;
  std::map<pid_t, Proc> procs;
  std::map<std::string, std::set<pid_t>> cgroups;  // path -> member PIDs
  std::map<std::string, engine::CgroupLimits> limits;
  std::set<std::filesystem::path> dirs;
  std::map<std::filesystem::path, std::string> files;
  std::vector<std::string> configs;  // every configuration an init accepted, whole messages
  Reply ready, started;
  bool idmap = true;  // what idmap_supported answers
  // What the real kernel would punish: a reap that blocks forever, a kill of a reaped PID.
  std::vector<std::string> violations;

  [[nodiscard]] bool alive(pid_t pid) const {
    auto it = procs.find(pid);
    return it != procs.end() && !it->second.exited;
  }
  pid_t spawn(bool ours, pid_t init = 0) {
    pid_t pid = next_pid++;
    procs[pid] = Proc{ours, init, 1000u + static_cast<uint64_t>(pid), false, false};
    return pid;
  }
  // A process exits: it leaves its cgroups; when it is an init, its PID namespace goes with
  // it. Others than ours are reaped by their parents.
  void exit(pid_t pid) {
    auto it = procs.find(pid);
    if (it == procs.end() || it->second.exited) return;
    it->second.exited = true;
    if (!it->second.ours) it->second.reaped = true;
    for (auto& [_, members] : cgroups) members.erase(pid);
    for (auto& [other, p] : procs)
      if (p.init == pid) exit(other);
  }
  // The service an init forks: in its init's cgroups.
  pid_t fork_service(pid_t init) {
    pid_t svc = spawn(false, init);
    for (auto& [_, members] : cgroups)
      if (members.count(init)) members.insert(svc);
    return svc;
  }
  [[nodiscard]] std::vector<pid_t> unreaped() const {
    std::vector<pid_t> out;
    for (const auto& [pid, p] : procs)
      if (p.ours && !p.reaped) out.push_back(pid);
    return out;
  }
};

inline UniqueFd sim_fd() { return UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }

class SimCgroups final : public engine::CgroupDriver {
 public:
  explicit SimCgroups(SimWorld& w) : w_(w) {}
  std::string_view name() const override { return "sim"; }
  Result<void> create(const std::string& path, const engine::CgroupLimits& limits) override {
    w_.cgroups[path];
    w_.limits[path] = limits;
    return {};
  }
  Result<void> attach(const std::string& path, pid_t pid) override {
    if (!w_.cgroups.count(path)) return fail("cgroup sim: " + path + ": no such cgroup", ENOENT);
    auto it = w_.procs.find(pid);
    if (it == w_.procs.end() || it->second.reaped)
      return fail("cgroup sim: attach " + std::to_string(pid) + ": No such process", ESRCH);
    if (it->second.exited) return {};  // a zombie: the write succeeds, and moves nothing
    for (auto& [_, members] : w_.cgroups) members.erase(pid);
    w_.cgroups[path].insert(pid);
    return {};
  }
  Result<uint64_t> oom_kills(const std::string&) override { return 0; }
  Result<std::vector<pid_t>> pids(const std::string& path) override {
    auto it = w_.cgroups.find(path);
    if (it == w_.cgroups.end()) return fail("cgroup sim: " + path + ": no such cgroup", ENOENT);
    return std::vector<pid_t>(it->second.begin(), it->second.end());
  }
  Result<engine::CgroupStats> stats(const std::string&) override { return engine::CgroupStats{}; }
  Result<void> freeze(const std::string& path, bool frozen) override {
    if (!w_.cgroups.count(path)) return fail("cgroup sim: " + path + ": no such cgroup", ENOENT);
    if (frozen) frozen_.insert(path);
    else frozen_.erase(path);
    return {};
  }
  Result<bool> frozen(const std::string& path) override { return frozen_.count(path) > 0; }
  Result<void> remove(const std::string& path) override {
    auto it = w_.cgroups.find(path);
    if (it == w_.cgroups.end()) return {};
    if (!it->second.empty()) return fail("cgroup sim: remove " + path + ": busy", EBUSY);
    w_.cgroups.erase(it);
    w_.limits.erase(path);
    return {};
  }
  Result<void> check_writable() const override { return {}; }

 private:
  std::set<std::string> frozen_;
  SimWorld& w_;
};

// stack-init's side of one control socket, as init.c runs it: the configuration (decoded by
// the init's read_config), READY, GO (exactly one empty record, or it exits), STARTED, then
// the socket closed. An ERROR reply is followed by the init's exit.
class SimInitChannel final : public engine::InitChannel {
 public:
  SimInitChannel(SimWorld& w, pid_t pid, bool exec_mode) : w_(w), pid_(pid), exec_(exec_mode) {}

  Result<void> send(std::string_view message) override {
    if (!w_.alive(pid_) || state_ == kClosed)
      return fail("send to container init: Broken pipe", EPIPE);
    if (state_ == kConfig) {
      std::string err;
      if (!decodes(message, err)) {
        answer({SimWorld::Reply::kError, err}, W_ERROR);
        return {};
      }
      w_.configs.emplace_back(message);
      state_ = exec_ ? kClosed : kWaitGo;
      answer(exec_ ? w_.started : w_.ready, exec_ ? W_STARTED : W_READY);
      return {};
    }
    state_ = kClosed;
    if (!is_go(message))
      w_.exit(pid_);  // wait_go() failed: the init returns 1
    else
      answer(w_.started, W_STARTED);
    return {};
  }
  Result<std::string> receive(std::chrono::milliseconds timeout) override {
    if (!replies_.empty()) {
      auto r = std::move(replies_.front());
      replies_.pop_front();
      return r;
    }
    if (!w_.alive(pid_) || state_ == kClosed) return fail("container init exited during setup");
    return fail("container init did not answer within " + std::to_string(timeout.count()) + " ms");
  }

 private:
  enum State { kConfig, kWaitGo, kClosed };

  static std::string reply(uint16_t tag, const void* val, uint32_t len) {
    std::string body(6 + len, '\0');
    size_t used = 0;
    wire_put(reinterpret_cast<unsigned char*>(body.data()), body.size(), &used, tag, val, len);
    return body;
  }
  void answer(const SimWorld::Reply& how, uint16_t tag) {
    if (how.kind == SimWorld::Reply::kExit) return w_.exit(pid_);
    if (how.kind == SimWorld::Reply::kError || tag == W_ERROR) {
      replies_.push_back(reply(W_ERROR, how.text.data(), static_cast<uint32_t>(how.text.size())));
      return w_.exit(pid_);
    }
    if (tag == W_READY) return replies_.push_back(reply(W_READY, nullptr, 0));
    uint32_t svc = static_cast<uint32_t>(w_.fork_service(pid_));
    unsigned char le[4] = {static_cast<unsigned char>(svc), static_cast<unsigned char>(svc >> 8),
                           static_cast<unsigned char>(svc >> 16),
                           static_cast<unsigned char>(svc >> 24)};
    replies_.push_back(reply(W_STARTED, le, 4));
  }
  // The init's own decoder, reading the message as it reads its socket.
  static bool decodes(std::string_view message, std::string& err) {
    UniqueFd fd(::memfd_create("stack-sim-config", MFD_CLOEXEC));
    if (!fd ||
        ::write(fd.get(), message.data(), message.size()) != static_cast<ssize_t>(message.size()) ||
        ::lseek(fd.get(), 0, SEEK_SET) != 0) {
      err = "sim: memfd";
      return false;
    }
    config cfg{};
    char buf[4096] = "";
    int rc = read_config(fd.get(), &cfg, buf, sizeof buf);
    err = buf;
    if (rc == 0) release_config(&cfg);
    return rc == 0;
  }
  static bool is_go(std::string_view message) {
    if (message.size() < 4) return false;
    auto r = engine::wire::decode(message.substr(4));
    return r && r->size() == 1 && r->front().tag == W_GO && r->front().value.empty();
  }

  SimWorld& w_;
  pid_t pid_;
  bool exec_;
  State state_ = kConfig;
  std::deque<std::string> replies_;
};

class SimLauncher final : public engine::InitLauncher {
 public:
  explicit SimLauncher(SimWorld& w) : w_(w) {}
  Result<engine::LaunchedInit> launch(const std::filesystem::path&,
                                      const engine::InitLaunch& how) override {
    bool exec_mode = how.mode == engine::InitLaunch::Mode::kExec;
    if (how.fd4 < 0) w_.violations.push_back("init launched without its fd 4");
    pid_t pid = w_.spawn(true);
    return engine::LaunchedInit{pid, std::make_unique<SimInitChannel>(w_, pid, exec_mode)};
  }

 private:
  SimWorld& w_;
};

class SimProcesses final : public engine::Processes {
 public:
  explicit SimProcesses(SimWorld& w) : w_(w) {}
  Result<UniqueFd> open_pidfd(pid_t pid) override {
    auto it = w_.procs.find(pid);
    if (it == w_.procs.end() || it->second.reaped)
      return fail("pidfd_open " + std::to_string(pid) + ": No such process", ESRCH);
    return sim_fd();
  }
  uint64_t start_time(pid_t pid) override {
    auto it = w_.procs.find(pid);
    return it == w_.procs.end() || it->second.reaped ? 0 : it->second.start_time;
  }
  Result<UniqueFd> open_netns(pid_t pid) override {
    if (!w_.alive(pid))
      return fail("open /proc/" + std::to_string(pid) + "/ns/net: No such file or directory",
                  ENOENT);
    return sim_fd();
  }
  void kill(pid_t pid, int) override {
    auto it = w_.procs.find(pid);
    if (it != w_.procs.end() && it->second.reaped)
      w_.violations.push_back("kill of reaped PID " + std::to_string(pid));
    w_.exit(pid);
  }
  void reap(pid_t pid) override {
    auto it = w_.procs.find(pid);
    if (it == w_.procs.end() || !it->second.ours)
      w_.violations.push_back("reap of " + std::to_string(pid) + ", not our child");
    else if (!it->second.exited)
      w_.violations.push_back("reap of running " + std::to_string(pid) + " blocks forever");
    else if (it->second.reaped)
      w_.violations.push_back("reap of " + std::to_string(pid) + " twice");
    else
      it->second.reaped = true;
  }

 private:
  SimWorld& w_;
};

class SimFiles final : public engine::ContainerFiles {
 public:
  explicit SimFiles(SimWorld& w) : w_(w) {}
  Result<void> make_dir(const std::filesystem::path& dir, unsigned) override {
    for (auto p = dir; !p.empty() && p != p.root_path(); p = p.parent_path()) w_.dirs.insert(p);
    return {};
  }
  Result<void> write(const std::filesystem::path& file, std::string_view content) override {
    if (!w_.dirs.count(file.parent_path()))
      return fail("write " + file.string() + ": No such file or directory", ENOENT);
    w_.files[file] = std::string(content);
    return {};
  }
  void remove(const std::filesystem::path& file) override { w_.files.erase(file); }
  Result<UniqueFd> open_dir(const std::filesystem::path& dir) override {
    if (!w_.dirs.count(dir)) return fail("open " + dir.string() + ": No such file or directory");
    return sim_fd();
  }

 private:
  SimWorld& w_;
};

class SimUserns final : public engine::UserNamespaces {
 public:
  explicit SimUserns(SimWorld& w) : w_(w) {}
  Result<UniqueFd> make(const model::IdMapping&) override { return sim_fd(); }
  Result<UniqueFd> open(const std::filesystem::path&) override { return sim_fd(); }
  Result<void> own_for(const std::filesystem::path&, const model::IdMapping&) override {
    return {};
  }
  bool idmap_supported(const std::filesystem::path&, int) override { return w_.idmap; }
  Result<std::filesystem::path> shifted_layer(const std::filesystem::path& layer,
                                              const model::IdMapping& map,
                                              const std::filesystem::path& cache) override {
    return cache /
           (std::to_string(map.uid_base) + "-" + std::to_string(map.gid_base) + "-" +
            std::to_string(map.count)) /
           layer.filename();
  }
  bool in_other(pid_t) override { return false; }

 private:
  SimWorld& w_;
};

// The simulated kernel behind the recording decorators: what an Engine under test takes.
class FakeEngineKernel final : public InitKiller {
 public:
  FakeEngineKernel() = default;
  FakeEngineKernel(const FakeEngineKernel&) = delete;
  FakeEngineKernel& operator=(const FakeEngineKernel&) = delete;

  SimWorld world;
  CallLog& log() { return recording_.log; }
  engine::KernelSeams seams() { return recording_.seams(); }
  engine::CgroupDriver& cgroups() { return recording_.cgroups(); }
  SimCgroups& sim_cgroups() { return cgroups_; }
  [[nodiscard]] const std::vector<pid_t>& launched() const { return recording_.launched(); }
  void kill_and_wait(pid_t pid) override { world.exit(pid); }

 private:
  SimCgroups cgroups_{world};
  SimLauncher launcher_{world};
  SimProcesses processes_{world};
  SimFiles files_{world};
  SimUserns userns_{world};
  RecordingKernel recording_{{launcher_, processes_, files_, userns_}, cgroups_, *this};
};

}  // namespace stack::test
