// BridgeBuildNetwork: NetworkManager's bridge networks (NAT through its nftables table) used
// for the RUN containers of one build.
#include "build/bridge_network.h"

#include "net/network.h"

namespace stack::build {

std::string upstream_resolv_conf(std::string_view host_resolv) {
  std::string out;
  bool any = false;
  size_t pos = 0;
  while (pos < host_resolv.size()) {
    size_t nl = host_resolv.find('\n', pos);
    std::string line(host_resolv.substr(pos, nl == std::string_view::npos ? nl : nl - pos));
    pos = nl == std::string_view::npos ? host_resolv.size() : nl + 1;
    if (line.rfind("nameserver", 0) == 0) {
      std::string addr = line.substr(10);
      addr.erase(0, addr.find_first_not_of(" \t"));
      addr.erase(addr.find_last_not_of(" \t\r") + 1);
      if (addr.rfind("127.", 0) == 0 || addr == "::1") continue;
      any = true;
    }
    out += line + "\n";
  }
  return any ? out : std::string();
}

BridgeBuildNetwork::BridgeBuildNetwork(net::NetworkManager& manager, std::string name,
                                       std::string host_resolv)
    : manager_(manager), name_(std::move(name)), host_resolv_(std::move(host_resolv)) {}

BridgeBuildNetwork::~BridgeBuildNetwork() { (void)remove(); }

Result<std::string> BridgeBuildNetwork::resolv_conf() { return upstream_resolv_conf(host_resolv_); }

Result<void> BridgeBuildNetwork::attach(std::string_view container, int netns_fd, pid_t pid) {
  if (!made_) {
    net::NetworkSpec spec;
    spec.project = name_;
    spec.name = "default";
    if (auto r = manager_.ensure_network(spec); !r)
      return fail(r.error().wrap("make the build network " + full_name()));
    made_ = true;
  }
  auto eps = manager_.attach(container, netns_fd, static_cast<uint64_t>(pid),
                             {net::EndpointRequest{full_name()}});
  if (!eps) return fail(eps.error().wrap("attach " + std::string(container) + " to " + full_name()));
  return {};
}

void BridgeBuildNetwork::detach(std::string_view container) { (void)manager_.detach(container); }

Result<void> BridgeBuildNetwork::remove() {
  if (!made_) return {};
  if (auto r = manager_.remove_network(full_name()); !r)
    return fail(r.error().wrap("remove the build network"));
  made_ = false;
  return {};
}

}  // namespace stack::build
