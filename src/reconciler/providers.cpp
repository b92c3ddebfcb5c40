// Provider services: finding the binary, running it with its stdout read as JSON lines, and
// the variables its `up` reported injected into its dependents (see providers.h). Runs on the
// worker pool (run_provider blocks until the provider exits); never on the loop.
#include "reconciler/providers.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "common/unique_fd.h"
#include "state/store.h"

extern char** environ;

namespace stack::reconciler {

namespace {

bool executable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string on_path(const std::string& name, const std::string& path_var) {
  size_t start = 0;
  for (;;) {
    size_t colon = path_var.find(':', start);
    std::string dir = path_var.substr(start, colon == std::string::npos ? colon : colon - start);
    if (dir.empty()) dir = ".";
    if (executable(dir + "/" + name)) return dir + "/" + name;
    if (colon == std::string::npos) return "";
    start = colon + 1;
  }
}

std::string scalar(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_null()) return "";
  return v.dump();
}

// The last lines of what the provider wrote on stderr, for the error message.
std::string tail_of(int fd) {
  std::string text;
  if (::lseek(fd, 0, SEEK_SET) < 0) return text;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > 16384) text.erase(0, text.size() - 4096);
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.size() > 2048) text = "..." + text.substr(text.size() - 2048);
  return text;
}

std::string first_line(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

}  // namespace

model::ProviderConfig provider_config(const spec::Stack& stack, const spec::Service& service) {
  model::ProviderConfig c;
  c.working_dir = stack.project_dir.string();
  auto it = service.extra.find("provider");
  if (it == service.extra.end() || !it->is_object()) return c;
  c.type = it->value("type", "");
  auto options = it->value("options", nlohmann::json::object());
  if (options.is_object())
    for (const auto& [k, v] : options.items()) {  // nlohmann's object: keys in order
      if (v.is_array())
        for (const auto& each : v) c.options.emplace_back(k, scalar(each));
      else
        c.options.emplace_back(k, scalar(v));
    }
  return c;
}

Result<std::string> find_provider(const model::ProviderConfig& config) {
  const std::string& type = config.type;
  if (type.empty()) return fail("provider.type is empty");
  if (type == "compose") return fail("'compose' is not a valid provider type");
  if (type.find('/') != std::string::npos) {
    std::string path = type[0] == '/' ? type : config.working_dir + "/" + type;
    if (!executable(path)) return fail("provider " + type + ": " + path + " is not an executable file");
    return path;
  }
  std::string path_var = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  if (auto p = config.environment.find("PATH"); p != config.environment.end()) path_var = p->second;
  std::vector<std::string> plugin_dirs;
  if (auto h = config.environment.find("HOME"); h != config.environment.end() && !h->second.empty())
    plugin_dirs.push_back(h->second + "/.docker/cli-plugins");
  for (const char* d : {"/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
                        "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins"})
    plugin_dirs.emplace_back(d);
  for (const auto& dir : plugin_dirs)
    if (executable(dir + "/docker-" + type)) return dir + "/docker-" + type;
  if (auto p = on_path(type, path_var); !p.empty()) return p;
  if (auto p = on_path("docker-" + type, path_var); !p.empty()) return p;
  return fail("provider " + type + ": executable file not found (neither a docker CLI plugin "
              "docker-" + type + " nor " + type + " in $PATH)");
}

std::vector<std::string> provider_argv(const std::string& path, const std::string& project,
                                       const std::string& command, const std::string& service,
                                       const model::ProviderConfig& config) {
  std::vector<std::string> argv{path, "compose", "--project-name=" + project, command};
  for (const auto& [k, v] : config.options) argv.push_back("--" + k + "=" + v);
  argv.push_back(service);
  return argv;
}

Result<void> provider_line(const std::string& line, ProviderOutput& out, const ProviderLines& lines) {
  if (line.find_first_not_of(" \t\r") == std::string::npos) return {};
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    return fail("invalid response from plugin: " + line);
  std::string type = j["type"].get<std::string>();
  std::string message = j.contains("message") && j["message"].is_string()
                            ? j["message"].get<std::string>() : std::string();
  if (type == "error") return fail(message);
  if (type == "info") {
    if (lines.info) lines.info(first_line(message));
    return {};
  }
  if (type == "debug") {
    if (lines.debug) lines.debug(message);
    return {};
  }
  if (type == "setenv" || type == "rawsetenv") {
    auto eq = message.find('=');
    if (eq == std::string::npos) return fail("invalid response from plugin: " + message);
    (type == "setenv" ? out.env : out.raw_env)[message.substr(0, eq)] = message.substr(eq + 1);
    return {};
  }
  return fail("invalid response from plugin: " + type);
}

Result<ProviderOutput> run_provider(const std::string& project, const std::string& command,
                                    const std::string& service, const model::ProviderConfig& config,
                                    const ProviderLines& lines) {
  std::string ctx = "service \"" + service + "\": provider " + config.type + " " + command;
  auto path = find_provider(config);
  if (!path) return fail(path.error().wrap("service \"" + service + "\""));
  auto argv_s = provider_argv(*path, project, command, service, config);
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (const auto& [k, v] : config.environment) env_s.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return fail_errno(ctx + ": pipe");
  UniqueFd read_end(out[0]), write_end(out[1]);
  UniqueFd err(::memfd_create("stack-provider-stderr", MFD_CLOEXEC));
  if (!err) return fail_errno(ctx + ": memfd_create");
  UniqueFd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null_in) return fail_errno(ctx + ": open /dev/null");

  // posix_spawn: no code of ours runs between the fork and the exec in this threaded daemon.
  // Only stdin, stdout and stderr go to the provider: every other descriptor is closed.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, null_in.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err.get(), 2);
  if (!config.working_dir.empty())
    posix_spawn_file_actions_addchdir_np(&actions, config.working_dir.c_str());
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, path->c_str(), &actions, &attr, argv.data(),
                         config.environment.empty() ? environ : envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    errno = rc;
    return fail_errno(ctx + ": run " + *path);
  }
  write_end.reset();

  ProviderOutput result;
  std::optional<Error> failed;
  std::string buffer;
  char chunk[4096];
  for (;;) {
    ssize_t n = ::read(read_end.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while (!failed && (nl = buffer.find('\n')) != std::string::npos) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      if (auto r = provider_line(line, result, lines); !r) failed = r.error();
    }
    if (failed) break;
  }
  if (!failed && !buffer.empty())
    if (auto r = provider_line(buffer, result, lines); !r) failed = r.error();
  // An error line ends the run, as in compose: the provider is killed, and reaped either way.
  if (failed) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (failed) return fail(failed->wrap(ctx));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string how = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                        : std::string("killed by signal ") + strsignal(WTERMSIG(status));
    std::string tail = tail_of(err.get());
    return fail(ctx + ": failed to " + (command == "up" ? "create" : "remove") +
                " service provider: " + how + (tail.empty() ? "" : ": " + tail));
  }
  return result;
}

Result<void> inject_provider_env(spec::Stack& stack, state::Store& store) {
  auto records = store.list_providers(stack.name);
  if (!records) return fail(records.error());
  if (records->empty()) return {};
  for (auto& svc : stack.services)
    for (const auto& p : *records) {
      if (std::find(svc.depends_on.begin(), svc.depends_on.end(), p.service) == svc.depends_on.end())
        continue;
      std::string prefix = upper(p.service) + "_";
      for (const auto& [k, v] : p.env) svc.environment[prefix + k] = v;
      for (const auto& [k, v] : p.raw_env) svc.environment[k] = v;
    }
  return {};
}

}  // namespace stack::reconciler
