// The observed state of a project (see observed.h).
#include "reconciler/observed.h"

#include <unistd.h>

#include <algorithm>

#include "reconciler/controller.h"
#include "reconciler/networking.h"
#include "reconciler/restart_policy.h"
#include "reconciler/volumes.h"
#include "state/store.h"

namespace stack::reconciler {

Result<planner::ObservedState> observed_state(Controller& c, Networking& networking,
                                              const std::string& project) {
  planner::ObservedState o;
  auto records = c.observe(project);
  if (!records) return fail(records.error());
  for (const auto& rec : *records) {
    planner::ObservedContainer oc;
    oc.name = rec.name;
    oc.service = rec.service;
    oc.number = rec.number;
    oc.config_hash = rec.config_hash;
    oc.image_id = rec.image_id;
    oc.running = state::is_up(rec.state);
    oc.user_stopped = rec.user_stopped;
    oc.started_at = oc.running ? rec.started_at : 0;
    oc.joined_started_at = rec.joined_started_at;
    if (rec.runtime) {
      oc.fields = rec.runtime->fields;
      for (const auto& j : rec.runtime->networks) oc.networks[j.network] = j.config_hash;
      // Done when it exited by itself (its init wrote the record: not drift) and its policy
      // keeps it down. Containers in a restart backoff count as running above.
      if (rec.state == state::ContainerState::kExited && !rec.user_stopped &&
          ::access((c.container_dir(rec.name) / "exit").c_str(), F_OK) == 0) {
        auto policy = RestartPolicy::parse(rec.runtime->restart).value_or(RestartPolicy{});
        oc.completed = !policy.restarts_after(rec.exit_code, rec.restarts);
      }
    }
    o.containers.push_back(std::move(oc));
  }
  auto volumes = c.store().list_volumes(project);
  if (!volumes) return fail(volumes.error());
  for (const auto& v : *volumes)
    if (v.project == project)
      o.volumes.push_back({v.name, volume_present(c.paths(), v.name, !v.driver_opts.empty())});
  auto networks = c.store().list_networks(project);
  if (!networks) return fail(networks.error());
  auto missing = networking.missing();
  for (const auto& n : *networks)
    o.networks.push_back({n.name, n.config_hash,
                          std::find(missing.begin(), missing.end(), n.name) == missing.end()});
  return o;
}

Result<void> add_shared_networks(planner::ObservedState& o, const planner::DesiredState& d,
                                 Controller& c, Networking& networking) {
  auto missing = networking.missing();
  for (const auto& n : d.networks) {
    bool known = std::any_of(o.networks.begin(), o.networks.end(),
                             [&](const auto& x) { return x.name == n.name; });
    if (known) continue;
    auto rec = c.store().get_network(n.name);
    if (!rec) return fail(rec.error());
    if (!*rec || (*rec)->project == d.project) continue;
    o.networks.push_back({n.name, n.config_hash,
                          std::find(missing.begin(), missing.end(), n.name) == missing.end()});
  }
  return {};
}

}  // namespace stack::reconciler
