// /v1/nodes: the cluster's nodes as `stack node ls|inspect|update|ps` show them. Each request's
// store calls run on the agent's query thread (they block, up to the store's timeout, when etcd
// is unreachable); the loop only awaits their result.
#include "api/node_routes.h"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <tuple>
#include <memory>
#include <set>

#include "cluster/assignment_watch.h"
#include "cluster/node_agent.h"
#include "cluster/nodes.h"
#include "cluster/project_record.h"
#include "reconciler/daemon.h"
#include "reconciler/on_agent.h"

namespace stack::api {

namespace asio = boost::asio;
using nlohmann::json;
using reconciler::awaitable;
using reconciler::on_agent;

namespace {

constexpr auto kPsBudget = std::chrono::milliseconds(1000);

json node_json(const cluster::NodeStatus& n, const cluster::NodeAgent& agent) {
  const auto& r = n.record;
  json out = {{"name", r.name},
              {"status", n.ready ? "ready" : "down"},
              {"address", r.address},
              {"labels", r.labels},
              {"cpus", r.cpus},
              {"memory_bytes", r.memory_bytes},
              {"engine_version", r.engine_version},
              {"started_at", r.started_at},
              {"leader", n.leader},
              {"self", r.name == agent.name()}};
  return out;
}

// "no such node: x" is the client's mistake; anything else is the store's.
int status_of(const Error& e) { return e.message.rfind("no such node", 0) == 0 ? 404 : 503; }

}  // namespace

json cluster_agent_json(const cluster::NodeAgent& agent) {
  static constexpr const char* kStates[] = {"joining", "ready", "refused", "unreachable"};
  auto s = agent.status();
  return {{"node", agent.name()},
          {"state", kStates[static_cast<int>(s.state)]},
          {"error", s.error}};
}

awaitable<void> add_cluster_rows(reconciler::Daemon& d, const std::string& project,
                                 json& containers) {
  cluster::NodeAgent* agent = d.cluster_agent;
  if (!agent) co_return;
  const std::string self = agent->name();
  std::set<std::string> here;
  for (auto& c : containers) {
    c["node"] = self;
    here.insert(c.value("name", ""));
    if (auto ports = d.mesh_ports(project, c.value("service", "")); !ports.empty())
      c["ports"] = ports;
  }
  // ps never waits long on an unreachable etcd: while the lease is kept, the store is given
  // kPsBudget to answer (the read goes on alone on the agent's thread, its answer dropped);
  // otherwise this node's rows alone.
  if (agent->status().state != cluster::NodeAgent::State::Ready) co_return;
  using Slots = std::vector<std::tuple<std::string, int, std::string>>;
  struct Pending {
    explicit Pending(asio::any_io_executor ex) : timer(ex) {}
    std::optional<Result<Slots>> result;
    asio::steady_timer timer;
  };
  auto ex = co_await asio::this_coro::executor;
  auto pending = std::make_shared<Pending>(ex);
  pending->timer.expires_after(kPsBudget);
  agent->submit([agent, project, pending, ex] {
    auto r = cluster::read_project_slots(agent->store(), project);
    asio::post(ex, [pending, r = std::move(r)]() mutable {
      pending->result = std::move(r);
      pending->timer.cancel();
    });
  });
  boost::system::error_code ec;
  co_await pending->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (!pending->result || !*pending->result) co_return;  // this node's rows alone
  for (const auto& [service, slot, node] : **pending->result) {
    if (node == self) continue;
    cluster::SlotKey k{project, service, slot};
    std::string name = project + "-" + k.service + "-" + std::to_string(k.slot);
    if (here.count(name)) continue;  // still here, on its way out
    containers.push_back({{"name", name},
                          {"project", project},
                          {"service", k.service},
                          {"number", k.slot},
                          {"image", ""},
                          {"command", json::array()},
                          {"state", "unknown"},
                          {"reported_by", node},
                          {"health", ""},
                          {"pid", 0},
                          {"exit_code", 0},
                          {"restarts", 0},
                          {"node", node}});
    if (auto ports = d.mesh_ports(project, k.service); !ports.empty())
      containers.back()["ports"] = ports;
  }
}

bool is_node_route(const Target& t) { return t.path.size() >= 2 && t.path[1] == "nodes"; }

awaitable<Reply> node_route(reconciler::Daemon& d, const Request& req, const Target& t,
                            const json& body) {
  cluster::NodeAgent* agent = d.cluster_agent;
  if (!agent)
    co_return error_reply(409, "this daemon is not in a cluster (start it with --cluster URLS)");
  const auto& p = t.path;
  if (req.method == "GET" && p.size() == 2) {
    auto list_fn = [agent] { return cluster::list_nodes(agent->store()); };
    auto list = co_await on_agent(*agent, list_fn);
    if (!list) co_return error_reply(503, list.error().message);
    json arr = json::array();
    for (const auto& n : list->nodes) arr.push_back(node_json(n, *agent));
    co_return Reply{200, arr, {}};
  }
  const std::string name = p.size() >= 3 ? p[2] : "";
  if (req.method == "GET" && p.size() == 3) {
    auto inspect_fn = [agent, name] { return cluster::inspect_node(agent->store(), name); };
    auto n = co_await on_agent(*agent, inspect_fn);
    if (!n) co_return error_reply(status_of(n.error()), n.error().message);
    json out = node_json(*n, *agent);
    // What this daemon's agent knows that the store cannot say: why it is not ready.
    if (name == agent->name()) out["agent"] = cluster_agent_json(*agent);
    co_return Reply{200, out, {}};
  }
  if (req.method == "GET" && p.size() == 4 && p[3] == "ps") {
    // The slots assigned to NAME (its per-node index); for this node, each with the state of
    // its container here ("assigned": not created here yet). Another node publishes no state
    // of its containers (a store write per state change of every container, for a column):
    // theirs is "unknown", reported_by that node (its `stack ps` / `node ps` tell).
    auto read_fn = [agent, name]() -> Result<std::vector<cluster::SlotKey>> {
      auto known = cluster::inspect_node(agent->store(), name);
      if (!known) return fail(known.error());
      auto r = agent->store().range(
          cluster::KeyRange::with_prefix(cluster::keys::node_assigns(name)));
      if (!r) return fail(r.error().wrap("read the assignments of node " + name));
      std::vector<cluster::SlotKey> out;
      for (const auto& kv : r->kvs) {
        std::string node;
        cluster::SlotKey k;
        if (cluster::parse_node_assign_key(kv.key, node, k) && node == name)
          out.push_back(std::move(k));
      }
      return out;
    };
    auto slots = co_await on_agent(*agent, read_fn);
    if (!slots) co_return error_reply(status_of(slots.error()), slots.error().message);
    std::map<std::string, reconciler::ContainerStatus> here;
    if (name == agent->name()) {
      auto local = d.ps("", true);
      if (!local) co_return error_reply(500, local.error().message);
      for (auto& c : *local) here.emplace(c.name, std::move(c));
    }
    const bool self = name == agent->name();
    json arr = json::array();
    for (const auto& k : *slots) {
      std::string cname = k.project + "-" + k.service + "-" + std::to_string(k.slot);
      auto it = here.find(cname);
      std::string state = !self ? "unknown" : it != here.end() ? it->second.state : "assigned";
      json row = {{"name", cname},
                  {"project", k.project},
                  {"service", k.service},
                  {"slot", k.slot},
                  {"node", name},
                  {"state", state},
                  {"health", it != here.end() ? it->second.health : std::string()}};
      if (!self) row["reported_by"] = name;
      arr.push_back(std::move(row));
    }
    co_return Reply{200, arr, {}};
  }
  if (req.method == "POST" && p.size() == 4 && p[3] == "update") {
    cluster::Labels add;
    std::vector<std::string> rm;
    const json a = body.value("label_add", json::object());
    if (!a.is_object()) co_return error_reply(400, "label_add: expected an object of strings");
    for (const auto& [k, v] : a.items()) {
      if (!v.is_string()) co_return error_reply(400, "label_add: " + k + " is not a string");
      add[k] = v.get<std::string>();
    }
    const json r = body.value("label_rm", json::array());
    if (!r.is_array()) co_return error_reply(400, "label_rm: expected an array of strings");
    for (const auto& k : r) {
      if (!k.is_string()) co_return error_reply(400, "label_rm: expected an array of strings");
      rm.push_back(k.get<std::string>());
    }
    auto update_fn = [agent, name, add, rm] {
      return cluster::update_node_labels(agent->store(), name, add, rm);
    };
    auto n = co_await on_agent(*agent, update_fn);
    if (!n) {
      int status = n.error().message.find("not a label key") != std::string::npos ||
                           n.error().message.find(": the value must") != std::string::npos
                       ? 400
                       : status_of(n.error());
      co_return error_reply(status, n.error().message);
    }
    co_return Reply{200, node_json(*n, *agent), {}};
  }
  co_return error_reply(404, "unknown API path " + req.method + " " + req.target);
}

}  // namespace stack::api
