// config.json's process attributes the init sets before execve (process.ioPriority,
// process.scheduler, linux.memoryPolicy) and linux.timeOffsets: names and ranges checked here,
// by their path in the document, with crun's names (src/libcrun/scheduler.c, io_priority.c,
// mempolicy.c), and the cpuset(7) lists they and execCPUAffinity take. Reads only /sys: the
// nodes this host has.
#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "runtime/bundle_internal.h"

namespace stack::runtime::detail {
namespace {

using json = nlohmann::json;

// One of NAMES, or a refusal naming FIELD and the names it may be.
Result<uint32_t> named(const json& v, const std::map<std::string, uint32_t>& names,
                       const std::string& field) {
  std::string name = v.is_string() ? v.get<std::string>() : "";
  if (auto it = names.find(name); it != names.end()) return it->second;
  std::string known;
  for (const auto& [n, _] : names) known += (known.empty() ? "" : ", ") + n;
  return refuse(field, "\"" + name + "\" is not one of " + known);
}

bool node_exists(unsigned node) {
  struct stat st {};
  return ::stat(("/sys/devices/system/node/node" + std::to_string(node)).c_str(), &st) == 0;
}

}  // namespace

Result<uint32_t> read_io_priority(const json& io) {
  // linux/ioprio.h: the class in the top 3 bits of 16, the level (0 highest .. 7) below.
  static const std::map<std::string, uint32_t> classes = {
      {"IOPRIO_CLASS_RT", 1}, {"IOPRIO_CLASS_BE", 2}, {"IOPRIO_CLASS_IDLE", 3}};
  auto cls = named(io.value("class", json()), classes, "process.ioPriority.class");
  if (!cls) return fail(cls.error());
  int64_t level = io.value("priority", int64_t{0});
  if (level < 0 || level > 7) return refuse("process.ioPriority.priority", "must be 0 to 7");
  return *cls << 13 | static_cast<uint32_t>(level);
}

Result<model::Scheduler> read_scheduler(const json& s) {
  static const std::map<std::string, uint32_t> policies = {
      {"SCHED_OTHER", SCHED_OTHER}, {"SCHED_BATCH", SCHED_BATCH}, {"SCHED_IDLE", SCHED_IDLE},
      {"SCHED_FIFO", SCHED_FIFO},   {"SCHED_RR", SCHED_RR},       {"SCHED_DEADLINE", 6}};
  // linux/sched.h's SCHED_FLAG_*.
  static const std::map<std::string, uint32_t> flags = {
      {"SCHED_FLAG_RESET_ON_FORK", 0x01}, {"SCHED_FLAG_RECLAIM", 0x02},
      {"SCHED_FLAG_DL_OVERRUN", 0x04},    {"SCHED_FLAG_KEEP_POLICY", 0x08},
      {"SCHED_FLAG_KEEP_PARAMS", 0x10},   {"SCHED_FLAG_UTIL_CLAMP_MIN", 0x20},
      {"SCHED_FLAG_UTIL_CLAMP_MAX", 0x40}};
  model::Scheduler out;
  auto policy = named(s.value("policy", json()), policies, "process.scheduler.policy");
  if (!policy) return fail(policy.error());
  out.policy = *policy;
  int64_t nice = s.value("nice", int64_t{0});
  if (nice < -20 || nice > 19) return refuse("process.scheduler.nice", "must be -20 to 19");
  out.nice = static_cast<int32_t>(nice);
  int64_t priority = s.value("priority", int64_t{0});
  bool rt = out.policy == SCHED_FIFO || out.policy == SCHED_RR;
  // sched(7): 1 to 99 for the realtime policies, 0 for every other.
  if (rt ? priority < 1 || priority > 99 : priority != 0)
    return refuse("process.scheduler.priority",
                  rt ? "must be 1 to 99 for a realtime policy" : "must be 0 for this policy");
  out.priority = static_cast<uint32_t>(priority);
  for (const auto& f : s.value("flags", json::array())) {
    auto flag = named(f, flags, "process.scheduler.flags");
    if (!flag) return fail(flag.error());
    out.flags |= *flag;
  }
  out.runtime = s.value("runtime", uint64_t{0});
  out.deadline = s.value("deadline", uint64_t{0});
  out.period = s.value("period", uint64_t{0});
  if (out.policy == 6 && (out.runtime == 0 || out.runtime > out.deadline ||
                          (out.period != 0 && out.deadline > out.period)))
    return refuse("process.scheduler",
                  "SCHED_DEADLINE needs 0 < runtime <= deadline <= period "
                  "(sched(7))");
  return out;
}

Result<model::MemoryPolicy> read_memory_policy(const json& m) {
  // linux/mempolicy.h.
  static const std::map<std::string, uint32_t> modes = {{"MPOL_DEFAULT", 0},
                                                        {"MPOL_PREFERRED", 1},
                                                        {"MPOL_BIND", 2},
                                                        {"MPOL_INTERLEAVE", 3},
                                                        {"MPOL_LOCAL", 4},
                                                        {"MPOL_PREFERRED_MANY", 5},
                                                        {"MPOL_WEIGHTED_INTERLEAVE", 6}};
  static const std::map<std::string, uint32_t> flag_names = {{"MPOL_F_NUMA_BALANCING", 1u << 13},
                                                             {"MPOL_F_RELATIVE_NODES", 1u << 14},
                                                             {"MPOL_F_STATIC_NODES", 1u << 15}};
  model::MemoryPolicy out;
  auto named_mode = named(m.value("mode", json()), modes, "linux.memoryPolicy.mode");
  if (!named_mode) return fail(named_mode.error());
  uint32_t mode = out.mode = *named_mode;
  std::string nodes = m.value("nodes", "");
  bool takes_nodes = mode != 0 && mode != 4;  // DEFAULT and LOCAL take none (set_mempolicy(2))
  if (!takes_nodes) {
    if (!nodes.empty() || !m.value("flags", json::array()).empty())
      return refuse("linux.memoryPolicy", "MPOL_DEFAULT and MPOL_LOCAL take no nodes or flags");
    return out;
  }
  for (const auto& f : m.value("flags", json::array())) {
    auto flag = named(f, flag_names, "linux.memoryPolicy.flags");
    if (!flag) return fail(flag.error());
    out.mode |= *flag;
  }
  if ((out.mode & (1u << 13)) && mode != 2)
    return refuse("linux.memoryPolicy.flags", "MPOL_F_NUMA_BALANCING goes with MPOL_BIND only");
  if ((out.mode & (1u << 14)) && (out.mode & (1u << 15)))
    return refuse("linux.memoryPolicy.flags",
                  "MPOL_F_RELATIVE_NODES and MPOL_F_STATIC_NODES exclude each other");
  if (nodes.empty())
    return refuse("linux.memoryPolicy.nodes", "required with " + m["mode"].get<std::string>());
  auto list = read_id_list(nodes, "linux.memoryPolicy.nodes", "node");
  if (!list) return fail(list.error());
  out.nodes = *list;
  // MPOL_F_RELATIVE_NODES numbers nodes within the allowed set: any number is meaningful.
  for (size_t n = 0; n < out.nodes.size() * 64 && !(out.mode & (1u << 14)); n++)
    if ((out.nodes[n / 64] >> (n % 64) & 1) && !node_exists(static_cast<unsigned>(n)))
      return refuse("linux.memoryPolicy.nodes",
                    "node " + std::to_string(n) + " does not exist on this host");
  return out;
}

Result<std::vector<uint64_t>> read_id_list(const std::string& text, const std::string& field,
                                           const char* what) {
  // As cpuset(7) writes it: "0-3,7".
  auto not_a_list = refuse(field, "\"" + text + "\" is not a " + what + " list (0-3,7)");
  std::vector<uint64_t> out;
  size_t at = 0;
  while (at <= text.size()) {
    size_t comma = std::min(text.find(',', at), text.size());
    const char* p = text.data() + at;
    const char* end = text.data() + comma;
    unsigned lo = 0, hi = 0;
    auto r = std::from_chars(p, end, lo);
    if (r.ec != std::errc()) return not_a_list;
    p = r.ptr;
    hi = lo;
    if (p != end && *p == '-') {
      r = std::from_chars(p + 1, end, hi);
      if (r.ec != std::errc()) return not_a_list;
      p = r.ptr;
    }
    if (p != end || hi < lo || hi >= 1024) return not_a_list;
    for (unsigned n = lo; n <= hi; n++) {
      if (out.size() <= n / 64) out.resize(n / 64 + 1);
      out[n / 64] |= uint64_t{1} << (n % 64);
    }
    at = comma + 1;
  }
  return out;
}

Result<model::TimeOffsets> read_time_offsets(const json& t) {
  model::TimeOffsets out;
  for (const auto& [clock, v] : t.items()) {
    std::string field = "linux.timeOffsets." + clock;
    if (clock != "monotonic" && clock != "boottime")
      return refuse(field, "not a clock of a time namespace (monotonic, boottime)");
    int64_t secs = v.value("secs", int64_t{0});
    uint32_t nanos = v.value("nanosecs", uint32_t{0});
    if (nanos >= 1000000000u) return refuse(field + ".nanosecs", "must be below 1000000000");
    (clock == "monotonic" ? out.monotonic_secs : out.boottime_secs) = secs;
    (clock == "monotonic" ? out.monotonic_nanosecs : out.boottime_nanosecs) = nanos;
  }
  return out;
}

}  // namespace stack::runtime::detail
