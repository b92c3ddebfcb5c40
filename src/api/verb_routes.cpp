// /v1/projects/P/kill (POST {services, signal}), /pause and /unpause (POST {services}), /top (GET ?service=) and /wait (GET
// ?service=, a stream that ends with the first container to exit). The daemon does the work
// (reconciler/daemon_verbs.cpp); this file turns requests and answers into JSON.
#include "api/verb_routes.h"

#include <algorithm>

#include "reconciler/daemon.h"
#include "reconciler/controller.h"

namespace stack::api {

using nlohmann::json;
using reconciler::awaitable;
using reconciler::Daemon;

namespace {

// 404 for a service the project does not have, 400 for the rest of what the caller got wrong.
int status_of(const Error& e) {
  return e.message.find("no such service") != std::string::npos ? 404 : 400;
}

// Waits until one of the containers of SERVICES that exist now is not running, then sends
// {"container", "service", "exit_code"}; one that is stopped already answers at once.
Reply wait_reply(Daemon& d, const std::string& project, std::vector<std::string> services) {
  auto list = d.ps(project, true);
  if (!list) return error_reply(500, list.error().message);
  std::vector<std::string> names;
  for (const auto& c : *list)
    if (services.empty() || std::count(services.begin(), services.end(), c.service))
      names.push_back(c.name);
  for (const auto& s : services)
    if (std::none_of(list->begin(), list->end(), [&](const auto& c) { return c.service == s; }))
      return error_reply(404, "no such service in project " + project + ": " + s);
  if (names.empty()) return error_reply(404, "project " + project + " has no containers");
  return {200, {}, [&d, project, names](Emit emit, Cancelled cancelled) -> awaitable<void> {
            while (!cancelled()) {
              auto now = d.ps(project, true);
              if (!now) {
                emit({{"error", now.error().message}});
                co_return;
              }
              for (const auto& name : names) {
                auto c = std::find_if(now->begin(), now->end(),
                                      [&](const auto& s) { return s.name == name; });
                if (c == now->end()) {  // removed (down) while we waited
                  emit({{"container", name}, {"service", ""}, {"exit_code", 0}});
                  co_return;
                }
                if (c->state == "exited" || c->state == "dead") {
                  emit({{"container", name}, {"service", c->service}, {"exit_code", c->exit_code}});
                  co_return;
                }
              }
              co_await d.changed().wait_for(std::chrono::seconds(1));
            }
          }};
}

}  // namespace

bool is_verb_route(const Target& t) {
  const auto& p = t.path;
  return p.size() == 4 && p[1] == "projects" &&
         (p[3] == "kill" || p[3] == "top" || p[3] == "wait" || p[3] == "pause" || p[3] == "unpause");
}

awaitable<Reply> verb_route(Daemon& d, const Request& req, const Target& t, const json& body) {
  const std::string& project = t.path[2];
  const std::string& what = t.path[3];
  try {
    if (req.method == "POST" && what == "kill") {
      auto services = body.value("services", std::vector<std::string>{});
      auto sig = reconciler::parse_signal(body.value("signal", std::string("SIGKILL")));
      if (!sig) co_return error_reply(400, sig.error().message);
      auto containers = body.value("containers", std::vector<std::string>{});
      auto killed = co_await d.kill(project, services, *sig, containers);
      if (!killed) co_return error_reply(status_of(killed.error()), killed.error().message);
      co_return Reply{200, {{"killed", *killed}, {"signal", *sig}}, {}};
    }
    if (req.method == "POST" && (what == "pause" || what == "unpause")) {
      auto services = body.value("services", std::vector<std::string>{});
      auto changed = co_await d.pause(project, services, what == "pause");
      if (!changed) co_return error_reply(status_of(changed.error()), changed.error().message);
      co_return Reply{200, {{what == "pause" ? "paused" : "unpaused", *changed}}, {}};
    }
    if (req.method == "GET" && what == "top") {
      auto top = d.top(project, t.all("service"));
      if (!top) co_return error_reply(status_of(top.error()), top.error().message);
      json arr = json::array();
      for (const auto& c : *top) {
        json procs = json::array();
        for (const auto& p : c.processes)
          procs.push_back({{"uid", p.uid},
                           {"pid", p.pid},
                           {"ppid", p.ppid},
                           {"started_at", p.started_at},
                           {"cpu_ms", p.cpu_ms},
                           {"tty", p.tty},
                           {"command", p.command}});
        arr.push_back({{"container", c.container}, {"service", c.service}, {"processes", procs}});
      }
      co_return Reply{200, arr, {}};
    }
    if (req.method == "GET" && what == "wait") co_return wait_reply(d, project, t.all("service"));
  } catch (const std::exception& e) {  // JSON of the wrong type in the request
    co_return error_reply(400, std::string("bad request: ") + e.what());
  }
  co_return error_reply(404, "unknown API path " + req.method + " " + req.target);
}

}  // namespace stack::api
