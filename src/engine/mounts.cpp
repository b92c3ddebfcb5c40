// The container's own mounts as records of the init's message (see mounts.h).
#include "engine/mounts.h"

#include <sys/mount.h>

namespace stack::engine {

uint32_t propagation_flags(const std::string& p) {
  std::string word = p;
  uint32_t rec = 0;
  if (word.size() > 1 && word[0] == 'r') {  // rshared, rslave, rprivate, runbindable
    rec = MS_REC;
    word = word.substr(1);
  }
  if (word == "shared") return MS_SHARED | rec;
  if (word == "slave") return MS_SLAVE | rec;
  if (word == "private") return MS_PRIVATE | rec;
  if (word == "unbindable") return MS_UNBINDABLE | rec;
  return 0;
}

void add_mounts(wire::Writer& cfg, const model::ContainerSpec& spec) {
  using Kind = model::BindMount::Kind;
  for (const auto& m : spec.mounts) {
    wire::Writer w;
    if (m.kind == Kind::kTmpfs) {
      w.u32(W_MOUNT_KIND, 1).bytes(W_MOUNT_DST, m.target);
      if (!m.options.empty()) w.bytes(W_MOUNT_DATA, m.options);
      if (uint32_t p = propagation_flags(m.propagation)) w.u32(W_MOUNT_PROPAGATION, p);
    } else if (m.kind == Kind::kKernel) {
      w.u32(W_MOUNT_KIND, 4).bytes(W_MOUNT_DST, m.target);
    } else if (m.kind == Kind::kCgroup) {
      w.u32(W_MOUNT_KIND, 3).bytes(W_MOUNT_SRC, spec.cgroup).bytes(W_MOUNT_DST, m.target);
    } else if (m.kind == Kind::kImage) {
      std::string lowers;  // topmost first, as overlayfs stacks them
      for (auto l = m.layers.rbegin(); l != m.layers.rend(); ++l)
        lowers += (lowers.empty() ? "" : ":") + l->string();
      w.u32(W_MOUNT_KIND, 2).bytes(W_MOUNT_SRC, lowers).bytes(W_MOUNT_DST, m.target);
      if (!m.subpath.empty()) w.bytes(W_MOUNT_SUBPATH, m.subpath);
    } else {
      w.bytes(W_MOUNT_SRC, m.source.string()).bytes(W_MOUNT_DST, m.target);
      if (!m.subpath.empty()) w.bytes(W_MOUNT_SUBPATH, m.subpath);
      if (uint32_t p = propagation_flags(m.propagation)) w.u32(W_MOUNT_PROPAGATION, p);
      if (m.recursive != model::BindMount::Recursive::kAll)
        w.u32(W_MOUNT_RECURSIVE, m.recursive == model::BindMount::Recursive::kTopOnly ? 1 : 2);
      if (!m.idmap_uids.empty())
        w.nested(W_MOUNT_IDMAP,
                 wire::Writer().bytes(WI_UIDS, m.idmap_uids).bytes(WI_GIDS, m.idmap_gids));
    }
    w.u32(W_MOUNT_FLAGS, (m.read_only ? WIRE_MOUNT_RO : 0) | (m.seed ? WIRE_MOUNT_SEED : 0) |
                             (m.nosuid ? WIRE_MOUNT_NOSUID : 0) | (m.nodev ? WIRE_MOUNT_NODEV : 0) |
                             (m.noexec ? WIRE_MOUNT_NOEXEC : 0) |
                             (m.idmap_recursive ? WIRE_MOUNT_IDMAP_REC : 0) |
                             (m.nosymfollow ? WIRE_MOUNT_NOSYMFOLLOW : 0) |
                             (m.nodiratime ? WIRE_MOUNT_NODIRATIME : 0) |
                             (m.atime == "relatime" ? WIRE_MOUNT_RELATIME : 0) |
                             (m.atime == "noatime" ? WIRE_MOUNT_NOATIME : 0) |
                             (m.atime == "strictatime" ? WIRE_MOUNT_STRICTATIME : 0) |
                             (m.tmpcopyup ? WIRE_MOUNT_TMPCOPYUP : 0));
    cfg.nested(W_MOUNT, w);
  }
  if (spec.read_only_root) cfg.u32(W_ROOT_READONLY, 1);
  if (spec.shm_size > 0) cfg.u64(W_SHM_SIZE, static_cast<uint64_t>(spec.shm_size));
}

}  // namespace stack::engine
