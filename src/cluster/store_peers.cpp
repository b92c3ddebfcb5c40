// Endpoint records as JSON under /stack/overlay/<net>/endpoints/<node>/<container>, the
// listing + watch that follows them, and StorePeers' cache.
#include "cluster/store_peers.h"

#include <set>

#include <nlohmann/json.hpp>

namespace stack::cluster {

using json = nlohmann::json;

namespace {

// The names are written only when set: a record without them reads as before.
std::string encode(const OverlayEndpoint& ep) {
  json j{{"ip", ep.ip.str()}, {"mac", ep.mac.str()}, {"underlay", ep.underlay.str()}};
  if (!ep.service.empty()) j["service"] = ep.service;
  if (!ep.project.empty()) j["project"] = ep.project;
  if (!ep.aliases.empty()) j["aliases"] = ep.aliases;
  if (!ep.health.empty()) j["health"] = ep.health;
  return j.dump();
}

// "<node>/<container>" after the network's prefix.
bool split_key(const std::string& network, const std::string& key, std::string& node,
               std::string& container) {
  const auto prefix = keys::overlay_endpoints(network);
  if (key.compare(0, prefix.size(), prefix) != 0) return false;
  auto rest = key.substr(prefix.size());
  auto slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == rest.size()) return false;
  node = rest.substr(0, slash);
  container = rest.substr(slash + 1);
  return true;
}

std::optional<OverlayEndpoint> decode(const std::string& network, const KeyValue& kv) {
  OverlayEndpoint ep;
  if (!split_key(network, kv.key, ep.node, ep.container)) return std::nullopt;
  json j = json::parse(kv.value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto text = [&](const char* f) {
    auto it = j.find(f);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto ip = net::Ipv4::parse(text("ip"));
  auto mac = net::Mac::parse(text("mac"));
  auto underlay = net::Ipv4::parse(text("underlay"));
  if (!ip || !mac || !underlay) return std::nullopt;
  ep.ip = *ip;
  ep.mac = *mac;
  ep.underlay = *underlay;
  ep.service = text("service");
  ep.project = text("project");
  ep.health = text("health");
  if (auto it = j.find("aliases"); it != j.end() && it->is_array())
    for (const auto& a : *it)
      if (a.is_string()) ep.aliases.push_back(a.get<std::string>());
  return ep;
}

}  // namespace

Result<void> put_endpoint(Store& store, const std::string& network, const OverlayEndpoint& ep,
                          LeaseId lease) {
  if (ep.node.empty() || ep.container.empty() || ep.node.find('/') != std::string::npos)
    return fail("register endpoint on " + network + ": bad node or container name \"" +
                ep.node + "/" + ep.container + "\"");
  auto r = store.put(keys::overlay_endpoint(network, ep.node, ep.container), encode(ep), lease);
  if (!r) return fail(r.error().wrap("register endpoint " + ep.container + " on " + network));
  return {};
}

Result<void> erase_endpoint(Store& store, const std::string& network, const std::string& node,
                            const std::string& container) {
  auto r = store.erase(KeyRange::exact(keys::overlay_endpoint(network, node, container)));
  if (!r) return fail(r.error().wrap("remove endpoint " + container + " from " + network));
  return {};
}

Result<EndpointListing> list_endpoints(Store& store, const std::string& network) {
  auto r = STACK_TRY_CTX(store.range(KeyRange::with_prefix(keys::overlay_endpoints(network))),
                         "endpoints of " + network);
  EndpointListing out;
  out.revision = r.revision;
  for (const auto& kv : r.kvs)
    if (auto ep = decode(network, kv)) out.endpoints.push_back(std::move(*ep));
  return out;
}

Result<std::unique_ptr<EndpointWatch>> EndpointWatch::start(Store& store,
                                                            const std::string& network) {
  auto listed = list_endpoints(store, network);
  if (!listed) return fail(listed.error());
  auto listing = std::move(*listed);
  auto stream = STACK_TRY_CTX(
      store.watch(KeyRange::with_prefix(keys::overlay_endpoints(network)), listing.revision + 1),
      "watch endpoints of " + network);
  return std::unique_ptr<EndpointWatch>(
      new EndpointWatch(network, std::move(listing), std::move(stream)));
}

std::optional<EndpointChange> endpoint_change(const std::string& network, const Event& e) {
  EndpointChange c;
  if (e.type == Event::Type::Delete) {
    c.kind = EndpointChange::Kind::Removed;
    if (!split_key(network, e.kv.key, c.endpoint.node, c.endpoint.container)) return std::nullopt;
    return c;
  }
  auto ep = decode(network, e.kv);
  if (!ep) return std::nullopt;
  c.endpoint = std::move(*ep);
  return c;
}

Result<std::vector<EndpointChange>> EndpointWatch::next(std::chrono::milliseconds timeout) {
  auto events = STACK_TRY_CTX(stream_->next(timeout), "watch endpoints of " + network_);
  std::vector<EndpointChange> out;
  for (const auto& e : events)
    if (auto c = endpoint_change(network_, e)) out.push_back(std::move(*c));
  return out;
}

Result<std::vector<net::Ipv4>> StorePeers::peers(std::string_view network) {
  std::lock_guard lock(mu_);
  auto it = nets_.find(network);
  if (it == nets_.end())
    return fail("overlay network " + std::string(network) +
                ": its endpoints are not loaded from the cluster store yet");
  std::set<net::Ipv4> seen;
  std::vector<net::Ipv4> out;
  for (const auto& [key, ep] : it->second)
    if (ep.node != self_ && seen.insert(ep.underlay).second) out.push_back(ep.underlay);
  return out;
}

void StorePeers::replace(const std::string& network,
                         const std::vector<OverlayEndpoint>& endpoints) {
  std::lock_guard lock(mu_);
  auto& net = nets_[network];
  net.clear();
  for (const auto& ep : endpoints) net[ep.node + "/" + ep.container] = ep;
}

void StorePeers::apply(const std::string& network, const std::vector<EndpointChange>& changes) {
  std::lock_guard lock(mu_);
  auto& net = nets_[network];
  for (const auto& c : changes) {
    auto key = c.endpoint.node + "/" + c.endpoint.container;
    if (c.kind == EndpointChange::Kind::Removed) {
      net.erase(key);
    } else {
      net[key] = c.endpoint;
    }
  }
}

void StorePeers::forget(const std::string& network) {
  std::lock_guard lock(mu_);
  nets_.erase(network);
}

std::vector<OverlayEndpoint> StorePeers::endpoints(const std::string& network) const {
  std::lock_guard lock(mu_);
  std::vector<OverlayEndpoint> out;
  if (auto it = nets_.find(network); it != nets_.end())
    for (const auto& [key, ep] : it->second) out.push_back(ep);
  return out;
}

}  // namespace stack::cluster
