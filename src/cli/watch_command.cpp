// `stack watch [--no-up] [SERVICE...]` (and `up --watch`), as docker compose watch: the
// `develop.watch` rules of the stack file, driven by inotify here in the CLI. A batch of
// changes (quiet for kQuiet) is applied rule by rule through the daemon's API: `sync` copies
// the changed paths into every running replica (the cp route) and removes the deleted ones
// (`rm -rf` run in the container, as compose does), `sync+restart` then restarts the service,
// `sync+exec` runs its command, `restart` restarts, `rebuild` builds the image again and
// recreates the service if it changed. `ignore` and `include` are .dockerignore patterns relative to the rule's path.
#include <fnmatch.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "api/exec_stream.h"
#include "cli/cli.h"
#include "cli/service_io.h"

namespace stack::cli {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;
namespace frames = api::exec;

constexpr auto kQuiet = std::chrono::milliseconds(300);  // a save is often several events

// Editors' temporary files and version control, ignored by every rule (as compose does).
const std::vector<std::string> kAlwaysIgnored = {".git", "*.swp", "*.swx", "*~", ".#*",
                                                 "#*#", "4913", ".DS_Store"};

struct Rule {
  std::string service, action, target, where;  // where: "services.web.develop.watch[0]"
  fs::path path;                               // absolute, on the host
  bool initial_sync = false;
  std::vector<std::string> ignore, include;
  ServiceCommand exec;
};

bool syncs(const Rule& r) { return r.action.rfind("sync", 0) == 0; }

std::vector<std::string> parts_of(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i && path.substr(i, j - i) != ".") out.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// PATTERN's components from I against PATH's from J, "**" standing for any number of them.
bool glob(const std::vector<std::string>& pat, size_t i, const std::vector<std::string>& path,
          size_t j) {
  if (i == pat.size()) return j == path.size();
  if (pat[i] == "**") {
    for (size_t k = j; k <= path.size(); k++)
      if (glob(pat, i + 1, path, k)) return true;
    return false;
  }
  if (j == path.size() || ::fnmatch(pat[i].c_str(), path[j].c_str(), FNM_PERIOD) != 0)
    return false;
  return glob(pat, i + 1, path, j + 1);
}

// .dockerignore rules: a pattern names a path or a directory above it; a pattern without a '/'
// also matches a name at any depth (as compose's watch ignores "node_modules"); "!" re-includes;
// the last pattern that matches decides.
bool matches(const std::vector<std::string>& patterns, const std::string& rel) {
  auto path = parts_of(rel);
  bool matched = false;
  for (const auto& raw : patterns) {
    bool negate = !raw.empty() && raw[0] == '!';
    std::string p = negate ? raw.substr(1) : raw;
    auto pat = parts_of(p);
    if (pat.empty()) continue;
    bool hit = false;
    for (size_t end = 1; end <= path.size() && !hit; end++) {
      std::vector<std::string> prefix(path.begin(), path.begin() + static_cast<long>(end));
      hit = glob(pat, 0, prefix, 0);
      if (!hit && pat.size() == 1)  // a bare name, at any depth
        hit = ::fnmatch(pat[0].c_str(), path[end - 1].c_str(), FNM_PERIOD) == 0;
    }
    if (hit) matched = !negate;
  }
  return matched;
}

Result<ServiceCommand> exec_hook(const json& hook, const std::string& where) {
  ServiceCommand c;
  const auto& cmd = hook.at("command");
  if (cmd.is_string()) c.argv = {"/bin/sh", "-c", cmd.get<std::string>()};
  else for (const auto& a : cmd) c.argv.push_back(a.get<std::string>());
  if (c.argv.empty()) return fail(where + ".exec.command: empty");
  c.user = hook.value("user", "");
  c.workdir = hook.value("working_dir", "");
  if (hook.contains("environment")) {
    const auto& env = hook["environment"];
    if (env.is_object()) {
      for (const auto& [k, v] : env.items())
        c.env.push_back(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
    } else {
      for (const auto& e : env) c.env.push_back(e.get<std::string>());
    }
  }
  return c;
}

Result<std::vector<Rule>> rules_of(const spec::Stack& stack,
                                   const std::vector<std::string>& services) {
  std::vector<Rule> out;
  for (const auto& s : services)
    if (std::none_of(stack.services.begin(), stack.services.end(),
                     [&](const spec::Service& x) { return x.name == s; }))
      return fail("no such service: " + s);
  for (const spec::Service& svc : stack.services) {
    if (!services.empty() && !std::count(services.begin(), services.end(), svc.name)) continue;
    auto dev = svc.extra.find("develop");
    if (dev == svc.extra.end() || !dev->contains("watch")) continue;
    const auto& list = (*dev)["watch"];
    for (size_t i = 0; i < list.size(); i++) {
      const auto& w = list[i];
      Rule r;
      r.service = svc.name;
      r.where = "services." + svc.name + ".develop.watch[" + std::to_string(i) + "]";
      r.action = w.value("action", "");
      fs::path p = w.value("path", "");
      r.path = (p.is_absolute() ? p : stack.project_dir / p).lexically_normal();
      if (r.path.filename().empty()) r.path = r.path.parent_path();
      r.target = w.value("target", "");
      r.initial_sync = w.value("initial_sync", false);
      auto strings = [&](const char* key) {  // one pattern or a list of them
        std::vector<std::string> out;
        if (!w.contains(key)) return out;
        if (w[key].is_string()) out.push_back(w[key].get<std::string>());
        else for (const auto& x : w[key]) out.push_back(x.get<std::string>());
        return out;
      };
      r.ignore = strings("ignore");
      r.include = strings("include");
      if (r.action == "rebuild" && !svc.build)
        return fail(r.where + ": action rebuild needs a build section in services." + svc.name);
      if (syncs(r) && (r.target.empty() || r.target.front() != '/'))
        return fail(r.where + ": " + r.action + " needs an absolute target in the container");
      if (r.action == "sync+exec") {
        if (!w.contains("exec")) return fail(r.where + ": sync+exec needs exec.command");
        auto hook = exec_hook(w["exec"], r.where);
        if (!hook) return fail(hook.error());
        r.exec = *hook;
      }
      while (r.target.size() > 1 && r.target.back() == '/') r.target.pop_back();
      out.push_back(std::move(r));
    }
  }
  if (out.empty())
    return fail("none of the services has develop.watch rules: nothing to watch");
  return out;
}

// The replica numbers of SERVICE that run now.
std::vector<int> running_replicas(const std::string& project, const std::string& service) {
  std::vector<int> out;
  auto r = daemon_client().call("GET", "/v1/projects/" + url_encode(project) + "/containers");
  if (!r || r->status != 200) return out;
  auto list = json::parse(r->body, nullptr, false);
  if (!list.is_array()) return out;
  for (const auto& c : list)
    if (c.value("service", "") == service && c.value("state", "") == "running")
      out.push_back(c.value("number", 1));
  return out;
}

Result<void> restart(const std::string& project, const std::string& service) {
  json body = {{"services", {service}}};
  auto last = json::parse(
      run_operation("POST", "/v1/projects/" + url_encode(project) + "/restart", body.dump()),
      nullptr, false);
  if (last.is_object() && last.contains("error")) return fail(last["error"].get<std::string>());
  return {};
}

// `rebuild`: SERVICE's image built again and the service recreated when the image changed, as
// `up --build --no-deps SERVICE` does (compose's watch does the same). `up SERVICE` adds to
// what the project keeps up, never narrows it.
Result<void> rebuild(const std::string& project, const std::string& service) {
  auto body = json::parse(load_request_json());
  body["services"] = {service};
  body["build"] = true;
  body["no_deps"] = true;
  std::string answer;
  try {
    answer = run_operation("POST", "/v1/up", body.dump());
  } catch (const ExitCode&) {  // the daemon's error was printed; the watch goes on
    return fail("up --build " + service + " of " + project + " failed");
  }
  auto last = json::parse(answer, nullptr, false);
  if (!last.is_object() || !last.contains("plan"))
    return fail(last.is_object() ? last.value("error", "up --build failed") : "up --build failed");
  return {};
}

// Watches directories (each one of a tree: inotify(7) is not recursive) and says which paths
// changed.
class Watcher {
 public:
  Watcher() : fd_(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) {}
  [[nodiscard]] int fd() const { return fd_.get(); }
  // Watches PATH (a directory and every one below it, or a file's directory).
  void add(const fs::path& path) {
    std::error_code ec;
    if (!fs::is_directory(path, ec)) {
      add_dir(path.parent_path());
      return;
    }
    add_dir(path);
    for (auto it = fs::recursive_directory_iterator(path, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_directory(ec) && !it->is_symlink(ec)) add_dir(it->path());
  }
  // The paths of the events read now; new directories are watched as they appear.
  void read(std::set<fs::path>& changed) {
    alignas(inotify_event) char buf[8192];
    for (;;) {
      ssize_t n = ::read(fd_.get(), buf, sizeof buf);
      if (n <= 0) return;
      for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + ev->len;
        auto dir = dirs_.find(ev->wd);
        if (dir == dirs_.end() || ev->len == 0) continue;
        fs::path path = dir->second / ev->name;
        if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO))) add(path);
        changed.insert(path);
      }
    }
  }

 private:
  void add_dir(const fs::path& dir) {
    int wd = ::inotify_add_watch(fd_.get(), dir.c_str(),
                                 IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                                     IN_MOVED_TO | IN_ATTRIB | IN_MODIFY);
    if (wd >= 0) dirs_[wd] = dir;
  }
  UniqueFd fd_;
  std::map<int, fs::path> dirs_;
};

// A path under the rule, relative to its path ("" for the rule's own file); nullopt when the
// rule does not watch it.
std::optional<std::string> relative(const Rule& r, const fs::path& p) {
  auto rel = p.lexically_relative(r.path).string();
  if (rel == ".") return std::string();
  if (rel.empty() || rel.rfind("..", 0) == 0) return std::nullopt;
  if (matches(kAlwaysIgnored, rel) || matches(r.ignore, rel)) return std::nullopt;
  if (!r.include.empty() && !matches(r.include, rel)) return std::nullopt;
  return rel;
}

void apply(const std::string& project, const Rule& r, const std::vector<std::string>& rels) {
  auto replicas = running_replicas(project, r.service);
  std::fprintf(stderr, "watch: %s %s after %zu change(s)\n", r.action.c_str(),
               r.service.c_str(), rels.size());
  if (syncs(r)) {
    for (int idx : replicas)
      for (const auto& rel : rels) {
        fs::path host = rel.empty() ? r.path : r.path / rel;
        std::string dest = rel.empty() ? r.target : r.target + "/" + rel;
        struct stat st {};
        Result<void> done;
        if (::lstat(host.c_str(), &st) != 0) {
          ServiceCommand rm{{"rm", "-rf", "--", dest}, {}, "", ""};
          auto ran = run_in_service(project, r.service, idx, rm);
          if (!ran) done = fail(ran.error());
        } else {
          done = copy_into_service(project, r.service, idx,
                                   S_ISDIR(st.st_mode) ? host.string() + "/." : host.string(),
                                   dest);
        }
        if (!done)
          std::fprintf(stderr, "watch: %s: sync %s: %s\n", r.where.c_str(), host.c_str(),
                       done.error().message.c_str());
      }
  }
  if (r.action == "rebuild")
    if (auto done = rebuild(project, r.service); !done)
      std::fprintf(stderr, "watch: rebuild %s: %s\n", r.service.c_str(),
                   done.error().message.c_str());
  if (r.action == "sync+restart" || r.action == "restart") {
    if (auto done = restart(project, r.service); !done)
      std::fprintf(stderr, "watch: restart %s: %s\n", r.service.c_str(),
                   done.error().message.c_str());
  }
  if (r.action == "sync+exec")
    for (int idx : replicas) {
      auto ran = run_in_service(project, r.service, idx, r.exec);
      if (!ran) {
        std::fprintf(stderr, "watch: %s: exec: %s\n", r.where.c_str(),
                     ran.error().message.c_str());
      } else {
        std::fwrite(ran->second.data(), 1, ran->second.size(), stdout);
        std::fflush(stdout);
        if (ran->first != 0)
          std::fprintf(stderr, "watch: %s: exec exited with %d\n", r.where.c_str(), ran->first);
      }
    }
}

struct WatchFlags {
  bool no_up = false;
  std::vector<std::string> services;
};

}  // namespace

Result<std::pair<int, std::string>> run_in_service(const std::string& project,
                                                   const std::string& service, int index,
                                                   const ServiceCommand& c) {
  json body = {{"service", service}, {"index", index}, {"command", c.argv},
               {"env", c.env},       {"user", c.user},  {"workdir", c.workdir},
               {"tty", false},       {"interactive", false}};
  api::Response refused;
  auto up = daemon_client().upgrade("POST", "/v1/projects/" + url_encode(project) + "/exec",
                                    body.dump(), frames::kUpgrade, refused);
  if (!up) return fail(up.error());
  if (!up->socket) {
    auto j = json::parse(refused.body, nullptr, false);
    return fail(j.is_object() && j.contains("error") ? j["error"].get<std::string>()
                                                     : "the daemon answered " +
                                                           std::to_string(refused.status));
  }
  frames::FrameReader reader;
  reader.feed(up->pending);
  std::string output;
  char buf[65536];
  for (;;) {
    auto f = reader.next();
    if (!f) return fail(f.error());
    if (*f) {
      if ((*f)->type == frames::Type::exit) {
        auto code = frames::decode_exit((*f)->payload);
        return std::make_pair(code ? *code : 1, output);
      }
      if ((*f)->type == frames::Type::error) return fail((*f)->payload);
      output += (*f)->payload;
      continue;
    }
    ssize_t n = ::read(up->socket.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("the daemon closed the exec stream");
    reader.feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

// Runs the watch until the process is ended (Ctrl-C). Returns only on an error before it starts.
int run_watch(const std::string& project, const std::vector<std::string>& services) {
  auto stack = load_stack();
  if (!stack) return report(stack.error());
  auto rules = rules_of(*stack, services);
  if (!rules) return report(rules.error());
  Watcher watcher;
  for (const auto& r : *rules) {
    std::error_code ec;
    if (!fs::exists(r.path, ec)) {
      std::fprintf(stderr, "stack: %s: path %s does not exist\n", r.where.c_str(),
                   r.path.c_str());
      return 1;
    }
    watcher.add(r.path);
  }
  for (const auto& r : *rules)  // the container as the files are now, where asked
    if (syncs(r) && r.initial_sync)
      for (int idx : running_replicas(project, r.service)) {
        std::string src = fs::is_directory(r.path) ? r.path.string() + "/." : r.path.string();
        if (auto done = copy_into_service(project, r.service, idx, src, r.target); !done)
          std::fprintf(stderr, "watch: %s: initial sync: %s\n", r.where.c_str(),
                       done.error().message.c_str());
      }
  std::fprintf(stderr, "Watch enabled\n");
  std::set<fs::path> changed;
  for (;;) {
    pollfd p{watcher.fd(), POLLIN, 0};
    int ready = ::poll(&p, 1, changed.empty() ? -1 : static_cast<int>(kQuiet.count()));
    if (ready < 0 && errno != EINTR) return 1;
    if (ready > 0) {
      watcher.read(changed);
      continue;
    }
    if (ready < 0 || changed.empty()) continue;
    for (const auto& r : *rules) {
      std::vector<std::string> rels;
      for (const auto& c : changed)
        if (auto rel = relative(r, c)) rels.push_back(*rel);
      if (!rels.empty()) apply(project, r, rels);
    }
    changed.clear();
  }
}

void add_watch_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "watch", "Apply the develop.watch rules: sync, restart, exec as files change");
  static WatchFlags flags;
  cmd->add_flag("--no-up", flags.no_up, "Do not run `up -d` first");
  cmd->add_option("service", flags.services, "Services whose rules apply (default: all)");
  cmd->footer(
      "Actions: sync, sync+restart, sync+exec, restart, rebuild (up --build --no-deps SERVICE).\n"
      "Deleted files are removed in the container with rm -rf. Ends with Ctrl-C.");
  cmd->callback([] {
    auto project = value_or_exit(project_name());
    if (!flags.no_up) {
      auto body = json::parse(load_request_json());
      body["services"] = flags.services;
      auto last = json::parse(run_operation("POST", "/v1/up", body.dump()), nullptr, false);
      if (!last.is_object() || !last.contains("plan")) throw ExitCode{1};
    }
    throw ExitCode{run_watch(project, flags.services)};
  });
}

}  // namespace stack::cli
