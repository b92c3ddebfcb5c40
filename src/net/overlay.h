// Where an overlay network's peers come from: the underlay addresses of the other hosts
// sharing it. Static configuration (driver_opts.peers) today; a distributed store (etcd) is
// another implementation of the same interface later.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "net/address.h"

namespace stack::net {

class OverlayPeers {
 public:
  virtual ~OverlayPeers() = default;
  // The remote hosts' underlay addresses for NETWORK (never this host's own).
  [[nodiscard]] virtual Result<std::vector<Ipv4>> peers(std::string_view network) = 0;
};

// Peers given in the stack file: driver_opts.peers = "192.168.10.2,192.168.10.3".
class StaticPeers final : public OverlayPeers {
 public:
  // Parses a comma-separated list (spaces allowed); errors name the bad entry.
  [[nodiscard]] static Result<std::vector<Ipv4>> parse(std::string_view list);
  void set(std::string network, std::vector<Ipv4> peers) {
    peers_[std::move(network)] = std::move(peers);
  }
  Result<std::vector<Ipv4>> peers(std::string_view network) override;

 private:
  std::map<std::string, std::vector<Ipv4>, std::less<>> peers_;
};

}  // namespace stack::net
