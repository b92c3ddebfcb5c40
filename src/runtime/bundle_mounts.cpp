// config.json's mounts into the ContainerSpec's (see bundle.h): binds ("bind" only the
// source's own mount, "rbind" its submounts too), tmpfs, a cgroup mount, and every option the
// runtime spec lists honoured or refused naming it. Pure: reads nothing but the document.
#include <algorithm>
#include <optional>
#include <set>

#include "runtime/bundle.h"
#include "runtime/bundle_internal.h"

namespace stack::runtime::detail {
namespace {

using json = nlohmann::json;

// tmpfs(5)'s size=: bytes with an optional k, m or g suffix.
std::optional<int64_t> tmpfs_size(const std::string& s) {
  size_t used = 0;
  int64_t n = 0;
  try {
    n = std::stoll(s, &used);
  } catch (...) {
    return std::nullopt;
  }
  std::string unit = s.substr(used);
  if (unit == "k" || unit == "K") return n << 10;
  if (unit == "m" || unit == "M") return n << 20;
  if (unit == "g" || unit == "G") return n << 30;
  if (unit.empty()) return n;
  return std::nullopt;
}

// What the engine mounts itself in every container: accepted when config.json asks for the
// same thing, and mounted at its place in the list (the runtime spec: "in the listed order").
bool engine_mount(const std::string& type, const std::string& dst) {
  return (type == "proc" && dst == "/proc") || (type == "sysfs" && dst == "/sys") ||
         (type == "tmpfs" && dst == "/dev") || (type == "devpts" && dst == "/dev/pts") ||
         (type == "mqueue" && dst == "/dev/mqueue") || (type == "tmpfs" && dst == "/dev/shm");
}

// A mount's uidMappings or gidMappings as uid_map(5) lines ("containerID hostID size", as crun
// writes them) of the user namespace it is idmapped through. The kernel maps a file's owner as
// an id inside that namespace to the one outside it (mount_setattr(2)): {containerID 1000,
// hostID 0} shows the source's uid 1000 as 0.
Result<std::string> id_map(const json& m, const char* key, const std::string& field) {
  const json& list = m.value(key, json::array());
  if (list.empty())
    return refuse(field + "." + key, "required for an idmapped mount (the container's own "
                                     "mappings are not taken)");
  if (list.size() > 340) return refuse(field + "." + key, "more than 340 ranges");
  std::string out;
  for (const auto& r : list) {
    if (!r.contains("containerID") || !r.contains("hostID") || !r.contains("size") ||
        r["size"].get<uint32_t>() == 0)
      return refuse(field + "." + key, "each range needs containerID, hostID and a size");
    out += std::to_string(r["containerID"].get<uint32_t>()) + " " +
           std::to_string(r["hostID"].get<uint32_t>()) + " " +
           std::to_string(r["size"].get<uint32_t>()) + "\n";
  }
  return out;
}

// A per-mount attribute of mount(8) (or its r* form: the engine sets each on every mount of a
// bound tree anyway, mount_setattr(2) AT_RECURSIVE) into BM. False: not one of them.
bool attribute(std::string o, model::BindMount& bm) {
  static const std::set<std::string> words = {
      "ro",          "rw",       "nosuid",   "suid",      "nodev",     "dev",
      "noexec",      "exec",     "relatime", "norelatime", "noatime",  "atime",
      "strictatime", "nostrictatime", "nodiratime", "diratime", "nosymfollow", "symfollow"};
  if (!words.count(o) && o.size() > 1 && o[0] == 'r' && words.count(o.substr(1))) o = o.substr(1);
  if (!words.count(o)) return false;
  if (o == "ro" || o == "rw") bm.read_only = o == "ro";
  else if (o == "nosuid" || o == "suid") bm.nosuid = o == "nosuid";
  else if (o == "nodev" || o == "dev") bm.nodev = o == "nodev";
  else if (o == "noexec" || o == "exec") bm.noexec = o == "noexec";
  else if (o == "nodiratime" || o == "diratime") bm.nodiratime = o == "nodiratime";
  else if (o == "nosymfollow" || o == "symfollow") bm.nosymfollow = o == "nosymfollow";
  // relatime, noatime, strictatime: the atime mode; their negations ask for none of them,
  // which leaves a bind its source's mode and a tmpfs the kernel's default (relatime).
  else if (o == "relatime" || o == "noatime" || o == "strictatime") bm.atime = o;
  else bm.atime.clear();
  return true;
}

bool propagation(const std::string& o) {
  return o == "private" || o == "rprivate" || o == "shared" || o == "rshared" || o == "slave" ||
         o == "rslave" || o == "unbindable" || o == "runbindable";
}

}  // namespace

Result<void> read_mounts(const json& mounts, Bundle& b) {
  auto& spec = b.spec;
  for (size_t i = 0; i < mounts.size(); i++) {
    const json& m = mounts[i];
    std::string field = "mounts[" + std::to_string(i) + "]";
    std::string dst = m.value("destination", "");
    std::string type = m.value("type", "");
    std::string src = m.value("source", "");
    auto options = m.value("options", std::vector<std::string>{});
    if (dst.empty() || dst[0] != '/') return refuse(field + ".destination", "must be absolute");
    field += " (" + dst + ")";
    bool is_bind = type == "bind";
    bool idmap = false, ridmap = false;
    for (const auto& o : options) {
      is_bind |= o == "bind" || o == "rbind";
      idmap |= o == "idmap";
      ridmap |= o == "ridmap";
    }
    bool maps = m.contains("uidMappings") || m.contains("gidMappings");
    if ((maps || idmap || ridmap) && !is_bind)
      return refuse(field + ".uidMappings", "an idmapped mount must be a bind mount");
    if (engine_mount(type, dst)) {
      if (dst == "/dev/shm")
        for (const auto& o : options)
          if (o.rfind("size=", 0) == 0) {
            auto size = tmpfs_size(o.substr(5));
            if (!size) return refuse(field, "size \"" + o.substr(5) + "\" is not a size");
            spec.shm_size = *size;
          }
      model::BindMount kernel;
      kernel.kind = model::BindMount::Kind::kKernel;
      kernel.target = dst;
      kernel.create_source = false;
      spec.mounts.push_back(std::move(kernel));
      continue;
    }
    if (type == "cgroup2") {
      b.warnings.push_back(field + ": " + type +
                           " is not mounted (this host's cgroups are v1): the directory stays "
                           "empty");
      continue;
    }
    model::BindMount bm;
    bm.target = dst;
    bm.create_source = false;
    if (type == "cgroup") {
      // As crun on v1: read-only unless asked otherwise.
      bm.kind = model::BindMount::Kind::kCgroup;
      bm.read_only = true;
      for (const auto& o : options) {
        if (o == "rw") bm.read_only = false;
        else if (o == "ro" || o == "nosuid" || o == "nodev" || o == "noexec" || o == "relatime")
          continue;  // the tmpfs and each hierarchy's bind are all of these
        else if (o == "private" || o == "rprivate")
          continue;  // podman's; every mount of the container is private already
        else
          return refuse(field + ".options", "\"" + o + "\" is not supported on a cgroup mount");
      }
    } else if (is_bind) {
      if (src.empty()) return refuse(field + ".source", "required for a bind mount");
      bm.source = src;
      bm.recursive = model::BindMount::Recursive::kTopOnly;
      for (const auto& o : options) {
        if (o == "rbind") bm.recursive = model::BindMount::Recursive::kAll;
        else if (o == "bind" || o == "idmap" || o == "ridmap") continue;
        else if (propagation(o)) bm.propagation = o;
        else if (o.find('=') != std::string::npos)  // crun: mount(2) data, ignored with MS_BIND
          b.warnings.push_back(field + ".options: \"" + o + "\" ignored: a bind mount takes "
                               "no filesystem data (mount(2) ignores it with MS_BIND)");
        else if (!attribute(o, bm))
          return refuse(field + ".options", "\"" + o + "\" is not supported on a bind mount");
      }
      if (maps || idmap || ridmap) {
        auto uids = id_map(m, "uidMappings", field);
        if (!uids) return fail(uids.error());
        auto gids = id_map(m, "gidMappings", field);
        if (!gids) return fail(gids.error());
        bm.idmap_uids = *uids;
        bm.idmap_gids = *gids;
        bm.idmap_recursive = ridmap;
      }
    } else if (type == "tmpfs") {
      bm.kind = model::BindMount::Kind::kTmpfs;
      std::string data;
      for (const auto& o : options) {
        if (o == "tmpcopyup") bm.tmpcopyup = true;
        else if (propagation(o)) bm.propagation = o;  // set once mounted, as crun does
        else if (o.rfind("size=", 0) == 0 || o.rfind("mode=", 0) == 0 ||
                 o.rfind("uid=", 0) == 0 || o.rfind("gid=", 0) == 0 ||
                 o.rfind("nr_inodes=", 0) == 0)
          data += (data.empty() ? "" : ",") + o;
        else if (!attribute(o, bm))
          return refuse(field + ".options", "\"" + o + "\" is not supported on a tmpfs");
      }
      // The engine mounts every tmpfs nosuid and nodev.
      if (!bm.nosuid && std::count(options.begin(), options.end(), "suid"))
        return refuse(field + ".options", "\"suid\": a tmpfs is always nosuid here");
      if (!bm.nodev && std::count(options.begin(), options.end(), "dev"))
        return refuse(field + ".options", "\"dev\": a tmpfs is always nodev here");
      bm.options = data;
    } else {
      return refuse(field + ".type",
                    "\"" + type + "\" is not supported (bind, tmpfs and cgroup are)");
    }
    spec.mounts.push_back(std::move(bm));
  }
  return {};
}

}  // namespace stack::runtime::detail
