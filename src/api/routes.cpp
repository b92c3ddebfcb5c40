// The routes of the API: JSON in, daemon calls, JSON out. The README lists them; every JSON
// shape the CLI prints with --format json is made here, once.
#include "api/routes.h"

#include <algorithm>
#include <cstdlib>
#include <climits>
#include <optional>
#include <ctime>
#include <deque>
#include <map>

#include <boost/asio/posix/stream_descriptor.hpp>

#include "api/attach_routes.h"
#include "api/copy_routes.h"
#include "api/exec_session.h"
#include "api/image_routes.h"
#include "api/image_transfer.h"
#include "api/lifecycle_routes.h"
#include "api/node_routes.h"
#include "api/stats_routes.h"
#include "api/verb_routes.h"
#include "engine/logs.h"
#include "reconciler/daemon.h"

namespace stack::api {

namespace asio = boost::asio;
using nlohmann::json;
using reconciler::awaitable;
using reconciler::Daemon;

namespace {

std::string iso_time(int64_t ms) {
  if (ms == 0) return "";
  time_t s = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&s, &tm);
  char buf[48];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

json status_json(const reconciler::ContainerStatus& c) {
  return {{"name", c.name},          {"project", c.project},
          {"service", c.service},    {"number", c.number},
          {"image", c.image},        {"command", c.command},
          {"state", c.state},        {"health", c.health},
          {"pid", c.pid},            {"exit_code", c.exit_code},
          {"oom_killed", c.oom_killed}, {"restarts", c.restarts},
          {"created_at", iso_time(c.created_at)}, {"started_at", iso_time(c.started_at)},
          {"finished_at", iso_time(c.finished_at)}, {"error", c.error},
          {"labels", c.labels},      {"annotations", c.annotations}};
}

// The plan as a DAG: each step with its index, kind, object, service, reason, the steps it
// follows, and its line as `stack plan` prints it.
json plan_json(const planner::Plan& p) {
  json actions = json::array();
  for (size_t i = 0; i < p.nodes.size(); i++) {
    const auto& n = p.nodes[i];
    actions.push_back({{"id", i},
                       {"action", planner::step_kind(n.step)},
                       {"object", planner::step_object(n.step)},
                       {"service", n.service},
                       {"reason", n.reason},
                       {"after", n.after},
                       {"text", planner::render_step(n)}});
  }
  return {{"actions", actions}, {"unchanged", p.unchanged}, {"orphans", p.orphans}};
}

json event_json(const reconciler::Event& e) {
  return {{"time", iso_time(e.time)}, {"type", e.type},           {"project", e.project},
          {"service", e.service},     {"container", e.container}, {"attributes", e.attributes}};
}

// Sends what one container's log follower reads whenever its inotify descriptor wakes, until
// the descriptor is cancelled. (Parameters, not coroutine-lambda captures: see join_all.)
awaitable<void> follow_one(asio::posix::stream_descriptor* fd, engine::LogFollower* follower,
                           std::function<void(const engine::LogRecord&)> send, int* active,
                           reconciler::Notifier* finished) {
  for (;;) {
    auto [ec] = co_await fd->async_wait(asio::posix::stream_descriptor::wait_read,
                                        reconciler::no_throw);
    if (ec) break;
    if (auto recs = follower->read_new())
      for (const auto& r : *recs) send(r);
  }
  (*active)--;
  finished->notify();
}

reconciler::Progress progress_to(Emit emit) {
  return [emit](const std::string& object, const std::string& what, std::chrono::milliseconds t) {
    emit({{"progress", {{"container", object}, {"action", what}, {"ms", t.count()}}}});
  };
}

std::optional<std::chrono::seconds> timeout_of(const json& body) {
  if (body.contains("timeout") && body["timeout"].is_number_integer())
    return std::chrono::seconds(body["timeout"].get<int>());
  return std::nullopt;
}

// `stack up`: the daemon loads the files itself, with the caller's environment, so that it
// can load them again when they change.
Reply up_reply(Daemon& d, const json& body) {
  reconciler::UpRequest req;
  for (const auto& f : body.value("files", json::array())) req.load.files.emplace_back(f.get<std::string>());
  if (body.contains("project_name") && !body["project_name"].get<std::string>().empty())
    req.load.project_name = body["project_name"].get<std::string>();
  req.load.working_dir = body.value("working_dir", std::string("/"));
  const json env = body.value("environment", json::object());  // items() must not outlive it
  for (const auto& [k, v] : env.items()) req.load.environment[k] = v.get<std::string>();
  req.options.plan.services = body.value("services", std::vector<std::string>{});
  req.options.plan.force_recreate = body.value("force_recreate", false);
  req.options.plan.remove_orphans = body.value("remove_orphans", false);
  req.options.plan.pull = body.value("pull", std::string());
  req.options.plan.build = body.value("build", false);
  req.options.dry_run = body.value("dry_run", false);
  req.options.plan.no_recreate = body.value("no_recreate", false);
  req.options.plan.always_recreate_deps = body.value("always_recreate_deps", false);
  req.options.plan.no_deps = body.value("no_deps", false);
  req.no_start = body.value("no_start", false);
  req.scale = body.value("scale", std::map<std::string, int>{});
  req.wait = body.value("wait", false);
  req.wait_timeout = std::chrono::seconds(body.value("wait_timeout", 300));
  auto auth = registry_auth_of(body);
  if (!auth) return error_reply(400, "up: " + auth.error().message);
  req.registry_auth = *auth;
  return {200, {}, [&d, req](Emit emit, Cancelled) mutable -> awaitable<void> {
            req.warn = [emit](const std::string& w) { emit({{"warning", w}}); };
            auto up = co_await d.up(req, progress_to(emit));
            if (!up) emit({{"error", up.error().message}});
            else
              emit({{"project", up->project},
                    {"plan", plan_json(up->plan)},
                    {"not_attached", up->not_attached}});
          }};
}

// `stack build`: the files loaded as `up` loads them; the builds' steps stream as progress
// lines ("build web", "step 2/4: RUN make"), then {"built": [{service, image, id}]}.
Reply build_reply(Daemon& d, const json& body) {
  reconciler::BuildServicesRequest req;
  for (const auto& f : body.value("files", json::array())) req.load.files.emplace_back(f.get<std::string>());
  if (body.contains("project_name") && !body["project_name"].get<std::string>().empty())
    req.load.project_name = body["project_name"].get<std::string>();
  req.load.working_dir = body.value("working_dir", std::string("/"));
  const json env = body.value("environment", json::object());
  for (const auto& [k, v] : env.items()) req.load.environment[k] = v.get<std::string>();
  req.services = body.value("services", std::vector<std::string>{});
  req.no_cache = body.value("no_cache", false);
  req.pull = body.value("pull", false);
  const json args = body.value("build_args", json::object());
  for (const auto& [k, v] : args.items())
    if (v.is_string()) req.args[k] = v.get<std::string>();
  req.load.services = req.services;
  auto auth = registry_auth_of(body);
  if (!auth) return error_reply(400, "build: " + auth.error().message);
  req.registry_auth = *auth;
  return {200, {}, [&d, req](Emit emit, Cancelled) mutable -> awaitable<void> {
            req.warn = [emit](const std::string& w) { emit({{"warning", w}}); };
            auto built = co_await d.build_services(req, progress_to(emit));
            if (!built) {
              emit({{"error", built.error().message}});
              co_return;
            }
            json out = json::array();
            for (const auto& b : *built)
              out.push_back({{"service", b.service}, {"image", b.image}, {"id", b.id}});
            emit({{"built", out}});
          }};
}

using Op = std::function<awaitable<Result<void>>(reconciler::Progress)>;
Reply op_reply(Op op) {
  return {200, {}, [op](Emit emit, Cancelled) -> awaitable<void> {
            auto r = co_await op(progress_to(emit));
            if (!r) emit({{"error", r.error().message}});
            else emit({{"ok", true}});
          }};
}

// Logs: the last TAIL lines of each container interleaved by time, then (follow) new lines as
// they are written; with until_exit the stream ends once none of the containers runs.
Reply logs_reply(Daemon& d, const std::string& project, const Target& t) {
  auto list = d.ps(project, true);
  if (!list) return error_reply(500, list.error().message);
  auto services = t.all("service");
  auto names = t.all("container");  // `run`: its one-off container only
  std::vector<std::pair<std::string, std::string>> containers;  // name, service
  for (const auto& c : *list)
    if ((services.empty() || std::count(services.begin(), services.end(), c.service)) &&
        (names.empty() || std::count(names.begin(), names.end(), c.name)))
      containers.emplace_back(c.name, c.service);
  // logging driver none keeps no copy to read: said as docker says it when that is all there is.
  std::vector<std::string> unreadable;
  std::erase_if(containers, [&](const auto& c) {
    auto rec = d.controller().store().get_container(c.first);
    bool none = rec && *rec && (*rec)->runtime && (*rec)->runtime->log_driver == "none";
    if (none) unreadable.push_back(c.first);
    return none;
  });
  if (containers.empty() && !unreadable.empty())
    return error_reply(501, "configured logging driver does not support reading: " +
                                unreadable.front() + " (logging driver none)");
  auto tail_or = t.integer("tail", -1);
  if (!tail_or) return error_reply(400, tail_or.error().message);
  int64_t tail = *tail_or;
  bool follow = t.flag("follow"), until_exit = t.flag("until_exit");
  return {200, {}, [&d, project, containers, tail, follow, until_exit](
                       Emit emit, Cancelled cancelled) -> awaitable<void> {
            std::vector<std::pair<size_t, engine::LogFollower>> followers;
            if (follow)
              for (size_t i = 0; i < containers.size(); i++)
                if (auto f = engine::LogFollower::open(
                        d.controller().container_dir(containers[i].first), false))
                  followers.emplace_back(i, std::move(*f));
            struct Line {
              std::string time;
              size_t who;
              engine::LogRecord rec;
            };
            std::vector<Line> lines;
            for (size_t i = 0; i < containers.size(); i++)
              if (auto recs = engine::read_logs(d.controller().container_dir(containers[i].first), tail))
                for (auto& r : *recs) lines.push_back({r.time, i, std::move(r)});
            std::stable_sort(lines.begin(), lines.end(),
                             [](const Line& a, const Line& b) { return a.time < b.time; });
            auto send = [&](size_t who, const engine::LogRecord& r) {
              return emit({{"container", containers[who].first},
                           {"service", containers[who].second},
                           {"time", r.time},
                           {"stream", r.stream},
                           {"text", r.text}});
            };
            for (const auto& l : lines)
              if (!send(l.who, l.rec)) co_return;
            if (!follow) co_return;
            auto running = [&] {
              auto ps = d.ps(project, false);
              if (!ps) return false;
              for (const auto& c : *ps)
                for (const auto& [name, _] : containers)
                  if (c.name == name) return true;
              return false;
            };
            // One coroutine per container, woken by its log directory's inotify descriptor.
            auto ex = co_await asio::this_coro::executor;
            std::vector<std::unique_ptr<asio::posix::stream_descriptor>> fds;
            int active = 0;
            reconciler::Notifier finished(ex);
            for (auto& [who, f] : followers) {
              fds.push_back(std::make_unique<asio::posix::stream_descriptor>(ex, ::dup(f.fd())));
              active++;
              asio::co_spawn(ex,
                             follow_one(fds.back().get(), &f,
                                        [&send, who = who](const engine::LogRecord& r) {
                                          send(who, r);
                                        },
                                        &active, &finished),
                             asio::detached);
            }
            // A container change wakes us; a client that left is noticed within a second.
            while (!cancelled() && !(until_exit && !running()))
              co_await d.changed().wait_for(std::chrono::seconds(1));
            for (auto& fd : fds) fd->cancel();
            while (active > 0) co_await finished.wait();
            if (!cancelled())  // what the containers wrote on their way out
              for (auto& [who, f] : followers)
                if (auto recs = f.read_new())
                  for (const auto& r : *recs) send(who, r);
          }};
}

Reply events_reply(Daemon& d, const Target& t) {
  std::string project = t.get("project");
  // since=UNIX_MS: the events kept from that time on (the last 1,000) come first.
  int64_t since = std::atoll(t.get("since").c_str());
  return {200, {}, [&d, project, since](Emit emit, Cancelled cancelled) -> awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            std::deque<reconciler::Event> queue;
            reconciler::Notifier wake(ex);
            if (since > 0)
              for (const auto& e : d.events().recent())
                if (e.time >= since && (project.empty() || e.project == project)) queue.push_back(e);
            int id = d.events().subscribe([&](const reconciler::Event& e) {
              if (!project.empty() && e.project != project) return;
              queue.push_back(e);
              wake.notify();
            });
            while (!cancelled()) {
              while (!queue.empty()) {
                if (!emit(event_json(queue.front()))) break;
                queue.pop_front();
              }
              co_await wake.wait_for(std::chrono::milliseconds(1000));
            }
            d.events().unsubscribe(id);
          }};
}

// 404 for a path the API does not have, 405 for a method it does not answer (the server adds
// the Allow header).
std::optional<Reply> check_method(const Request& req, const Target& t) {
  auto allowed = allowed_methods(t.path);
  if (allowed.empty()) return error_reply(404, "unknown API path " + req.target);
  if (std::find(allowed.begin(), allowed.end(), req.method) != allowed.end()) return std::nullopt;
  return error_reply(405, "method " + req.method + " is not allowed on " +
                              req.target.substr(0, req.target.find('?')) + " (use " +
                              allow_header(allowed) + ")");
}

// Integer query parameters: a bad one is a 400 naming it.
struct Ints {
  std::optional<std::string> error;
  int get(const Target& t, const std::string& key, int def) {
    auto v = t.integer(key, def);
    if (!v || *v < INT32_MIN || *v > INT32_MAX) {
      if (!error) error = v ? "query parameter " + key + " is out of range" : v.error().message;
      return def;
    }
    return static_cast<int>(*v);
  }
};

// /v1/networks: GET (list), POST (create {name, subnet}); /v1/networks/NAME: GET (inspect),
// DELETE (rm: a network of no project, 409 while in use).
Reply network_reply(reconciler::Daemon& d, const std::string& m, const std::vector<std::string>& p,
                    const json& body) {
  auto to_json = [](const reconciler::Daemon::NetworkListing& n) {
    json j{{"name", n.name},     {"project", n.project}, {"driver", n.driver},
           {"subnet", n.subnet}, {"gateway", n.gateway}, {"containers", n.containers}};
    if (n.ingress) j["ingress"] = true;
    return j;
  };
  if (p.size() == 2 && m == "GET") {
    auto list = d.list_networks();
    if (!list) return error_reply(500, list.error().message);
    json arr = json::array();
    for (const auto& n : *list) arr.push_back(to_json(n));
    return {200, arr, {}};
  }
  if (p.size() == 2 && m == "POST") {
    auto n = d.create_network(body.value("name", ""), body.value("subnet", ""));
    if (!n) return error_reply(400, n.error().message);
    return {200, to_json(*n), {}};
  }
  if (p.size() == 3 && m == "GET") {
    auto list = d.list_networks();
    if (!list) return error_reply(500, list.error().message);
    for (const auto& n : *list)
      if (n.name == p[2]) return {200, to_json(n), {}};
    return error_reply(404, "no such network: " + p[2]);
  }
  if (p.size() == 3 && m == "DELETE") {
    if (auto r = d.remove_network(p[2]); !r)
      return error_reply(r.error().message.find("no such network") != std::string::npos ? 404 : 409,
                         r.error().message);
    return {200, {{"deleted", p[2]}}, {}};
  }
  return error_reply(404, "unknown API path " + m + " /v1/networks" + (p.size() > 2 ? "/" + p[2] : ""));
}

// /v1/volumes: GET (list), POST (create {name, driver_opts, labels}); /v1/volumes/NAME: GET
// (inspect), DELETE (rm, 409 while in use); POST /v1/volumes/prune.
awaitable<Reply> volume_reply(reconciler::Daemon& d, std::string m, std::vector<std::string> p,
                              json body) {
  auto to_json = [](const reconciler::Daemon::VolumeInfo& v) {
    return json{{"name", v.name},          {"project", v.project},
                {"driver", "local"},       {"mountpoint", v.mountpoint},
                {"options", v.driver_opts}, {"labels", v.labels},
                {"created", v.created_at}, {"used_by", v.used_by},
                {"anonymous", v.anonymous}};
  };
  if (p.size() == 2 && m == "GET") {
    auto list = d.list_volumes();
    if (!list) co_return error_reply(500, list.error().message);
    json arr = json::array();
    for (const auto& v : *list) arr.push_back(to_json(v));
    co_return Reply{200, arr, {}};
  }
  if (p.size() == 2 && m == "POST") {
    auto strings = [&](const char* key) {
      std::map<std::string, std::string> out;
      if (body.contains(key) && body[key].is_object())
        for (const auto& [k, v] : body[key].items())
          if (v.is_string()) out[k] = v.get<std::string>();
      return out;
    };
    auto v = d.create_volume(body.value("name", ""), strings("driver_opts"), strings("labels"));
    if (!v) co_return error_reply(400, v.error().message);
    co_return Reply{200, to_json(*v), {}};
  }
  if (p.size() == 3 && m == "POST" && p[2] == "prune") {
    auto removed = co_await d.prune_volumes();
    if (!removed) co_return error_reply(409, removed.error().message);
    co_return Reply{200, {{"removed", *removed}}, {}};
  }
  if (p.size() == 3 && m == "GET") {
    auto list = d.list_volumes();
    if (!list) co_return error_reply(500, list.error().message);
    for (const auto& v : *list)
      if (v.name == p[2]) co_return Reply{200, to_json(v), {}};
    co_return error_reply(404, "no such volume: " + p[2]);
  }
  if (p.size() == 3 && m == "DELETE") {
    if (auto r = co_await d.remove_volume(p[2]); !r)
      co_return error_reply(r.error().message.find("no such volume") != std::string::npos ? 404 : 409,
                         r.error().message);
    co_return Reply{200, {{"deleted", p[2]}}, {}};
  }
  co_return error_reply(404, "unknown API path " + m + " /v1/volumes" + (p.size() > 2 ? "/" + p[2] : ""));
}

}  // namespace

awaitable<Reply> route(Daemon& d, const Request& req) {
  auto target = parse_target(req.target);
  if (!target) co_return error_reply(400, target.error().message);
  const Target& t = *target;
  if (auto refused = check_method(req, t)) co_return *refused;
  json body = json::object();
  if (!req.body.empty()) {
    body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) co_return error_reply(400, "request body is not JSON");
    if (!body.is_object()) co_return error_reply(400, "request body is not a JSON object");
  }
  if (is_image_transfer(req, t)) co_return co_await image_transfer(d, req, t, body);
  if (is_image_route(t)) co_return co_await image_route(d, req, t, body);
  if (is_verb_route(t)) co_return co_await verb_route(d, req, t, body);
  if (is_lifecycle_route(t)) co_return lifecycle_route(d, req, t, body);
  if (is_copy_route(t)) co_return co_await copy_route(d, req, t, body);
  if (is_attach_route(t)) co_return co_await attach_route(d, req, t, body);
  if (is_node_route(t)) co_return co_await node_route(d, req, t, body);
  const auto& p = t.path;
  const auto& m = req.method;
  try {
    if (m == "GET" && p.size() == 2 && p[1] == "version") {
      json v = {{"version", STACK_VERSION},
                {"pid", ::getpid()},
                {"root", d.paths().root.string()},
                {"run_root", d.paths().run_root.string()},
                {"reconciles", d.reconciles()}};
      if (d.cluster_agent) v["cluster"] = cluster_agent_json(*d.cluster_agent);
      co_return Reply{200, v, {}};
    }
    if (m == "POST" && p.size() == 2 && p[1] == "shutdown") {
      if (d.on_shutdown_request) d.on_shutdown_request();
      co_return Reply{200, {{"ok", true}}, {}};
    }
    if (m == "GET" && p.size() == 2 && p[1] == "projects" && t.flag("files")) {
      // `stack ls`: each project with the stack files it was brought up from.
      auto list = d.controller().store().list_projects();
      if (!list) co_return error_reply(500, list.error().message);
      json arr = json::array();
      for (const auto& r : *list) arr.push_back({{"name", r.name}, {"files", r.files}});
      co_return Reply{200, arr, {}};
    }
    if (m == "GET" && p.size() == 2 && p[1] == "projects") {
      auto list = d.projects();
      if (!list) co_return error_reply(500, list.error().message);
      co_return Reply{200, *list, {}};
    }
    if (m == "GET" && p.size() == 2 && p[1] == "containers") {
      auto list = d.ps("", t.flag("all"));
      if (!list) co_return error_reply(500, list.error().message);
      json arr = json::array();
      for (const auto& c : *list) arr.push_back(status_json(c));
      co_return Reply{200, arr, {}};
    }
    if (m == "POST" && p.size() == 2 && p[1] == "up") co_return up_reply(d, body);
    if (m == "POST" && p.size() == 2 && p[1] == "build") co_return build_reply(d, body);
    if (m == "GET" && p.size() == 2 && p[1] == "events") co_return events_reply(d, t);
    if (p.size() >= 2 && p[1] == "volumes") co_return co_await volume_reply(d, m, p, body);
    if (p.size() >= 2 && p[1] == "networks") co_return network_reply(d, m, p, body);
    if (p.size() == 4 && p[1] == "projects") {
      const std::string& project = p[2];
      const std::string& what = p[3];
      auto services = body.value("services", std::vector<std::string>{});
      auto timeout = timeout_of(body);
      if (m == "GET" && what == "containers") {
        auto list = d.ps(project, t.flag("all"));
        if (!list) co_return error_reply(500, list.error().message);
        json arr = json::array();
        for (const auto& c : *list) arr.push_back(status_json(c));
        co_await add_cluster_rows(d, project, arr);
        co_return Reply{200, arr, {}};
      }
      if (m == "GET" && what == "logs") co_return logs_reply(d, project, t);
      if (m == "GET" && what == "stats") co_return stats_reply(d, project, t);
      if (m == "GET" && what == "port") {
        Ints ints;
        int index = ints.get(t, "index", 1), private_port = ints.get(t, "private_port", 0);
        if (ints.error) co_return error_reply(400, *ints.error);
        auto address = d.port(project, t.get("service"), index, private_port,
                              t.get("protocol", "tcp"));
        if (!address) co_return error_reply(404, address.error().message);
        co_return Reply{200, {{"address", *address}}, {}};
      }
      if (m == "POST" && what == "exec") co_return co_await exec_reply(d, project, body, req);
      if (m == "POST" && what == "down") {
        bool volumes = body.contains("volumes") && body["volumes"].is_boolean() &&
                       body["volumes"].get<bool>();
        co_return op_reply([&d, project, timeout, volumes](reconciler::Progress pr) {
          return d.down(project, timeout, pr, volumes);
        });
      }
      if (m == "POST" && what == "stop")
        co_return op_reply([&d, project, services, timeout](reconciler::Progress pr) {
          return d.stop(project, services, timeout, pr);
        });
      if (m == "POST" && what == "start")
        co_return op_reply([&d, project, services](reconciler::Progress pr) {
          return d.start_services(project, services, pr);
        });
      if (m == "POST" && what == "rollback")
        co_return op_reply([&d, project, services](reconciler::Progress pr) {
          return d.rollback(project, services, pr);
        });
      if (m == "POST" && what == "restart")
        co_return op_reply([&d, project, services, timeout](reconciler::Progress pr) {
          return d.restart(project, services, timeout, pr);
        });
    }
  } catch (const std::exception& e) {  // malformed numbers and JSON types in a request
    co_return error_reply(400, std::string("bad request: ") + e.what());
  }
  co_return error_reply(404, "unknown API path " + m + " " + req.target);
}

}  // namespace stack::api
