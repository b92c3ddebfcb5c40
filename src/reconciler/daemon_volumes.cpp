// The daemon's named volumes outside a plan's steps (see daemon.h): `stack volume` listing,
// creation, removal and pruning; removal is refused while a container mounts the volume.
// Anonymous volumes are listed too (they live and go with their container, never removed here).
// Loop thread; a removed volume's files are deleted on the worker pool.
#include <cctype>
#include <chrono>
#include <functional>

#include "common/files.h"
#include "common/sha256.h"
#include "reconciler/async.h"
#include "reconciler/daemon.h"
#include "reconciler/volumes.h"
#include "state/store.h"

namespace stack::reconciler {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Volume directory -> the containers that mount it.
Result<std::map<std::filesystem::path, std::vector<std::string>>> users(state::Store& store) {
  auto all = store.list_all_containers();
  if (!all) return fail(all.error());
  std::map<std::filesystem::path, std::vector<std::string>> out;
  for (const auto& c : *all) {
    if (!c.runtime) continue;
    for (const auto& m : c.runtime->spec.mounts)
      if (m.kind == model::BindMount::Kind::kBind) out[m.source].push_back(c.name);
  }
  return out;
}

// Letters, digits, '.', '_' and '-', not starting with '.': a directory name under
// <root>/volumes and nothing else ("..", "/" never).
bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 255 || n[0] == '.') return false;
  for (unsigned char c : n)
    if (!std::isalnum(c) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

// The anonymous volumes of the recorded containers, as docker lists them: a name of 64 hex
// digits (here the digest of its directory, so the same on every listing), the labels of the
// mount that made it (volume.labels) and com.docker.volume.anonymous.
Result<std::vector<Daemon::VolumeInfo>> anonymous_volumes(
    state::Store& store, const std::map<std::filesystem::path, std::vector<std::string>>& used) {
  auto all = store.list_all_containers();
  if (!all) return fail(all.error());
  std::vector<Daemon::VolumeInfo> out;
  for (const auto& c : *all) {
    if (!c.runtime) continue;
    const auto own = c.runtime->spec.dir / "volumes";
    for (const auto& m : c.runtime->spec.mounts) {
      if (m.kind != model::BindMount::Kind::kBind || m.source.parent_path() != own) continue;
      Daemon::VolumeInfo i{sha256_hex(m.source.string()), c.project, m.source.string(), {}, {},
                           c.created_at, {}, true};
      if (auto l = c.runtime->volume_labels.find(m.target); l != c.runtime->volume_labels.end())
        i.labels = l->second;
      i.labels["com.docker.volume.anonymous"] = "";
      if (auto it = used.find(m.source); it != used.end()) i.used_by = it->second;
      out.push_back(std::move(i));
    }
  }
  return out;
}

}  // namespace

awaitable<Result<void>> Daemon::remove_volume(std::string name) {
  auto& store = controller_->store();
  auto known = store.get_volume(name);
  if (!known) co_return fail(known.error());
  if (!*known) {
    if (auto list = list_volumes(); list)
      for (const auto& v : *list)
        if (v.name == name && v.anonymous && !v.used_by.empty())
          co_return fail("remove volume " + name + ": volume is in use by container " +
                         v.used_by.front() + " (an anonymous volume goes with its container)");
    co_return fail("remove volume " + name + ": no such volume");
  }
  auto used = users(store);
  if (!used) co_return fail(used.error().wrap("remove volume " + name));
  if (auto it = used->find(volume_dir(paths_, name)); it != used->end())
    co_return fail("remove volume " + name + ": volume is in use by container " +
                   it->second.front());
  auto aside = detach_volume_dir(paths_, name, !(*known)->driver_opts.empty());
  if (!aside) co_return fail(aside.error().wrap("remove volume"));
  if (auto r = store.remove_volume(name); !r) co_return fail(r.error());
  if (aside->empty()) co_return Result<void>{};
  // Unlinking a large volume's files takes seconds: on the worker pool, so that the loop
  // answers every other request meanwhile. The name is free already (a volume made again
  // under it is a new directory).
  std::function<Result<void>()> erase = [dir = *aside, name]() -> Result<void> {
    if (auto r = remove_tree(dir); !r) return fail(r.error().wrap("remove volume " + name));
    return Result<void>{};
  };
  co_return co_await on_pool(*pool_, std::move(erase));
}

Result<std::vector<Daemon::VolumeInfo>> Daemon::list_volumes() {
  auto& store = controller_->store();
  auto list = store.list_volumes("");
  if (!list) return fail(list.error());
  auto used = users(store);
  if (!used) return fail(used.error());
  std::vector<VolumeInfo> out;
  for (const auto& v : *list) {
    VolumeInfo i{
        v.name,       v.project, volume_dir(paths_, v.name).string(), v.driver_opts, v.labels,
        v.created_at, {},         false};
    if (auto it = used->find(volume_dir(paths_, v.name)); it != used->end()) i.used_by = it->second;
    out.push_back(std::move(i));
  }
  auto anonymous = anonymous_volumes(store, *used);
  if (!anonymous) return fail(anonymous.error());
  for (auto& a : *anonymous) out.push_back(std::move(a));
  return out;
}

Result<Daemon::VolumeInfo> Daemon::create_volume(const std::string& name,
                                                 std::map<std::string, std::string> driver_opts,
                                                 std::map<std::string, std::string> labels) {
  if (!valid_name(name))
    return fail("create volume \"" + name + "\": a name is letters, digits, '.', '_' and '-'");
  for (const auto& [k, v] : driver_opts)
    if (k != "type" && k != "o" && k != "device")
      return fail("create volume " + name + ": driver option " + k +
                  " is not one of the local driver's (type, o, device)");
  auto& store = controller_->store();
  auto known = store.get_volume(name);
  if (!known) return fail(known.error());
  if (*known) return fail("create volume " + name + ": it exists already");
  model::VolumeConfig c{name, "", driver_opts, labels};
  if (auto r = ensure_volume_dir(paths_, c); !r) return fail(r.error());
  state::VolumeRecord rec{name, "", std::move(driver_opts), std::move(labels), now_ms()};
  if (auto r = store.put_volume(rec); !r) {
    (void)remove_volume_dir(paths_, name, !rec.driver_opts.empty());
    return fail(r.error());
  }
  return VolumeInfo{
      name, "", volume_dir(paths_, name).string(), rec.driver_opts, rec.labels, rec.created_at, {},
      false};
}

awaitable<Result<std::vector<std::string>>> Daemon::prune_volumes() {
  auto list = list_volumes();
  if (!list) co_return fail(list.error());
  std::vector<std::string> removed;
  for (const auto& v : *list) {
    if (!v.used_by.empty() || v.anonymous) continue;
    if (auto r = co_await remove_volume(v.name); !r) co_return fail(r.error());
    removed.push_back(v.name);
  }
  co_return removed;
}

}  // namespace stack::reconciler
