// See validate.h. Every message names the service and the field, at the referring position.
#include "spec/validate.h"

#include <algorithm>

namespace stack::spec {
namespace {

std::string profiles_of(const Service& s) {
  std::string out;
  for (const std::string& p : s.profiles) out += (out.empty() ? "" : ", ") + p;
  return out;
}

void check_dependencies(const FieldCtx& ctx, Service& s, const Stack& out,
                        const std::vector<Service>& disabled) {
  std::vector<Dependency> kept;
  for (const Dependency& d : s.dependencies) {
    FieldCtx c = ctx.child(s.name + ".depends_on");
    if (d.service == s.name) {
      c.error(d.pos, "a service cannot depend on itself");
      continue;
    }
    if (out.find(d.service) != nullptr) {
      kept.push_back(d);
      continue;
    }
    auto off = std::find_if(disabled.begin(), disabled.end(),
                            [&](const Service& x) { return x.name == d.service; });
    if (off == disabled.end())
      c.error(d.pos, "unknown service \"" + d.service + "\"");
    else if (d.required)
      c.error(d.pos, "service \"" + d.service + "\" is not enabled (profiles: " +
                         profiles_of(*off) + "); use --profile or required: false");
  }
  s.dependencies = kept;
  s.depends_on.clear();
  for (const Dependency& d : kept) s.depends_on.push_back(d.service);
}

void check_network_use(const FieldCtx& ctx, Service& s, const Stack& out) {
  FieldCtx c = ctx.child(s.name);
  if (!s.network_mode.empty() && !s.networks.empty())
    c.error(s.networks.front().pos, "networks and network_mode cannot be used together");
  for (const char* prefix : {"service:"}) {
    if (s.network_mode.rfind(prefix, 0) != 0) continue;
    std::string other = s.network_mode.substr(std::string(prefix).size());
    if (out.find(other) == nullptr)
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

void check_published_ports(const FieldCtx& ctx, const Stack& out) {
  std::vector<std::pair<const Service*, const Port*>> seen;
  for (const Service& s : out.services) {
    for (const Port& p : s.ports) {
      for (const auto& [other, q] : seen) {
        // A host range shared by a service's own replicas or ports is fine.
        if (overlap(p, *q) && !(other == &s && p.published_start != p.published_end)) {
          ctx.child(s.name + ".ports")
              .error(p.pos, "host port " + std::to_string(*p.published_start) + "/" + p.protocol +
                                " is already published by service \"" + other->name + "\"");
          break;
        }
      }
      seen.emplace_back(&s, &p);
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
  for (Service& s : out.services) {
    check_dependencies(ctx, s, out, disabled);
    check_network_use(ctx, s, out);
    check_mounts(ctx, s, out);
  }
  check_published_ports(ctx, out);
  add_default_network(out);
}

}  // namespace stack::spec
