// POST /v1/run (`stack run`), POST /v1/projects/P/scale {"replicas": {SERVICE: N}, "no_deps"}
// and POST /v1/projects/P/rm {"services", "stop", "containers"}: streams of progress lines that
// end with {"ok"} (with "removed" for rm, "project" and "container" for run) or {"error"}. The
// daemon does the work; this file turns JSON into its calls.
#include "api/lifecycle_routes.h"

#include <map>

#include "api/image_routes.h"
#include "reconciler/daemon.h"

namespace stack::api {

using nlohmann::json;
using reconciler::awaitable;
using reconciler::Daemon;

namespace {

reconciler::Progress progress_to(Emit emit) {
  return [emit](const std::string& object, const std::string& what, std::chrono::milliseconds t) {
    emit({{"progress", {{"container", object}, {"action", what}, {"ms", t.count()}}}});
  };
}

// POST /v1/run: the files to load as for /v1/up, and the flags of `stack run`.
Reply run_reply(Daemon& d, const json& body) {
  reconciler::RunRequest req;
  try {
    for (const auto& f : body.value("files", json::array()))
      req.load.files.emplace_back(f.get<std::string>());
    if (!body.value("project_name", std::string()).empty())
      req.load.project_name = body["project_name"].get<std::string>();
    req.load.working_dir = body.value("working_dir", std::string("/"));
    req.load.environment = body.value("environment", std::map<std::string, std::string>{});
    req.service = body.value("service", std::string());
    if (body.contains("command")) req.command = body["command"].get<std::vector<std::string>>();
    if (body.contains("entrypoint"))
      req.entrypoint = body["entrypoint"].get<std::vector<std::string>>();
    req.environment = body.value("env", std::map<std::string, std::string>{});
    req.labels = body.value("labels", std::map<std::string, std::string>{});
    req.user = body.value("user", std::string());
    req.workdir = body.value("workdir", std::string());
    req.name = body.value("name", std::string());
    req.publish = body.value("publish", std::vector<std::string>{});
    req.volumes = body.value("volumes", std::vector<std::string>{});
    req.service_ports = body.value("service_ports", false);
    req.no_deps = body.value("no_deps", false);
    req.auto_remove = body.value("auto_remove", false);
    req.tty = body.value("tty", false);
    req.stdin_open = body.value("interactive", false);
  } catch (const std::exception& e) {  // JSON of the wrong type in the request
    return error_reply(400, std::string("bad request: ") + e.what());
  }
  if (req.service.empty()) return error_reply(400, "run needs a service");
  auto auth = registry_auth_of(body);
  if (!auth) return error_reply(400, "run: " + auth.error().message);
  req.registry_auth = *auth;
  return {200, {}, [&d, req](Emit emit, Cancelled) -> awaitable<void> {
            auto r = co_await d.run(req, progress_to(emit));
            if (!r) emit({{"error", r.error().message}});
            else emit({{"ok", true}, {"project", r->project}, {"container", r->container}});
          }};
}

}  // namespace

bool is_lifecycle_route(const Target& t) {
  const auto& p = t.path;
  return (p.size() == 2 && p[1] == "run") ||
         (p.size() == 4 && p[1] == "projects" && (p[3] == "scale" || p[3] == "rm"));
}

Reply lifecycle_route(Daemon& d, const Request& req, const Target& t, const json& body) {
  if (t.path.size() == 2) return run_reply(d, body);
  const std::string project = t.path[2];
  try {
    if (req.method == "POST" && t.path[3] == "scale") {
      if (!body.contains("replicas") || !body["replicas"].is_object())
        return error_reply(400, "scale: expected {\"replicas\": {SERVICE: N}}");
      auto replicas = body["replicas"].get<std::map<std::string, int>>();
      bool no_deps = body.value("no_deps", false);
      return {200, {}, [&d, project, replicas, no_deps](Emit emit, Cancelled) -> awaitable<void> {
                auto r = co_await d.scale(project, replicas, no_deps, progress_to(emit));
                if (!r) emit({{"error", r.error().message}});
                else emit({{"ok", true}});
              }};
    }
    if (req.method == "POST" && t.path[3] == "rm") {
      auto services = body.value("services", std::vector<std::string>{});
      auto containers = body.value("containers", std::vector<std::string>{});
      bool stop = body.value("stop", false);
      return {200, {}, [&d, project, services, stop, containers](Emit emit, Cancelled) -> awaitable<void> {
                auto r = co_await d.remove_containers(project, services, stop, progress_to(emit),
                                                      containers);
                if (!r) emit({{"error", r.error().message}});
                else emit({{"ok", true}, {"removed", *r}});
              }};
    }
  } catch (const std::exception& e) {  // JSON of the wrong type in the request
    return error_reply(400, std::string("bad request: ") + e.what());
  }
  return error_reply(404, "unknown API path " + req.method + " " + req.target);
}

}  // namespace stack::api
