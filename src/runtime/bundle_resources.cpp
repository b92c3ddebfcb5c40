// linux.resources of a config.json (and of `update --resources`) into the engine's cgroup
// limits: each member set or refused by its path, with why. What the engine's cgroup drivers
// cannot set on this machine (hugetlb, net_cls/net_prio, rdma: no such hierarchy mounted here)
// is refused, never dropped.
#include <string>

#include "runtime/bundle_internal.h"

namespace stack::runtime::detail {
namespace {

using json = nlohmann::json;

// One blockIO device list (throttle*, weightDevice) into v1 blkio file lines, "MAJ:MIN VALUE".
Result<void> blkio_devices(const json& io, const char* key, const char* file, const char* value,
                           model::CgroupLimits& l) {
  const json& list = io.value(key, json::array());
  for (size_t i = 0; i < list.size(); i++) {
    const json& d = list[i];
    std::string field = std::string("linux.resources.blockIO.") + key + "[" + std::to_string(i) + "]";
    if (!d.contains("major") || !d.contains("minor") || !d.contains(value))
      return refuse(field, std::string("needs major, minor and ") + value);
    if (std::string(key) == "weightDevice")
      if (auto e = refuse_if_set(d, "leafWeight", field + ".leafWeight",
                                 "not supported (cgroup v1 has no leaf weights since Linux 5.0)");
          !e)
        return e;
    l.blkio_device.emplace_back(file, std::to_string(d["major"].get<int64_t>()) + ":" +
                                          std::to_string(d["minor"].get<int64_t>()) + " " +
                                          std::to_string(d[value].get<uint64_t>()));
  }
  return {};
}

Result<void> read_block_io(const json& io, model::CgroupLimits& l) {
  if (io.contains("weight") && !io["weight"].is_null()) l.blkio_weight = io["weight"].get<int64_t>();
  if (auto e = refuse_if_set(io, "leafWeight", "linux.resources.blockIO.leafWeight",
                             "not supported (cgroup v1 has no leaf weights since Linux 5.0)");
      !e)
    return e;
  struct {
    const char *key, *file, *value;
  } const lists[] = {
      {"weightDevice", "blkio.weight_device", "weight"},
      {"throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rate"},
      {"throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "rate"},
      {"throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "rate"},
      {"throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "rate"},
  };
  for (const auto& x : lists)
    if (auto e = blkio_devices(io, x.key, x.file, x.value, l); !e) return e;
  return {};
}

}  // namespace

Result<void> read_resources(const json& r, model::ContainerSpec& spec,
                            std::vector<std::string>& warnings) {
  auto& l = spec.limits;
  if (auto e = refuse_if_set(r, "hugepageLimits", "linux.resources.hugepageLimits",
                             "not supported: the engine sets no hugetlb limits (and this host "
                             "mounts no hugetlb hierarchy)");
      !e)
    return e;
  if (auto e = refuse_if_set(r, "network", "linux.resources.network",
                             "not supported: the engine sets no net_cls/net_prio (and this host "
                             "mounts neither hierarchy)");
      !e)
    return e;
  if (auto e = refuse_if_set(r, "rdma", "linux.resources.rdma",
                             "not supported: the engine sets no rdma limits");
      !e)
    return e;
  if (auto e = refuse_if_set(r, "unified", "linux.resources.unified",
                             "not supported: cgroup v2 files, and this host's cgroup2 tree has no "
                             "controllers (v1 hybrid)");
      !e)
    return e;
  if (r.contains("blockIO") && !r["blockIO"].is_null())
    if (auto e = read_block_io(r["blockIO"], l); !e) return e;
  if (r.contains("memory")) {
    const json& m = r["memory"];
    if (m.contains("limit")) l.memory_bytes = m["limit"].get<int64_t>();
    if (m.contains("reservation")) l.memory_reservation = m["reservation"].get<int64_t>();
    if (m.contains("swap")) l.memory_swap = m["swap"].get<int64_t>();
    if (m.contains("swappiness")) l.swappiness = m["swappiness"].get<int64_t>();
    l.oom_kill_disable = m.value("disableOOMKiller", false);
    // This kernel takes memory.kmem.limit_in_bytes and ignores it (reads back unlimited); the
    // runtime spec marks the field deprecated, "may be ignored by runtimes", and crun does.
    warn_if_set(m, "kernel", "linux.resources.memory.kernel",
                "Linux 6 no longer limits kernel memory (deprecated by the runtime spec)", warnings);
    // v1's memory.kmem.tcp.limit_in_bytes, which this kernel still enforces (crun sets it too).
    if (m.contains("kernelTCP") && !m["kernelTCP"].is_null())
      l.kernel_tcp = m["kernelTCP"].get<int64_t>();
    // v1's memory.use_hierarchy is always 1 on this kernel; checkBeforeUpdate is v2's.
    if (m.contains("useHierarchy") && !m["useHierarchy"].is_null() && !m["useHierarchy"].get<bool>())
      return refuse("linux.resources.memory.useHierarchy", "false is not supported (always on)");
    if (m.value("checkBeforeUpdate", false))
      return refuse("linux.resources.memory.checkBeforeUpdate", "not supported (cgroup v2 only)");
  }
  if (r.contains("cpu")) {
    const json& c = r["cpu"];
    if (c.contains("shares")) l.cpu_shares = c["shares"].get<int64_t>();
    if (c.contains("quota")) l.cpu_quota = c["quota"].get<int64_t>();
    if (c.contains("period")) l.cpu_period = c["period"].get<int64_t>();
    if (c.contains("cpus")) l.cpuset_cpus = c["cpus"].get<std::string>();
    // v1 cpu.rt_runtime_us / cpu.rt_period_us (the engine's cgroup driver gives the ancestors
    // their share, or says the kernel has no RT group scheduling).
    if (c.contains("realtimeRuntime") && !c["realtimeRuntime"].is_null())
      l.cpu_rt_runtime = c["realtimeRuntime"].get<int64_t>();
    if (c.contains("realtimePeriod") && !c["realtimePeriod"].is_null())
      l.cpu_rt_period = c["realtimePeriod"].get<int64_t>();
    if (c.contains("mems") && !c["mems"].is_null()) l.cpuset_mems = c["mems"].get<std::string>();
    for (const char* k : {"idle", "burst"})
      if (auto e = refuse_if_set(c, k, std::string("linux.resources.cpu.") + k,
                                 "not supported (cgroup v2 only)");
          !e)
        return e;
  }
  if (r.contains("pids") && r["pids"].contains("limit")) {
    int64_t v = r["pids"]["limit"].get<int64_t>();
    if (v > 0) l.pids = v;  // 0 and -1: no limit (runtime-spec)
  }
  // The device cgroup: the engine denies everything but its default nodes; config.json's
  // "deny all" first rule says the same, its allow rules are added.
  const json& devs = r.value("devices", json::array());
  for (size_t i = 0; i < devs.size(); i++) {
    const json& d = devs[i];
    std::string field = "linux.resources.devices[" + std::to_string(i) + "]";
    std::string type = d.value("type", "a");
    model::DeviceRule rule;
    rule.type = type.empty() ? 'a' : type[0];
    rule.major = d.contains("major") && !d["major"].is_null() ? d["major"].get<int64_t>() : -1;
    rule.minor = d.contains("minor") && !d["minor"].is_null() ? d["minor"].get<int64_t>() : -1;
    rule.access = d.value("access", "rwm");
    if (!d.value("allow", false)) {
      if (i == 0 && rule.type == 'a' && rule.major < 0 && rule.minor < 0) continue;
      return refuse(field, "only a first \"deny all\" rule may deny");
    }
    spec.device_rules.push_back(rule);
  }
  return {};
}

}  // namespace stack::runtime::detail
