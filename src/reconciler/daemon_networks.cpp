// The daemon's networks outside a plan's steps (see daemon.h): `stack network` listing,
// creation and removal of networks that belong to no project; removal is refused while a
// container joins the network. Loop thread.
#include <algorithm>
#include <cctype>

#include "reconciler/cluster_ingress.h"
#include "reconciler/daemon.h"
#include "reconciler/networking.h"
#include "state/store.h"

namespace stack::reconciler {

namespace {

// Network name -> the containers whose record joins it.
Result<std::map<std::string, std::vector<std::string>>> joiners(state::Store& store) {
  auto all = store.list_all_containers();
  if (!all) return fail(all.error());
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& c : *all)
    if (c.runtime)
      for (const auto& j : c.runtime->networks) out[j.network].push_back(c.name);
  return out;
}

// Letters, digits, '.', '_' and '-', beginning with a letter or a digit (docker's rule), and
// short enough for the state's names.
bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 128 || !std::isalnum(static_cast<unsigned char>(n[0]))) return false;
  return std::all_of(n.begin(), n.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace

Result<std::vector<Daemon::NetworkListing>> Daemon::list_networks() {
  auto& store = controller_->store();
  auto list = store.list_all_networks();
  if (!list) return fail(list.error());
  auto users = joiners(store);
  if (!users) return fail(users.error());
  std::vector<NetworkListing> out;
  for (const auto& n : *list) {
    if (n.name == Networking::kBuildNetwork) continue;  // the builds' own, not a user's
    NetworkListing l{n.name, n.project, n.subnet, n.gateway, {}};
    if (auto it = users->find(n.name); it != users->end()) l.containers = it->second;
    l.driver = networking_->driver_of(n.name);
    if (cluster_agent && n.name == kIngressNetwork) {
      l.ingress = true;
      l.project.clear();  // whichever made it here first; every project of the cluster uses it
    }
    out.push_back(std::move(l));
  }
  return out;
}

Result<Daemon::NetworkListing> Daemon::create_network(const std::string& name,
                                                      const std::string& subnet) {
  if (!valid_name(name))
    return fail("create network \"" + name +
                "\": a name is letters, digits, '.', '_' and '-', beginning with a letter or digit");
  if (cluster_agent && name == kIngressNetwork)
    return fail("create network " + name + ": the name is the cluster's routing mesh network's");
  auto& store = controller_->store();
  auto known = store.get_network(name);
  if (!known) return fail(known.error());
  if (*known) return fail("create network " + name + ": it exists already");
  model::NetworkConfig c;
  c.key = name;
  c.name = name;  // project "": its name on the host is NAME itself (Networking::ensure)
  if (!subnet.empty()) c.ipam.push_back({subnet, "", ""});
  c.config_hash = kStandaloneNetwork;
  if (auto r = networking_->ensure(c); !r) {
    (void)networking_->remove_network(name);
    return fail(r.error().wrap("create network " + name));
  }
  auto rec = store.get_network(name);
  if (!rec) return fail(rec.error());
  if (!*rec) return fail("create network " + name + ": not recorded");
  return NetworkListing{name, "", (*rec)->subnet, (*rec)->gateway, {}};
}

Result<void> Daemon::remove_network(const std::string& name) {
  auto& store = controller_->store();
  auto known = store.get_network(name);
  if (!known) return fail(known.error());
  if (!*known || name == Networking::kBuildNetwork)
    return fail("remove network " + name + ": no such network");
  if (!(*known)->project.empty())
    return fail("remove network " + name + ": it is project " + (*known)->project +
                "'s (its down removes it)");
  auto users = joiners(store);
  if (!users) return fail(users.error().wrap("remove network " + name));
  if (auto it = users->find(name); it != users->end())
    return fail("remove network " + name + ": network is in use by container " +
                it->second.front());
  return networking_->remove_network(name);
}

}  // namespace stack::reconciler
