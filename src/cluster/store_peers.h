// Overlay endpoints in the cluster store (/stack/overlay/<net>/endpoints/<node>/<container> →
// {ip, mac, underlay[, service, project, aliases]}, under the node's lease) and StorePeers, the net::OverlayPeers that the
// overlay driver asks for remote hosts. StorePeers answers from a cache and never blocks on the
// store: the cluster agent's thread fills it with EndpointWatch (a listing, then changes).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cluster/store.h"
#include "net/address.h"
#include "net/overlay.h"

namespace stack::cluster {

struct OverlayEndpoint {
  std::string node;
  std::string container;
  net::Ipv4 ip;        // the container's address on the overlay
  net::Mac mac;        // its MAC (the FDB and neighbour entries of other nodes)
  net::Ipv4 underlay;  // the node's address VXLAN packets go to
  // What the embedded DNS of other nodes answers with this address (issue 18): the service
  // and its project ("" when unknown: a record written before these fields, or a container
  // without a service), and the aliases the service has on the network.
  std::string service = "";
  std::string project = "";
  std::vector<std::string> aliases = {};
  // The container's health check status (the routing mesh sends connections only to replicas
  // whose health is "" (none) or "healthy"): "starting", "healthy", "unhealthy".
  std::string health = "";
  bool operator==(const OverlayEndpoint&) const = default;
};

// Registers EP on NETWORK under LEASE (the node's: its endpoints go when it does).
[[nodiscard]] Result<void> put_endpoint(Store& store, const std::string& network,
                                        const OverlayEndpoint& ep, LeaseId lease);
[[nodiscard]] Result<void> erase_endpoint(Store& store, const std::string& network,
                                          const std::string& node, const std::string& container);
// NETWORK's endpoints as the store has them now, and the revision they were read at.
struct EndpointListing {
  std::vector<OverlayEndpoint> endpoints;
  Revision revision = 0;
};
[[nodiscard]] Result<EndpointListing> list_endpoints(Store& store, const std::string& network);

struct EndpointChange {
  enum class Kind { Added, Removed } kind = Kind::Added;  // Added: new or changed
  OverlayEndpoint endpoint;  // Removed: node and container only
};
// The change an event under NETWORK's endpoint prefix makes (none: not an endpoint record, or
// one that does not parse).
[[nodiscard]] std::optional<EndpointChange> endpoint_change(const std::string& network,
                                                            const Event& event);

// NETWORK's endpoints, then each change to them, with nothing missed in between (the watch
// starts at the revision after the listing). Blocking: the cluster agent's thread only.
class EndpointWatch {
 public:
  [[nodiscard]] static Result<std::unique_ptr<EndpointWatch>> start(Store& store,
                                                                    const std::string& network);
  [[nodiscard]] const EndpointListing& initial() const { return initial_; }
  // Changes within TIMEOUT (empty when none). An entry that does not parse is skipped.
  [[nodiscard]] Result<std::vector<EndpointChange>> next(std::chrono::milliseconds timeout);

 private:
  EndpointWatch(std::string network, EndpointListing initial,
                std::unique_ptr<EventStream> stream)
      : network_(std::move(network)), initial_(std::move(initial)), stream_(std::move(stream)) {}
  std::string network_;
  EndpointListing initial_;
  std::unique_ptr<EventStream> stream_;
};

// The peers of each overlay network: the distinct underlay addresses of other nodes' endpoints.
// Thread-safe; peers() reads only the cache.
class StorePeers final : public net::OverlayPeers {
 public:
  explicit StorePeers(std::string self_node) : self_(std::move(self_node)) {}

  Result<std::vector<net::Ipv4>> peers(std::string_view network) override;

  // Fed by the agent: a listing replaces what was known of NETWORK; changes update it.
  void replace(const std::string& network, const std::vector<OverlayEndpoint>& endpoints);
  void apply(const std::string& network, const std::vector<EndpointChange>& changes);
  void forget(const std::string& network);
  [[nodiscard]] std::vector<OverlayEndpoint> endpoints(const std::string& network) const;

 private:
  std::string self_;
  mutable std::mutex mu_;
  // network → "<node>/<container>" → endpoint
  std::map<std::string, std::map<std::string, OverlayEndpoint>, std::less<>> nets_;
};

}  // namespace stack::cluster
