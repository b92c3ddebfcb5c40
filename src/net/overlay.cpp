// Static overlay peers from driver_opts.peers.
#include "net/overlay.h"

namespace stack::net {

Result<std::vector<Ipv4>> StaticPeers::parse(std::string_view list) {
  std::vector<Ipv4> out;
  while (!list.empty()) {
    size_t comma = list.find(',');
    auto item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.push_back(STACK_TRY_CTX(Ipv4::parse(item), "driver_opts.peers"));
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return out;
}

Result<std::vector<Ipv4>> StaticPeers::peers(std::string_view network) {
  auto it = peers_.find(network);
  if (it == peers_.end()) return std::vector<Ipv4>{};
  return it->second;
}

}  // namespace stack::net
