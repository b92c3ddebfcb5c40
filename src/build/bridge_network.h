// The default network of a build's RUN steps on the daemon's network manager: a bridge network
// with NAT made for one build at its first RUN, removed when the build ends (this object goes),
// and the host's upstream nameservers as the RUN containers' resolv.conf, as Docker's default
// bridge gives them. Not thread-safe: the caller serialises it with its own use of MANAGER.
#pragma once

#include <string>
#include <string_view>

#include "build/build.h"

namespace stack::net {
class NetworkManager;
}

namespace stack::build {

class BridgeBuildNetwork final : public BuildNetwork {
 public:
  // NAME tells builds apart ("build-<hex>"): the network is "<name>_default". HOST_RESOLV is the
  // host's /etc/resolv.conf content.
  BridgeBuildNetwork(net::NetworkManager& manager, std::string name, std::string host_resolv);
  ~BridgeBuildNetwork() override;
  BridgeBuildNetwork(const BridgeBuildNetwork&) = delete;
  BridgeBuildNetwork& operator=(const BridgeBuildNetwork&) = delete;

  [[nodiscard]] Result<std::string> resolv_conf() override;
  [[nodiscard]] Result<void> attach(std::string_view container, int netns_fd, pid_t pid) override;
  void detach(std::string_view container) override;
  // Removes the network now (the destructor does it otherwise); idempotent.
  [[nodiscard]] Result<void> remove();
  [[nodiscard]] std::string full_name() const { return name_ + "_default"; }

 private:
  net::NetworkManager& manager_;
  std::string name_;
  std::string host_resolv_;
  bool made_ = false;
};

// HOST_RESOLV without its loopback nameservers (unreachable from a container's namespace);
// with none left, the resolv.conf is empty: the image's own is kept.
[[nodiscard]] std::string upstream_resolv_conf(std::string_view host_resolv);

}  // namespace stack::build
