// The daemon's named volumes outside a plan's steps (see daemon.h): removal, refused while a
// container mounts the volume. Loop thread.
#include "reconciler/daemon.h"
#include "reconciler/volumes.h"
#include "state/store.h"

namespace stack::reconciler {

Result<void> Daemon::remove_volume(const std::string& name) {
  auto& store = controller_->store();
  auto dir = volume_dir(paths_, name);
  auto all = store.list_all_containers();
  if (!all) return fail(all.error().wrap("remove volume " + name));
  for (const auto& c : *all) {
    if (!c.runtime) continue;
    for (const auto& m : c.runtime->spec.mounts)
      if (m.kind == model::BindMount::Kind::kBind && m.source == dir)
        return fail("remove volume " + name + ": volume is in use by container " + c.name);
  }
  auto known = store.get_volume(name);
  if (!known) return fail(known.error());
  bool mounted = *known && !(*known)->driver_opts.empty();
  if (auto r = remove_volume_dir(paths_, name, mounted); !r)
    return fail(r.error().wrap("remove volume"));
  return store.remove_volume(name);
}

}  // namespace stack::reconciler
