// See validate.h. Every message names the service and the field, at the referring position.
#include "spec/validate.h"

#include <algorithm>
#include <string_view>
#include <tuple>
#include <unordered_map>

namespace stack::spec {
namespace {

std::string profiles_of(const Service& s) {
  std::string out;
  for (const std::string& p : s.profiles) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// Services by name: the checks below look one up per reference, and a scan per lookup made
// loading 100,000 services quadratic.
using ServiceIndex = std::unordered_map<std::string_view, const Service*>;

ServiceIndex index_of(const std::vector<Service>& services) {
  ServiceIndex out;
  out.reserve(services.size());
  for (const Service& s : services) out.emplace(s.name, &s);
  return out;
}

// A link is a dependency too, as compose-go normalises it (started, required, restart):
// the linked service starts first. Added unless
// depends_on names it already. A link to no service is network_fields.cpp's to report.
void add_link_dependencies(Service& s, const ServiceIndex& enabled) {
  SourcePos pos = s.pos;
  for (const KeyUse& k : s.keys)
    if (k.path == "services." + s.name + ".links") pos = k.pos;
  for (const std::string& l : s.links) {
    std::string target = l.substr(0, l.find(':'));
    bool known = std::any_of(s.dependencies.begin(), s.dependencies.end(),
                             [&](const Dependency& d) { return d.service == target; });
    if (!known && target != s.name && enabled.count(target))
      s.dependencies.push_back({target, "service_started", true, true, pos});
  }
}

void check_dependencies(const FieldCtx& ctx, Service& s, const ServiceIndex& enabled,
                        const ServiceIndex& disabled) {
  add_link_dependencies(s, enabled);
  std::vector<Dependency> kept;
  for (const Dependency& d : s.dependencies) {
    FieldCtx c = ctx.child(s.name + ".depends_on");
    if (d.service == s.name) {
      c.error(d.pos, "a service cannot depend on itself");
      continue;
    }
    if (enabled.count(d.service)) {
      kept.push_back(d);
      continue;
    }
    auto off = disabled.find(d.service);
    if (off == disabled.end())
      c.error(d.pos, "unknown service \"" + d.service + "\"");
    else if (d.required)
      c.error(d.pos, "service \"" + d.service + "\" is not enabled (profiles: " +
                         profiles_of(*off->second) + "); use --profile or required: false");
  }
  s.dependencies = kept;
  s.depends_on.clear();
  for (const Dependency& d : kept) s.depends_on.push_back(d.service);
}

void check_network_use(const FieldCtx& ctx, Service& s, const Stack& out,
                       const ServiceIndex& enabled) {
  FieldCtx c = ctx.child(s.name);
  if (!s.network_mode.empty() && !s.networks.empty())
    c.error(s.networks.front().pos, "networks and network_mode cannot be used together");
  for (const char* prefix : {"service:"}) {
    if (s.network_mode.rfind(prefix, 0) != 0) continue;
    std::string other = s.network_mode.substr(std::string(prefix).size());
    if (!enabled.count(other))
      c.child("network_mode").error(s.pos, "unknown service \"" + other + "\"");
  }
  for (const NetworkAttachment& a : s.networks)
    if (a.network != "default" && out.find_network(a.network) == nullptr)
      c.child("networks").error(a.pos, "unknown network \"" + a.network +
                                           "\" (declare it under the top-level networks)");
}

void check_mounts(const FieldCtx& ctx, const Service& s, const Stack& out) {
  FieldCtx c = ctx.child(s.name + ".volumes");
  for (const Mount& m : s.volumes)
    if (m.type == "volume" && !m.source.empty() && out.find_volume(m.source.string()) == nullptr)
      c.error(m.pos, "unknown volume \"" + m.source.string() +
                         "\" (declare it under the top-level volumes)");
  auto refs = [&](const std::vector<FileRef>& used, const std::vector<FileObject>& defined,
                  const char* what) {
    for (const FileRef& r : used)
      if (std::none_of(defined.begin(), defined.end(),
                       [&](const FileObject& f) { return f.key == r.source; }))
        ctx.child(s.name + "." + what)
            .error(r.pos, "unknown " + std::string(what).substr(0, std::string(what).size() - 1) +
                              " \"" + r.source + "\" (declare it under the top-level " + what +
                              ")");
  };
  refs(s.secrets, out.secrets, "secrets");
  refs(s.configs, out.configs, "configs");
}

bool overlap(const Port& a, const Port& b) {
  if (!a.published_start || !b.published_start || a.protocol != b.protocol) return false;
  auto any = [](const std::string& ip) { return ip.empty() || ip == "0.0.0.0" || ip == "::"; };
  if (!any(a.host_ip) && !any(b.host_ip) && a.host_ip != b.host_ip) return false;
  return *a.published_start <= *b.published_end && *b.published_start <= *a.published_end;
}

// Each published port against the ports before it in file order, reported once with the first
// it clashes with. A sweep over the ports sorted by host port compares only those whose ranges
// can meet, so 100,000 services with ports load in linear-ish time (pairwise: quadratic).
void report_port_clashes(Diagnostics& diag, const Stack& out) {
  struct Published {
    size_t order;  // in file order
    const Service* service;
    const Port* port;
  };
  std::vector<Published> ports;
  for (const Service& s : out.services)
    for (const Port& p : s.ports)
      if (p.published_start) ports.push_back({ports.size(), &s, &p});
  std::sort(ports.begin(), ports.end(), [](const Published& a, const Published& b) {
    return std::tie(*a.port->published_start, a.order) <
           std::tie(*b.port->published_start, b.order);
  });
  // For each port (by order), the earliest earlier port it clashes with.
  std::vector<const Published*> first_clash(ports.size(), nullptr);
  std::vector<const Published*> open;  // ranges that may still reach the next start
  for (const Published& p : ports) {
    std::erase_if(open, [&](const Published* q) {
      return *q->port->published_end < *p.port->published_start;
    });
    for (const Published* q : open) {
      // A host range shared by a service's own replicas or ports is fine.
      auto clash = [](const Published& a, const Published& b) {
        return overlap(*a.port, *b.port) &&
               !(a.service == b.service && a.port->published_start != a.port->published_end);
      };
      const Published& later = q->order < p.order ? p : *q;
      const Published& earlier = q->order < p.order ? *q : p;
      if (!clash(later, earlier)) continue;
      const Published*& slot = first_clash[later.order];
      if (slot == nullptr || earlier.order < slot->order) slot = &earlier;
    }
    open.push_back(&p);
  }
  std::vector<const Published*> by_order(ports.size());
  for (const Published& p : ports) by_order[p.order] = &p;
  for (const Published* p : by_order)
    if (const Published* other = first_clash[p->order])
      diag.error(p->port->pos, "services." + p->service->name + ".ports: host port " + std::to_string(*p->port->published_start) + "/" +
                                   p->port->protocol + " is already published by service \"" +
                                   other->service->name + "\"");
}

// depends_on must be acyclic, as compose checks while loading: each cycle is reported once,
// at the depends_on entry that closes it ("a -> b -> c -> a"). Iterative, so a chain of
// 100,000 services does not overflow the stack.
void check_dependency_cycles(const FieldCtx& ctx, const Stack& out) {
  const ServiceIndex index = index_of(out.services);
  enum class Mark : char { kNew, kOnPath, kDone };
  std::unordered_map<const Service*, Mark> mark;
  for (const Service& s : out.services) mark[&s] = Mark::kNew;
  struct Frame {
    const Service* service;
    size_t next = 0;  // the next dependency to follow
  };
  for (const Service& root : out.services) {
    if (mark[&root] != Mark::kNew) continue;
    std::vector<Frame> path{{&root}};
    mark[&root] = Mark::kOnPath;
    while (!path.empty()) {
      Frame& f = path.back();
      if (f.next == f.service->dependencies.size()) {
        mark[f.service] = Mark::kDone;
        path.pop_back();
        continue;
      }
      const Dependency& d = f.service->dependencies[f.next++];
      auto it = index.find(d.service);
      if (it == index.end()) continue;  // reported by check_dependencies
      const Service* next = it->second;
      if (mark[next] == Mark::kNew) {
        mark[next] = Mark::kOnPath;
        path.push_back({next});
      } else if (mark[next] == Mark::kOnPath) {
        std::string cycle;
        auto start = std::find_if(path.begin(), path.end(),
                                  [&](const Frame& p) { return p.service == next; });
        for (auto p = start; p != path.end(); ++p) cycle += p->service->name + " -> ";
        ctx.child(f.service->name + ".depends_on")
            .error(d.pos, "dependency cycle: " + cycle + next->name);
      }
    }
  }
}

void add_default_network(Stack& out) {
  bool used = false;
  for (Service& s : out.services) {
    if (s.network_mode.empty() && s.networks.empty()) {
      NetworkAttachment a;
      a.network = "default";
      a.pos = s.pos;
      s.networks.push_back(a);
    }
    for (const NetworkAttachment& a : s.networks) used = used || a.network == "default";
  }
  if (!used || out.find_network("default") != nullptr) return;
  Network net;
  net.key = "default";
  net.name = out.name + "_default";
  out.networks.push_back(net);
  std::sort(out.networks.begin(), out.networks.end(),
            [](const Network& a, const Network& b) { return a.key < b.key; });
}

}  // namespace

void check_references(const FieldCtx& ctx, Stack& out, const std::vector<Service>& disabled) {
  const ServiceIndex enabled_index = index_of(out.services);
  const ServiceIndex disabled_index = index_of(disabled);
  for (Service& s : out.services) {
    check_dependencies(ctx, s, enabled_index, disabled_index);
    check_network_use(ctx, s, out, enabled_index);
    check_mounts(ctx, s, out);
  }
  check_dependency_cycles(ctx, out);
  add_default_network(out);
}

void check_host_ports(Diagnostics& diag, const Stack& stack) { report_port_clashes(diag, stack); }

}  // namespace stack::spec
