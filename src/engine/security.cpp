// The security settings the engine decides for a container, as Docker's defaults: capability
// sets (names resolved with libcap, so stack-init only ever sees numbers), masked and read-only
// paths, and the device nodes of /dev. Reads /proc and /dev on the host; changes nothing.
#include "engine/security.h"

#include <glob.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "common/files.h"
#include "engine/container.h"

namespace stack::engine {

namespace fs = std::filesystem;

uint64_t default_capabilities() {
  // moby's oci/caps/defaults.go: CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5, SETGID 6,
  // SETUID 7, SETPCAP 8, NET_BIND_SERVICE 10, NET_RAW 13, SYS_CHROOT 18, MKNOD 27,
  // AUDIT_WRITE 29, SETFCAP 31.
  uint64_t caps = 0;
  for (int c : {0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31}) caps |= 1ull << c;
  return caps;
}

uint64_t all_capabilities() {
  int last = CAP_LAST_CAP;
  if (auto text = read_file("/proc/sys/kernel/cap_last_cap")) last = std::atoi(text->c_str());
  if (last < 0 || last > 63) last = CAP_LAST_CAP;
  // Only what this process may itself hold: a container cannot be given more (capset(2)
  // refuses), and a host may withhold some from every process (a bounding set without
  // CAP_SYS_RESOURCE, say).
  uint64_t caps = 0;
  for (int c = 0; c <= last; c++)
    if (::prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) caps |= 1ull << c;
  return caps;
}

namespace {

// "NET_ADMIN", "cap_net_admin", "CAP_NET_ADMIN" -> its number, as libcap names it.
Result<int> capability_number(const std::string& name) {
  std::string lower;
  for (char c : name)
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (lower.rfind("cap_", 0) != 0) lower = "cap_" + lower;
  cap_value_t v;
  // libcap also takes numbers ("12"): compose names are names.
  bool digits = std::all_of(lower.begin() + 4, lower.end(), [](char c) { return std::isdigit(c); });
  if (digits || cap_from_name(lower.c_str(), &v) != 0 || v < 0 || v > 63)
    return fail("unknown capability " + std::string("CAP_") + [&] {
      std::string up = lower.substr(4);
      for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      return up;
    }());
  return static_cast<int>(v);
}

bool has_all(const std::vector<std::string>& names) {
  return std::any_of(names.begin(), names.end(), [](const std::string& n) {
    std::string u;
    for (char c : n) u.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    return u == "ALL" || u == "CAP_ALL";
  });
}

Result<uint64_t> mask_of(const std::vector<std::string>& names) {
  uint64_t m = 0;
  for (const auto& n : names) {
    if (has_all({n})) continue;
    auto c = capability_number(n);
    if (!c) return fail(c.error());
    m |= 1ull << *c;
  }
  return m;
}

}  // namespace

Result<uint64_t> capabilities_from(const std::vector<std::string>& cap_add,
                                   const std::vector<std::string>& cap_drop) {
  auto add = mask_of(cap_add);
  if (!add) return fail(add.error().wrap("cap_add"));
  auto drop = mask_of(cap_drop);
  if (!drop) return fail(drop.error().wrap("cap_drop"));
  // moby's oci/caps.TweakCapabilities, case by case.
  uint64_t all = all_capabilities();
  if (has_all(cap_add)) return all & ~*drop;
  if (uint64_t missing = *add & ~all) {
    char* name = cap_to_name(static_cast<cap_value_t>(__builtin_ctzll(missing)));
    std::string n = name ? name : "?";
    cap_free(name);
    for (char& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return fail("cap_add: " + n + " is not in stack's own bounding set: it cannot be given");
  }
  if (has_all(cap_drop)) return *add;
  return (default_capabilities() & ~*drop) | *add;
}

Result<bool> no_new_privileges_from(const std::vector<std::string>& security_opt) {
  bool on = true;  // stack's default, stricter than Docker's
  for (const auto& o : security_opt) {
    if (o.rfind("no-new-privileges", 0) != 0) continue;
    std::string_view v = std::string_view(o).substr(17);
    if (v.empty() || v == ":true" || v == "=true")
      on = true;
    else if (v == ":false" || v == "=false")
      on = false;
    else
      return fail("security_opt \"" + o + "\": expected no-new-privileges[:true|:false]");
  }
  return on;
}

const std::vector<std::string>& masked_paths() {
  // moby's oci/defaults.go (Docker 28): maskedPaths, plus each CPU's thermal_throttle
  // directory (CVE-2020-8694 class: power and thermal side channels).
  static const std::vector<std::string> paths = [] {
    std::vector<std::string> p = {
        "/proc/asound",     "/proc/acpi",        "/proc/interrupts",
        "/proc/kcore",      "/proc/keys",        "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
        "/proc/scsi",       "/sys/firmware",     "/sys/devices/virtual/powercap",
    };
    glob_t g{};
    if (::glob("/sys/devices/system/cpu/cpu*/thermal_throttle", GLOB_ONLYDIR, nullptr, &g) == 0)
      for (size_t i = 0; i < g.gl_pathc; i++) p.emplace_back(g.gl_pathv[i]);
    ::globfree(&g);
    return p;
  }();
  return paths;
}

const std::vector<std::string>& readonly_paths() {
  static const std::vector<std::string> paths = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                                 "/proc/sysrq-trigger"};
  return paths;
}

const std::vector<DeviceNode>& default_devices() {
  static const std::vector<DeviceNode> nodes = {
      {"/dev/null", 'c', 1, 3, 0666},    {"/dev/zero", 'c', 1, 5, 0666},
      {"/dev/full", 'c', 1, 7, 0666},    {"/dev/random", 'c', 1, 8, 0666},
      {"/dev/urandom", 'c', 1, 9, 0666}, {"/dev/tty", 'c', 5, 0, 0666},
  };
  return nodes;
}

std::vector<DeviceNode> host_devices() {
  // As Docker's privileged mode (HostDevices): every node under /dev, but the container's own
  // pts, shm, mqueue and /dev/ptmx (a link to its pts), and the host's console.
  std::vector<DeviceNode> out;
  std::error_code ec;
  fs::recursive_directory_iterator it("/dev", fs::directory_options::skip_permission_denied, ec),
      end;
  for (; !ec && it != end; it.increment(ec)) {
    const auto& p = it->path();
    std::string s = p.string();
    if (it->is_directory(ec) && !it->is_symlink(ec)) {
      std::string name = p.filename().string();
      if (name == "pts" || name == "shm" || name == "mqueue" || name == ".udev" || name == "fd")
        it.disable_recursion_pending();
      continue;
    }
    if (s == "/dev/ptmx" || s == "/dev/console") continue;
    struct stat st {};
    if (::lstat(s.c_str(), &st) != 0 || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) continue;
    out.push_back({s, S_ISBLK(st.st_mode) ? 'b' : 'c', major(st.st_rdev), minor(st.st_rdev),
                   static_cast<uint32_t>(st.st_mode & 07777)});
  }
  return out;
}

}  // namespace stack::engine
