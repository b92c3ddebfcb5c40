// ClusterMesh: the cluster's projects (from the assignment view) and the overlays' endpoints
// (ClusterOverlay's watch) made into the firewall's mesh ports on the loop; the only store work,
// this node's address on an overlay, goes through ClusterOverlay (the agent's thread).
#include "reconciler/cluster_mesh.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "cluster/node_agent.h"
#include "common/log.h"
#include "net/firewall.h"
#include "reconciler/cluster_ingress.h"
#include "reconciler/cluster_overlay.h"
#include "reconciler/networking.h"

namespace stack::reconciler {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

std::optional<net::Proto> proto_of(const std::string& p) {
  if (p == "tcp" || p.empty()) return net::Proto::kTcp;
  if (p == "udp") return net::Proto::kUdp;
  if (p == "sctp") return net::Proto::kSctp;
  return std::nullopt;
}

std::string text(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// "8080" or "8080-8082": the first and last port, or nothing.
std::optional<std::pair<int, int>> port_range(const std::string& s) {
  try {
    size_t used = 0;
    int first = std::stoi(s, &used);
    int last = first;
    if (used < s.size()) {
      if (s[used] != '-') return std::nullopt;
      last = std::stoi(s.substr(used + 1));
    }
    if (first < 1 || last < first || last > 65535) return std::nullopt;
    return std::pair{first, last};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::vector<MeshService> mesh_services(const std::string& spec_json,
                                       std::vector<std::string>* not_meshed) {
  std::vector<MeshService> out;
  auto doc = json::parse(spec_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return out;
  const std::string project = text(doc, "name");
  auto networks = doc.value("networks", json::object());
  auto services = doc.value("services", json::object());
  if (!networks.is_object() || !services.is_object()) return out;
  for (const auto& [name, svc] : services.items()) {
    if (!svc.is_object()) continue;
    MeshService m{project, name, "", {}};
    for (const auto& p : svc.value("ports", json::array())) {
      if (!p.is_object()) continue;
      if (!meshed_port(text(p, "mode"), text(p, "host_ip"))) continue;
      auto proto = proto_of(text(p, "protocol"));
      auto range = port_range(text(p, "published"));
      int target = p.value("target", 0);
      if (!proto || !range || target < 1 || target > 65535) continue;
      for (int port = range->first; port <= range->second; port++)
        m.ports.push_back({static_cast<int>(*proto), static_cast<uint16_t>(port),
                           static_cast<uint16_t>(target)});
    }
    if (m.ports.empty()) continue;
    // The ingress network, which up joined it to (cluster_ingress.h): not when it has no
    // interface of its own (network_mode), or a project written before ingress existed.
    auto joined = svc.value("networks", json::object());
    if (joined.is_object() && joined.contains(kIngressNetwork)) {
      auto it = networks.find(kIngressNetwork);
      if (it != networks.end() && it->is_object() && text(*it, "driver") == "overlay")
        m.network = text(*it, "name");
    }
    if (m.network.empty()) {
      if (not_meshed) not_meshed->push_back(project + "/" + name);
      continue;
    }
    out.push_back(std::move(m));
  }
  return out;
}

ClusterMesh::ClusterMesh(asio::io_context& io, cluster::NodeAgent& agent, ClusterOverlay& overlay,
                         Networking& networking)
    : io_(io), agent_(agent), overlay_(overlay), networking_(networking) {
  overlay_.set_listener([this](const std::string& network) {
    for (const auto& s : services_)
      if (s.network == network) return refresh();
  });
}

ClusterMesh::~ClusterMesh() {
  *alive_ = false;
  overlay_.set_listener(nullptr);
}

void ClusterMesh::projects(const cluster::LocalView& view) {
  std::vector<MeshService> services;
  std::vector<std::string> not_meshed;
  for (const auto& [name, lp] : view) {
    auto more = mesh_services(lp.project.spec, &not_meshed);
    services.insert(services.end(), more.begin(), more.end());
  }
  for (const auto& s : not_meshed)
    if (warned_.insert(s).second)
      log::get("cluster")->warn(
          "routing mesh: service {} publishes ports but joins no ingress network (network_mode): "
          "they answer only on the nodes that run one of its replicas",
          s);
  if (services == services_) return;
  services_ = std::move(services);
  refresh();
}

void ClusterMesh::refresh() {
  auto log = log::get("cluster");
  std::vector<net::MeshPort> mesh;
  std::set<std::string> needed;
  std::set<std::pair<int, uint16_t>> taken;
  for (const auto& s : services_) {
    auto bridge = networking_.bridge_of(s.network);
    if (!bridge) continue;  // not made here yet: the overlay's first listing calls again
    needed.insert(s.network);
    auto host = host_.find(s.network);
    if (host == host_.end()) {
      if (!pending_.insert(s.network).second) continue;
      auto alive = alive_;
      asio::co_spawn(
          io_,
          [this, alive, network = s.network, mac = bridge->mac]() -> asio::awaitable<void> {
            auto ip = co_await overlay_.host_address(network, mac);
            if (!*alive) co_return;
            pending_.erase(network);
            if (!ip) {
              log::get("cluster")->error("routing mesh: {}", ip.error().message);
              co_return;
            }
            log::get("cluster")->info("routing mesh: network={} this node's address {}",
                                      network, ip->str());
            host_[network] = *ip;
            refresh();
          },
          asio::detached);
      continue;
    }
    std::vector<net::MeshBackend> backends;
    for (const auto& [key, ep] : overlay_.endpoints(s.network)) {
      if (ep.project != s.project || ep.service != s.service) continue;
      if (!ep.health.empty() && ep.health != "healthy") continue;
      backends.push_back({ep.ip, ep.node == agent_.name()});
    }
    for (const auto& p : s.ports) {
      if (!taken.insert({p.proto, p.published}).second) {
        log->warn("routing mesh: port {} of {}/{} is published by another service already",
                  p.published, s.project, s.service);
        continue;
      }
      net::MeshPort m;
      m.proto = static_cast<net::Proto>(p.proto);
      m.port = p.published;
      m.target = p.target;
      m.bridge = bridge->name;
      m.snat = host->second;
      m.backends = backends;
      mesh.push_back(std::move(m));
    }
  }
  for (auto it = host_.begin(); it != host_.end();)
    if (needed.count(it->first)) {
      ++it;
    } else {
      overlay_.release_host_address(it->first);
      it = host_.erase(it);
    }
  std::string summary;
  for (const auto& m : mesh)
    summary += (summary.empty() ? "" : " ") + std::to_string(m.port) + "->" +
               std::to_string(m.backends.size());
  if (auto r = networking_.set_mesh(std::move(mesh)); !r)
    log->error("{}", r.error().message);
  else if (summary != last_)
    log->info("routing mesh: port->replicas [{}]", summary);
  last_ = summary;
}

}  // namespace stack::reconciler
