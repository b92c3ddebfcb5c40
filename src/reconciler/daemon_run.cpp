// The daemon's `run`: a one-off container of a service, what the flags change written as one
// more stack file over the project's (so -e, -v, -p, -l, --entrypoint go through the loader's
// own parsing, merging and validation), planned with the planner's one_off after what the
// service depends on. Loop thread only; loading is on the worker pool, as for up.
#include <sys/random.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include <nlohmann/json.hpp>

#include "reconciler/daemon.h"
#include "reconciler/project_lock.h"
#include "state/store.h"

namespace stack::reconciler {

namespace {

using nlohmann::json;

// 12 hex digits, as compose names its run containers.
std::string run_id() {
  unsigned char bytes[6] = {};
  if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
    auto t = std::chrono::steady_clock::now().time_since_epoch().count();
    std::memcpy(bytes, &t, sizeof bytes);
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) out += {hex[b >> 4], hex[b & 15]};
  return out;
}

// A value from the command line is taken as written: the loader's interpolation must not
// read "$HOME" in it.
json literal(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '$' ? std::string("$$") : std::string(1, c);
  return out;
}
json literal(const std::vector<std::string>& v) {
  json out = json::array();
  for (const auto& s : v) out.push_back(literal(s));
  return out;
}
json literal(const std::map<std::string, std::string>& m) {
  json out = json::object();
  for (const auto& [k, v] : m) out[k] = literal(v);
  return out;
}

// The flags as a stack file over the project's (JSON is YAML): merged as compose merges an
// override file, so -e and -l add to the service's, -v and -p to its volumes and ports.
std::string override_file(const RunRequest& r) {
  json svc = json::object();
  if (!r.environment.empty()) svc["environment"] = literal(r.environment);
  if (!r.labels.empty()) svc["labels"] = literal(r.labels);
  if (!r.user.empty()) svc["user"] = literal(r.user);
  if (!r.workdir.empty()) svc["working_dir"] = literal(r.workdir);
  if (r.entrypoint) {
    svc["entrypoint"] = literal(*r.entrypoint);
    // As compose: a new entrypoint drops the service's command unless one is given.
    if (!r.command) svc["command"] = json::array();
  }
  if (r.command) svc["command"] = literal(*r.command);
  if (!r.volumes.empty()) svc["volumes"] = literal(r.volumes);
  if (!r.publish.empty()) svc["ports"] = literal(r.publish);
  if (r.tty) svc["tty"] = true;
  if (r.stdin_open) svc["stdin_open"] = true;
  return json{{"services", {{r.service, svc}}}}.dump();
}

}  // namespace

awaitable<Result<Daemon::RunOutcome>> Daemon::run(RunRequest request, Progress progress) {
  for (const auto& f : request.load.files)
    if (f.filename() == "-") co_return fail("run: the stack file cannot be read from stdin");
  request.load.files.push_back("-");  // the loader reads stdin_text for it
  request.load.stdin_text = override_file(request);
  request.load.services = {request.service};  // only its env files (and its dependencies')
  auto loading = [opts = budgeted(request.load)] { return spec::load(opts); };
  auto loaded = co_await on_pool(*pool_, std::move(loading));
  if (!loaded) co_return fail(loaded.error().wrap("run"));
  spec::Stack stack = std::move(*loaded);
  auto svc = std::find_if(stack.services.begin(), stack.services.end(),
                          [&](const auto& s) { return s.name == request.service; });
  if (svc == stack.services.end())
    co_return fail("no such service in project " + stack.name + ": " + request.service);
  if (auto r = spec::check_supported(stack); !r) co_return fail(r.error());
  std::string name = request.name.empty()
                         ? stack.name + "-" + request.service + "-run-" + run_id()
                         : request.name;
  // As docker's container names: it names a directory, a cgroup and the hostname.
  bool valid = !name.empty() && name.size() <= spec::kMaxObjectName && std::isalnum(
      static_cast<unsigned char>(name[0]));
  for (char c : name)
    valid &= std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  if (!valid)
    co_return fail("run --name \"" + name + "\": a container name is [a-zA-Z0-9][a-zA-Z0-9_.-]*, "
                   "at most " + std::to_string(spec::kMaxObjectName) + " bytes");
  // A one-off container: one replica under its own name, never restarted, and only the ports
  // -p asks for unless --service-ports (the service's own would clash with its replicas').
  svc->container_name = name;
  svc->replicas = 1;
  svc->restart = "no";
  if (!request.service_ports)
    std::erase_if(svc->ports, [](const spec::Port& p) {
      return std::filesystem::path(p.pos.file).filename() != "-";
    });
  svc->labels["com.docker.compose.oneoff"] = "True";

  auto lock = co_await ProjectLock::take(busy_, *busy_changed_, stack.name);
  auto as_client = pull_as_client(stack.name, request.registry_auth);
  auto& store = controller_->store();
  auto taken = store.get_container(name);
  if (!taken) co_return fail(taken.error());
  if (*taken) co_return fail("container name " + name + " is already in use");
  auto known = store.get_project(stack.name);
  if (!known) co_return fail(known.error());
  if (!*known) {
    // Registered as `up` would, keeping up only what run started: the dependencies, and no
    // container of the service itself (a removed one, until `up`).
    state::ProjectRecord project;
    project.name = stack.name;
    for (const auto& f : request.load.files)
      if (f.filename() != "-") project.files.push_back(f.string());
    project.working_dir = stack.project_dir.string();
    project.environment_json = nlohmann::json(request.load.environment).dump();
    project.created_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    auto services = with_dependencies(stack, {request.service});
    project.services.assign(services.begin(), services.end());
    if (auto r = store.put_project(project); !r) co_return fail(r.error());
    // With --no-deps, the dependencies are left out as well (the passes would start them).
    for (const auto& s : services)
      if (s == request.service || request.no_deps)
        if (auto r = edit_override(stack.name, s, [](auto& o) { o.removed = true; }); !r)
          co_return fail(r.error());
    register_watch(project.name, project.files);
  }
  UpOptions options;
  options.plan.services = {request.service};
  options.plan.no_deps = request.no_deps;
  options.plan.one_off = request.service;
  if (request.auto_remove) auto_remove_.insert(name);
  auto plan = co_await apply(stack, options, false, progress);
  auto_remove_.erase(name);
  if (!plan) co_return fail(plan.error());
  co_return RunOutcome{stack.name, name};
}

}  // namespace stack::reconciler
