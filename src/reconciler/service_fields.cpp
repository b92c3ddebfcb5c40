// The process and resource fields of a service onto the runtime record: ulimits, sysctls,
// domainname, oom_score_adj, group_add, the cgroup knobs beyond the basic limits, labels and
// deploy.restart_policy. Reads label files, the image's /etc/group and the host's memory and
// CPU count (for reservations); changes nothing.
#include "reconciler/service_fields.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>

#include "reconciler/hooks.h"
#include "spec/env_file.h"
#include "spec/loader.h"
#include "spec/service_fields.h"

namespace stack::reconciler {

std::string where(const spec::Service& svc, const std::string& key) {
  for (const auto& k : svc.keys)
    if (k.path == "services." + svc.name + "." + key)
      return k.pos.str() + ": service \"" + svc.name + "\"";
  return svc.pos.str() + ": service \"" + svc.name + "\"";
}

namespace {

const nlohmann::json* extra(const spec::Service& svc, const char* key) {
  auto it = svc.extra.find(key);
  return it == svc.extra.end() || it->is_null() ? nullptr : &*it;
}

// An integer field kept generically: a number, or a numeric string ("100000").
Result<std::optional<int64_t>> integer(const spec::Service& svc, const char* key) {
  const nlohmann::json* v = extra(svc, key);
  if (!v) return std::optional<int64_t>{};
  if (v->is_number_integer()) return std::optional<int64_t>{v->get<int64_t>()};
  if (v->is_string()) {
    const std::string s = v->get<std::string>();
    try {
      size_t used = 0;
      int64_t n = std::stoll(s, &used);
      if (used == s.size()) return std::optional<int64_t>{n};
    } catch (const std::exception&) {
    }
  }
  return fail(where(svc, key) + ": " + key + " must be an integer, got " + v->dump());
}

Result<void> labels(const spec::Stack& stack, const spec::Service& svc, RuntimeRecord& r) {
  // compose: label_file entries first, `labels` override them; deploy.labels are the
  // service's (Swarm) labels, kept with the others here as there is no service object.
  if (const auto* files = extra(svc, "label_file"); files && files->is_array()) {
    for (const auto& f : *files) {
      std::filesystem::path path = f.get<std::string>();
      if (path.is_relative()) path = stack.project_dir / path;
      std::ifstream in(path);
      if (!in) return fail(where(svc, "label_file") + ": cannot read " + path.string());
      std::stringstream text;
      text << in.rdbuf();
      auto lines = spec::parse_env_file(text.str());
      if (!lines) return fail(lines.error().wrap(where(svc, "label_file") + ": " + path.string()));
      for (const auto& l : *lines) r.labels[l.key] = l.value.value_or("");
    }
  }
  for (const auto& [k, v] : svc.labels) r.labels[k] = v;
  if (const auto* d = extra(svc, "deploy"); d && d->contains("labels"))
    for (const auto& [k, v] : (*d)["labels"].items())
      r.labels[k] = v.is_string() ? v.get<std::string>() : v.dump();
  // annotations: docker keeps them apart from the labels (HostConfig.Annotations), for the
  // runtime's eyes; here with the container's record, shown by `ps --format json`.
  if (const auto* a = extra(svc, "annotations"); a && a->is_object())
    for (const auto& [k, v] : a->items())
      r.annotations[k] = v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump();
  return {};
}

Result<void> restart_policy(const spec::Service& svc, RuntimeRecord& r) {
  r.restart = spec::effective_restart(svc);
  const auto* d = extra(svc, "deploy");
  if (!d || !d->contains("restart_policy")) return {};
  const auto& p = (*d)["restart_policy"];
  for (const char* key : {"delay", "window"}) {
    if (!p.contains(key) || !p[key].is_string()) continue;
    auto ms = spec::parse_duration(p[key].get<std::string>());
    if (!ms) return fail(where(svc, "deploy") + ": restart_policy." + key + " is not a duration");
    (std::string(key) == "delay" ? r.restart_delay : r.restart_window) = *ms;
  }
  return {};
}

int64_t host_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  while (in >> key >> kib)
    if (key == "MemTotal:") return kib * 1024;
  return 0;
}

// cpu_rt_runtime / cpu_rt_period: microseconds (a number) or a duration ("400ms"). Refused
// here, at up, where the kernel has no RT group scheduling (no v1 cpu.rt_runtime_us).
Result<void> rt_knobs(const spec::Service& svc, model::CgroupLimits& l) {
  auto micros = [&](const char* key) -> Result<std::optional<int64_t>> {
    const nlohmann::json* v = extra(svc, key);
    if (v && v->is_string() && v->get<std::string>().find_first_not_of("0123456789") !=
                                   std::string::npos) {
      auto ms = spec::parse_duration(v->get<std::string>());
      if (!ms) return fail(where(svc, key) + ": " + key + " " + v->dump() + " is not a duration");
      return std::optional<int64_t>{ms->count() * 1000};
    }
    return integer(svc, key);
  };
  auto runtime = micros("cpu_rt_runtime");
  if (!runtime) return fail(runtime.error());
  auto period = micros("cpu_rt_period");
  if (!period) return fail(period.error());
  if (!*runtime && !*period) return {};
  const char* key = *runtime ? "cpu_rt_runtime" : "cpu_rt_period";
  if (::access("/sys/fs/cgroup/cpu/cpu.rt_runtime_us", F_OK) != 0)
    return fail(where(svc, key) + ": " + key +
                " is refused on this host: its kernel has no RT group scheduling "
                "(no cpu.rt_runtime_us in a cgroup v1 cpu hierarchy; CONFIG_RT_GROUP_SCHED)");
  if (*period && (**period < 1000 || **period > 1000000))
    return fail(where(svc, "cpu_rt_period") + ": must be 1000..1000000 (microseconds)");
  int64_t p = period->value_or(1000000);
  if (*runtime && (**runtime < 0 || **runtime > p))
    return fail(where(svc, "cpu_rt_runtime") + ": must be 0.." + std::to_string(p) +
                " microseconds (at most the period)");
  l.cpu_rt_runtime = *runtime;
  l.cpu_rt_period = *period;
  return {};
}

Result<void> cgroup_knobs(const spec::Service& svc, RuntimeRecord& r) {
  auto& l = r.spec.limits;
  const spec::Service& s = svc;
  if (const auto* v = extra(s, "mem_reservation")) l.memory_reservation = v->get<int64_t>();
  if (const auto* v = extra(s, "memswap_limit")) {
    l.memory_swap = v->get<int64_t>();
    if (!l.memory_bytes)
      return fail(where(s, "memswap_limit") + ": memswap_limit needs mem_limit (as docker)");
    if (*l.memory_swap != -1 && *l.memory_swap < *l.memory_bytes)
      return fail(where(s, "memswap_limit") + ": memswap_limit (memory + swap) is below mem_limit");
  }
  if (const auto* v = extra(s, "mem_swappiness")) {
    int64_t n = v->get<int64_t>();
    if (n < 0 || n > 100) return fail(where(s, "mem_swappiness") + ": must be 0..100");
    l.swappiness = n;
  }
  if (const auto* v = extra(s, "oom_kill_disable"); v && v->get<bool>()) l.oom_kill_disable = true;
  auto quota = integer(s, "cpu_quota");
  if (!quota) return fail(quota.error());
  auto period = integer(s, "cpu_period");
  if (!period) return fail(period.error());
  if ((*quota || *period) && l.cpus)
    return fail(where(s, *quota ? "cpu_quota" : "cpu_period") +
                ": cpus and cpu_quota/cpu_period both set the CFS quota; use one");
  if (*period && (**period < 1000 || **period > 1000000))
    return fail(where(s, "cpu_period") + ": must be 1000..1000000 (microseconds)");
  if (*quota && **quota != -1 && **quota < 1000)
    return fail(where(s, "cpu_quota") + ": must be -1 or at least 1000 (microseconds)");
  l.cpu_quota = *quota;
  l.cpu_period = *period;
  if (auto x = rt_knobs(s, l); !x) return x;

  // deploy.resources.reservations: what the host must have; memory becomes the soft limit
  // (as docker compose maps it) unless mem_reservation says otherwise.
  if (const auto* d = extra(s, "deploy");
      d && d->contains("resources") && (*d)["resources"].contains("reservations")) {
    const auto& res = (*d)["resources"]["reservations"];
    if (res.contains("memory") && res["memory"].is_number_integer()) {
      int64_t want = res["memory"].get<int64_t>(), have = host_memory_bytes();
      if (have > 0 && want > have)
        return fail(where(s, "deploy") + ": reservations.memory " + std::to_string(want) +
                    " bytes is more than this host has (" + std::to_string(have) + ")");
      if (!l.memory_reservation) l.memory_reservation = want;
    }
    if (res.contains("cpus") && res["cpus"].is_number()) {
      double want = res["cpus"].get<double>();
      long have = ::sysconf(_SC_NPROCESSORS_ONLN);
      if (have > 0 && want > static_cast<double>(have))
        return fail(where(s, "deploy") + ": reservations.cpus " + res["cpus"].dump() +
                    " is more than this host has (" + std::to_string(have) + ")");
    }
  }
  return {};
}

// blkio_config: weight, weight_device and the four throttles, per device by its host path.
Result<void> blkio(const spec::Service& svc, RuntimeRecord& r) {
  const auto* b = extra(svc, "blkio_config");
  if (!b || !b->is_object()) return {};
  auto& l = r.spec.limits;
  std::string at = where(svc, "blkio_config");
  if (b->contains("weight")) {
    int64_t w = (*b)["weight"].get<int64_t>();
    if (w < 10 || w > 1000) return fail(at + ": blkio_config.weight must be 10..1000");
    l.blkio_weight = w;
  }
  auto device = [&](const nlohmann::json& e, const char* what) -> Result<std::string> {
    std::string path = e.value("path", "");
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISBLK(st.st_mode))
      return fail(at + ": blkio_config." + what + ": " + path +
                  " is not a block device on this host");
    return std::to_string(::major(st.st_rdev)) + ":" + std::to_string(::minor(st.st_rdev));
  };
  if (b->contains("weight_device"))
    for (const auto& e : (*b)["weight_device"]) {
      auto dev = device(e, "weight_device");
      if (!dev) return fail(dev.error());
      l.blkio_device.emplace_back("blkio.weight_device",
                                  *dev + " " + std::to_string(e.value("weight", int64_t{0})));
    }
  static const std::pair<const char*, const char*> kRates[] = {
      {"device_read_bps", "blkio.throttle.read_bps_device"},
      {"device_write_bps", "blkio.throttle.write_bps_device"},
      {"device_read_iops", "blkio.throttle.read_iops_device"},
      {"device_write_iops", "blkio.throttle.write_iops_device"}};
  for (const auto& [key, file] : kRates) {
    if (!b->contains(key)) continue;
    for (const auto& e : (*b)[key]) {
      auto dev = device(e, key);
      if (!dev) return fail(dev.error());
      const auto& rate = e.contains("rate") ? e["rate"] : nlohmann::json();
      std::optional<int64_t> n;
      if (rate.is_number_integer())
        n = rate.get<int64_t>();
      else if (rate.is_string())
        n = spec::parse_bytes(rate.get<std::string>());
      if (!n || *n < 0)
        return fail(at + ": blkio_config." + key + ": rate " + rate.dump() + " is not a number");
      l.blkio_device.emplace_back(file, *dev + " " + std::to_string(*n));
    }
  }
  return {};
}

Result<void> process_knobs(const spec::Service& svc, const fs::Image& image, RuntimeRecord& r) {
  auto& s = r.spec;
  for (const auto& [name, u] : svc.ulimits) {
    auto res = spec::rlimit_resource(name);
    if (!res) return fail(where(svc, "ulimits") + ": unknown ulimit \"" + name + "\"");
    s.process.rlimits.push_back({*res, u.soft, u.hard});
  }
  for (const auto& [key, value] : svc.sysctls) {
    std::string k = key;
    std::replace(k.begin(), k.end(), '/', '.');
    s.sysctls.emplace_back(k, value);
  }
  s.domainname = svc.domainname;
  s.tty = svc.tty;
  s.stdin_open = svc.stdin_open;
  if (auto adj = integer(svc, "oom_score_adj"); !adj) {
    return fail(adj.error());
  } else if (*adj) {
    if (**adj < -1000 || **adj > 1000)
      return fail(where(svc, "oom_score_adj") + ": must be -1000..1000");
    s.oom_score_adj = static_cast<int>(**adj);
  }
  if (const auto* groups = extra(svc, "group_add"); groups && groups->is_array()) {
    for (const auto& g : *groups) {
      std::string name = g.is_string() ? g.get<std::string>() : g.dump();
      auto gid = engine::resolve_group(name, image.layers);
      if (!gid) return fail(gid.error().wrap(where(svc, "group_add")));
      if (std::find(s.process.groups.begin(), s.process.groups.end(), *gid) ==
          s.process.groups.end())
        s.process.groups.push_back(*gid);
    }
  }
  return {};
}

// "c 1:3 rwm", "b *:* m", "a *:* rwm": docker's device_cgroup_rules syntax.
std::optional<model::DeviceRule> parse_device_rule(const std::string& text) {
  std::istringstream in(text);
  std::string type, numbers, access, rest;
  if (!(in >> type >> numbers >> access) || (in >> rest)) return std::nullopt;
  if (type.size() != 1 || std::string("abc").find(type[0]) == std::string::npos)
    return std::nullopt;
  if (access.empty() || access.find_first_not_of("rwm") != std::string::npos) return std::nullopt;
  size_t colon = numbers.find(':');
  if (colon == std::string::npos) return std::nullopt;
  auto number = [](const std::string& n) -> std::optional<int64_t> {
    if (n == "*") return -1;
    if (n.empty() || n.size() > 9 || n.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    return std::stoll(n);
  };
  auto major = number(numbers.substr(0, colon)), minor = number(numbers.substr(colon + 1));
  if (!major || !minor) return std::nullopt;
  return model::DeviceRule{type[0], *major, *minor, access};
}

Result<void> device_knobs(const spec::Service& svc, RuntimeRecord& r) {
  auto& s = r.spec;
  if (svc.privileged) return {};  // every host device already
  static const std::vector<std::string> kDefault = {"/dev/null",   "/dev/zero",    "/dev/full",
                                                    "/dev/random", "/dev/urandom", "/dev/tty",
                                                    "/dev/ptmx",   "/dev/console"};
  for (const auto& d : svc.devices) {
    struct stat st {};
    if (::stat(d.source.c_str(), &st) != 0 || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)))
      return fail(where(svc, "devices") + ": " + d.source + " is not a device on this host");
    bool bad_target = d.target.rfind("/dev/", 0) != 0 ||
                      d.target.find("/../") != std::string::npos ||
                      std::find(kDefault.begin(), kDefault.end(), d.target) != kDefault.end();
    for (const char* own : {"/dev/pts", "/dev/shm", "/dev/mqueue"})
      bad_target = bad_target || d.target == own || d.target.rfind(std::string(own) + "/", 0) == 0;
    if (bad_target)
      return fail(where(svc, "devices") + ": " + d.target +
                  " cannot be a device's path in the container (a path under /dev that is not "
                  "one of the container's own nodes)");
    char type = S_ISBLK(st.st_mode) ? 'b' : 'c';
    uint32_t maj = ::major(st.st_rdev), min = ::minor(st.st_rdev);
    s.devices.push_back({d.target, type, maj, min, static_cast<uint32_t>(st.st_mode & 0777)});
    s.device_rules.push_back({type, maj, min, d.permissions});
  }
  if (const auto* rules = extra(svc, "device_cgroup_rules"); rules && rules->is_array()) {
    for (const auto& text : *rules) {
      auto rule = parse_device_rule(text.get<std::string>());
      if (!rule)
        return fail(where(svc, "device_cgroup_rules") + ": \"" + text.get<std::string>() +
                    "\" is not a rule like \"c 1:3 rwm\"");
      s.device_rules.push_back(*rule);
    }
  }
  return {};
}

}  // namespace

// uts: host and ipc: host (spec/service_fields.cpp refuses what would change the host
// through them: hostname, domainname, IPC sysctls); pid: host; pid and ipc service:NAME and
// container:NAME (joined at each start, supervisor.cpp); cgroup: private.
Result<void> host_namespaces(const spec::Service& svc, RuntimeRecord& r) {
  auto& s = r.spec;
  if (const auto* u = extra(svc, "uts"); u && *u == "host") {
    s.host_uts = true;
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) return fail_errno("gethostname");
    // /etc/hostname and /etc/hosts say the name the kernel gives inside: the host's.
    std::string from = "localhost " + s.hostname + "\n";
    if (size_t at = s.hosts.find(from); at != std::string::npos)
      s.hosts.replace(at, from.size(), "localhost " + std::string(name) + "\n");
    s.hostname = name;
  }
  if (const auto* i = extra(svc, "ipc"); i && *i == "host") {
    s.host_ipc = true;
    // POSIX shared memory lives in /dev/shm: the host's, as Docker binds it.
    model::BindMount shm;
    shm.source = "/dev/shm";
    shm.target = "/dev/shm";
    shm.create_source = false;
    s.mounts.push_back(shm);
  }
  if (const auto* p = extra(svc, "pid"); p && *p == "host") s.host_pid = true;
  if (const auto* c = extra(svc, "cgroup"); c && *c == "private") s.cgroupns = true;
  for (const char* key : {"pid", "ipc"}) {
    const auto* v = extra(svc, key);
    if (!v || !v->is_string()) continue;
    const std::string value = v->get<std::string>();
    if (value.rfind("container:", 0) == 0 && value.size() > 10) {
      // A container of this daemon by name (any project), joined at each start (supervisor.cpp).
      std::string target = value.substr(10);
      if ((!r.join_container.empty() && r.join_container != target) || !r.network_service.empty())
        return fail(where(svc, key) + ": " + key + " " + value +
                    ": stack joins the namespaces of one container only");
      r.join_container = target;
      (std::string(key) == "pid" ? r.join_pid : r.join_ipc) = true;
      continue;
    }
    if (value.rfind("service:", 0) != 0) continue;
    std::string target = value.substr(8);
    if (!r.join_container.empty())
      return fail(where(svc, key) + ": " + key + " " + value + " and container:" +
                  r.join_container + ": stack joins the namespaces of one container only");
    if (!r.network_service.empty() && r.network_service != target)
      return fail(where(svc, key) + ": " + key + " service:" + target + " and service:" +
                  r.network_service + ": stack joins the namespaces of one service only");
    r.network_service = target;
    (std::string(key) == "pid" ? r.join_pid : r.join_ipc) = true;
  }
  return {};
}

Result<void> apply_service_fields(const spec::Stack& stack, const spec::Service& svc,
                                  const fs::Image& image, RuntimeRecord& r) {
  if (auto x = labels(stack, svc, r); !x) return x;
  r.log_driver = svc.logging.driver;
  r.log_options = svc.logging.options;
  if (auto x = restart_policy(svc, r); !x) return x;
  if (auto x = cgroup_knobs(svc, r); !x) return x;
  if (auto x = device_knobs(svc, r); !x) return x;
  if (auto x = blkio(svc, r); !x) return x;
  if (auto x = host_namespaces(svc, r); !x) return x;
  if (const auto* p = extra(svc, "cgroup_parent"); p && p->is_string()) {
    std::string parent = p->get<std::string>();
    while (!parent.empty() && parent.front() == '/') parent.erase(0, 1);
    while (!parent.empty() && parent.back() == '/') parent.pop_back();
    bool bad = parent.empty() || parent == "stack" || parent.rfind("stack/", 0) == 0 ||
               parent.find("//") != std::string::npos ||
               parent.find_first_of("\n:,") != std::string::npos;
    for (const auto& part : std::filesystem::path(parent)) bad = bad || part == ".." || part == ".";
    if (bad)
      return fail(where(svc, "cgroup_parent") + ": cgroup_parent \"" + p->get<std::string>() +
                  "\" must be a cgroup path outside stack's own \"stack\" tree, without \"..\"");
    r.spec.cgroup = parent + "/" + r.spec.name;
  }
  if (const auto* c = extra(svc, "cpuset"); c && c->is_string()) {
    std::string cpus = c->get<std::string>();
    if (cpus.empty() || cpus.find_first_not_of("0123456789,-") != std::string::npos)
      return fail(where(svc, "cpuset") + ": cpuset \"" + cpus + "\" is not a CPU list like 0-1,3");
    r.spec.limits.cpuset_cpus = cpus;
  }
  if (auto x = process_knobs(svc, image, r); !x) return x;
  return build_hooks(svc, image, r);  // from the final process: after process_knobs
}

Result<void> check_container_names(const spec::Stack& stack, const planner::DesiredState& desired,
                                   state::Store& store) {
  // network_mode, pid and ipc container:NAME: a container this host has (of any project), or
  // nothing is made.
  for (const auto& svc : stack.services)
    for (const char* key : {"network_mode", "pid", "ipc"}) {
      std::string value = svc.network_mode;
      if (std::string(key) != "network_mode") {
        const auto* v = extra(svc, key);
        value = v && v->is_string() ? v->get<std::string>() : "";
      }
      if (value.rfind("container:", 0) != 0) continue;
      std::string name = value.substr(10);
      auto rec = store.get_container(name);
      if (!rec) return fail(rec.error());
      if (!*rec)
        return fail(where(svc, key) + ": " + key + " " + value + ": no container " + name +
                    " on this host");
    }
  for (const auto& d : desired.services) {
    const spec::Service* svc = stack.find(d.name);
    for (const auto& r : d.records) {
      if (!r) continue;
      auto rec = store.get_container(r->spec.name);
      if (!rec) return fail(rec.error());
      if (!*rec || (*rec)->project == stack.name) continue;
      // At container_name when written, else at the service.
      std::string at = svc ? where(*svc, "container_name") : "service \"" + d.name + "\"";
      return fail(at + ": container name " + r->spec.name + " is taken by project \"" +
                  (*rec)->project + "\" on this host");
    }
  }
  return {};
}

namespace {
std::mutex parents_mutex;  // the loop and the pool both start and reap containers

std::vector<std::string> read_parents(const std::filesystem::path& file) {
  std::vector<std::string> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

void write_parents(const std::filesystem::path& file, const std::vector<std::string>& levels) {
  if (levels.empty()) {
    ::unlink(file.c_str());
    return;
  }
  std::ofstream out(file, std::ios::trunc);
  for (const auto& l : levels) out << l << "\n";
}
}  // namespace

Result<void> note_cgroup_parents(const std::filesystem::path& root, engine::CgroupDriver& cgroups,
                                 const std::string& cgroup) {
  std::filesystem::path parent = std::filesystem::path(cgroup).parent_path();
  if (parent.empty() || *parent.begin() == "stack") return {};
  std::lock_guard lock(parents_mutex);
  auto file = root / "cgroup-parents";
  auto levels = read_parents(file);
  std::filesystem::path level;
  bool changed = false;
  for (const auto& part : parent) {
    level /= part;
    // pids() reads its cgroup.procs: it fails where the level does not exist.
    if (cgroups.pids(level.string())) continue;
    if (std::find(levels.begin(), levels.end(), level.string()) == levels.end()) {
      levels.push_back(level.string());
      changed = true;
    }
  }
  if (changed) write_parents(file, levels);
  return {};
}

void release_cgroup_parents(const std::filesystem::path& root, engine::CgroupDriver& cgroups,
                            state::Store& store) {
  std::lock_guard lock(parents_mutex);
  auto file = root / "cgroup-parents";
  auto levels = read_parents(file);
  if (levels.empty()) return;
  auto records = store.list_all_containers();
  if (!records) return;
  std::sort(levels.begin(), levels.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  std::vector<std::string> kept;
  for (const auto& level : levels) {
    bool used = std::any_of(records->begin(), records->end(), [&](const auto& rec) {
      return state::is_up(rec.state) && rec.runtime &&
             rec.runtime->spec.cgroup.rfind(level + "/", 0) == 0;
    });
    if (used || !cgroups.remove(level)) kept.push_back(level);
  }
  write_parents(file, kept);
}

}  // namespace stack::reconciler
