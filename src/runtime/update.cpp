// `update`: new limits on a created or running container's cgroup (see runtime.h), written by
// the engine's cgroup driver, the one that set them at create; under the container's lock.
#include "runtime/bundle.h"
#include "runtime/record.h"
#include "runtime/runtime.h"

namespace stack::runtime {

Result<void> Runtime::update(const std::string& id, const std::string& resources) {
  if (auto r = check_id(id); !r) return r;
  auto dir = root_ / id;
  auto lock = lock_container(dir, id);
  if (!lock) return fail(lock.error());
  auto r = read_record(dir, id);
  if (!r) return fail(r.error());
  if (auto st = status_of(*r); st == "stopped")
    return fail("cannot update a container that is stopped (" + id + ")");
  std::vector<std::string> warnings;
  auto limits = parse_resources(resources, warnings);
  if (!limits) return fail(limits.error().wrap("update " + id + ": resources"));
  for (const auto& w : warnings) warn_("update " + id + ": " + w);
  auto drv = cgroups();
  if (!drv) return fail(drv.error());
  // create() on an existing cgroup writes only the limits set, and makes nothing.
  if (auto c = (*drv)->create(r->cgroup, *limits); !c) return fail(c.error().wrap("update " + id));
  return {};
}

}  // namespace stack::runtime
