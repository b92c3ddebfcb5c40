// Renders the routing mesh's rules (FirewallModel::mesh) for the instance's `table ip`: a DNAT
// per meshed port over its replicas' overlay addresses, and the SNAT that brings the replies of
// another node's replica back through this one. Pure text, pinned by the unit tests; applying
// them is Firewall::apply's (render_table puts them first in their chains).
#include <algorithm>
#include <cstdio>
#include <map>
#include <tuple>
#include <sstream>

#include "net/firewall.h"

namespace stack::net {
namespace {

const char* proto_of(Proto p) {
  switch (p) {
    case Proto::kUdp: return "udp";
    case Proto::kSctp: return "sctp";
    case Proto::kTcp: break;
  }
  return "tcp";
}

std::string mark_text() {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", kMeshMark);
  return buf;
}

}  // namespace

Result<MeshRules> render_mesh(const std::vector<MeshPort>& mesh) {
  auto ports = mesh;
  for (auto& p : ports) std::sort(p.backends.begin(), p.backends.end());
  std::sort(ports.begin(), ports.end(), [](const MeshPort& a, const MeshPort& b) {
    return std::tie(a.proto, a.port) < std::tie(b.proto, b.port);
  });
  const std::string mark = mark_text();
  std::ostringstream pub;
  // bridge -> (snat, local backends): one pair of SNAT rules per overlay.
  std::map<std::string, std::pair<Ipv4, std::vector<Ipv4>>> snat;
  for (const auto& p : ports) {
    if (p.port == 0 || p.target == 0)
      return fail("routing mesh: invalid port " + std::to_string(p.port) + ":" +
                  std::to_string(p.target));
    std::string match = std::string("\t\t") + proto_of(p.proto) + " dport " +
                        std::to_string(p.port);
    // No healthy replica anywhere: nothing answers, rather than a local container the mesh
    // left out (an unhealthy one) through its node-local rule further down.
    if (p.backends.empty()) {
      pub << match << " drop\n";
      continue;
    }
    // numgen inc: round robin per rule, so that N connections reach N replicas in turn.
    pub << match << " meta mark set " << mark << " dnat ip to numgen inc mod "
        << p.backends.size() << " map { ";
    for (size_t i = 0; i < p.backends.size(); i++)
      pub << (i ? ", " : "") << i << " : " << p.backends[i].address.str() << " . " << p.target;
    pub << " }\n";
    auto& s = snat[p.bridge];
    s.first = p.snat;
    for (const auto& b : p.backends)
      if (b.local) s.second.push_back(b.address);
  }
  std::ostringstream post;
  for (auto& [bridge, s] : snat) {
    auto& [address, locals] = s;
    std::sort(locals.begin(), locals.end());
    locals.erase(std::unique(locals.begin(), locals.end()), locals.end());
    std::string head = "\t\tmeta mark " + mark + " oifname \"" + bridge + "\"";
    // A replica here answers its gateway, which is this host (every host's bridge holds the
    // same gateway address, so the gateway cannot serve a replica on another node).
    if (!locals.empty()) {
      post << head << " ip daddr { ";
      for (size_t i = 0; i < locals.size(); i++) post << (i ? ", " : "") << locals[i].str();
      post << " } masquerade\n";
    }
    post << head << " snat ip to " << address.str() << "\n";
  }
  return MeshRules{pub.str(), post.str()};
}

}  // namespace stack::net
