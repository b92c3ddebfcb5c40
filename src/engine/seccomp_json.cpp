// Docker's seccomp JSON (moby profiles/seccomp: defaultAction, defaultErrnoRet, architectures or
// archMap, flags, syscalls with name(s), action, errnoRet, args, includes/excludes) into the
// engine's Profile. nlohmann/json stays in this file. Syntax errors name origin:line:column;
// other errors the member path. A file's bytes are never echoed back in an error.
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "engine/seccomp_profile.h"

// Propagates an error as it is: the messages already carry origin and path.
#define TRY(expr)                                      \
  ({                                                   \
    auto&& try_r_ = (expr);                            \
    if (!try_r_) return ::stack::fail(try_r_.error()); \
    std::move(try_r_).value();                         \
  })

namespace stack::engine::seccomp {
namespace {

using json = nlohmann::json;

// Linux capability names by number (include/uapi/linux/capability.h, up to 6.x).
// clang-format off
constexpr std::array<std::string_view, 41> kCapabilityNames = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};
// clang-format on
static_assert(kCapabilityNames.size() == CAP_LAST_CAP + 1, "a new capability: name it here");

constexpr unsigned kMaxErrno = 4095;  // the kernel clamps SECCOMP_RET_ERRNO data to MAX_ERRNO

// "origin:line:column" of byte offset BYTE (nlohmann counts the bytes read, 1-based).
std::string position(std::string_view origin, std::string_view text, size_t byte) {
  size_t at = byte == 0 ? 0 : std::min(byte - 1, text.size());
  size_t line = 1, col = 1;
  for (size_t i = 0; i < at; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::string(origin) + ":" + std::to_string(line) + ":" + std::to_string(col);
}

// nlohmann's parse error text without its "[json.exception...] parse error at ..." prefix and
// without "last read: '...'", which would quote the file (it may not be JSON at all: a secret).
std::string syntax_reason(const std::string& what) {
  std::string s = what;
  if (auto p = s.find(": "); p != std::string::npos && s.rfind("[json.exception", 0) == 0)
    s = s.substr(p + 2);
  if (auto p = s.find("; last read: '"); p != std::string::npos) {
    auto expected = s.rfind("; expected ");
    s = s.substr(0, p) + (expected != std::string::npos && expected > p ? s.substr(expected) : "");
  }
  return s;
}

// nlohmann reports the last byte it read; a user wants the first byte of the offending token.
// END is that 1-based byte count; the token is a string literal or a run of literal characters
// (for an invalid literal the byte read is the one after it).
size_t token_start(std::string_view text, size_t end, bool invalid_literal) {
  if (end == 0 || end > text.size()) return end;
  size_t i = end - 1;
  if (invalid_literal && i > 0 && !std::isalnum(static_cast<unsigned char>(text[i]))) --i;
  auto literal = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+';
  };
  if (text[i] == '"') {
    for (size_t j = i; j-- > 0;) {
      if (text[j] != '"') continue;
      size_t backslashes = 0;
      while (j > backslashes && text[j - 1 - backslashes] == '\\') ++backslashes;
      if (backslashes % 2 == 0) return j + 1;
    }
    return end;
  }
  if (!literal(text[i])) return end;
  while (i > 0 && literal(text[i - 1])) --i;
  return i + 1;
}

class Parser {
 public:
  explicit Parser(std::string_view origin) : origin_(origin) {}

  Result<Profile> profile(const json& root) {
    if (!root.is_object()) return error("", "a profile is a JSON object");
    if (auto ok = known_members(root, "",
                                {"defaultAction", "defaultErrnoRet", "architectures", "archMap",
                                 "flags", "listenerPath", "listenerMetadata", "syscalls"});
        !ok)
      return fail(ok.error());
    Profile p;
    if (root.contains("listenerPath") && !root["listenerPath"].is_null() &&
        root["listenerPath"] != "")
      return error("listenerPath", "seccomp agents (SCMP_ACT_NOTIFY) are not supported");
    if (!root.contains("defaultAction"))
      return error("defaultAction",
                   "missing (to run without a filter, use security_opt: [seccomp=unconfined])");
    std::optional<uint64_t> default_errno;
    if (root.contains("defaultErrnoRet") && !root["defaultErrnoRet"].is_null())
      default_errno = TRY(uint_at(root["defaultErrnoRet"], "defaultErrnoRet", kMaxErrno));
    p.default_action =
        TRY(action(root["defaultAction"], "defaultAction", default_errno, "defaultErrnoRet"));
    p.architectures = TRY(strings(root, "architectures", "architectures"));
    for (const auto& a : p.architectures)
      if (auto r = check_arch(a, "architectures"); !r) return fail(r.error());
    if (root.contains("archMap") && !root["archMap"].is_null()) {
      const json& map = root["archMap"];
      if (!map.is_array()) return error("archMap", "must be an array");
      for (size_t i = 0; i < map.size(); ++i) {
        std::string at = "archMap[" + std::to_string(i) + "]";
        if (!map[i].is_object()) return error(at, "must be an object");
        if (auto ok = known_members(map[i], at, {"architecture", "subArchitectures"}); !ok)
          return fail(ok.error());
        if (!map[i].contains("architecture")) return error(at + ".architecture", "missing");
        ArchMapEntry e;
        e.arch = TRY(string_at(map[i]["architecture"], at + ".architecture"));
        if (auto ok = check_arch(e.arch, at + ".architecture"); !ok) return fail(ok.error());
        e.subarches = TRY(strings(map[i], "subArchitectures", at + ".subArchitectures"));
        for (const auto& s : e.subarches)
          if (auto ok = check_arch(s, at + ".subArchitectures"); !ok) return fail(ok.error());
        p.arch_map.push_back(std::move(e));
      }
    }
    // moby refuses both, since it could not tell which one the author meant.
    if (!p.architectures.empty() && !p.arch_map.empty())
      return error("archMap", "'architectures' and 'archMap' are both given: use one");
    for (const auto& f : TRY(strings(root, "flags", "flags"))) p.flags |= TRY(flag(f));
    if (root.contains("syscalls") && !root["syscalls"].is_null()) {
      const json& calls = root["syscalls"];
      if (!calls.is_array()) return error("syscalls", "must be an array");
      for (size_t i = 0; i < calls.size(); ++i)
        p.rules.push_back(TRY(rule(calls[i], "syscalls[" + std::to_string(i) + "]")));
    }
    return p;
  }

 private:
  tl::unexpected<Error> error(const std::string& path, const std::string& what) const {
    return fail(std::string(origin_) + ": " + (path.empty() ? "" : path + ": ") + what);
  }

  // moby ignores members it does not know; a misspelt one ("sycalls") would then silently drop
  // rules, so it is refused here.
  Result<void> known_members(const json& obj, const std::string& path,
                             std::initializer_list<std::string_view> known) const {
    for (const auto& item : obj.items()) {
      if (std::find(known.begin(), known.end(), item.key()) != known.end()) continue;
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return error(path.empty() ? item.key() : path + "." + item.key(),
                   "unknown member (expected one of " + list + ")");
    }
    return {};
  }

  Result<std::string> string_at(const json& j, const std::string& path) const {
    if (!j.is_string()) return error(path, "must be a string");
    return j.get<std::string>();
  }

  Result<uint64_t> uint_at(const json& j, const std::string& path, uint64_t max) const {
    if (!j.is_number_integer() ||
        (j.is_number_integer() && !j.is_number_unsigned() && j.get<int64_t>() < 0))
      return error(path, "must be an unsigned integer");
    auto v = j.get<uint64_t>();
    if (v > max) return error(path, std::to_string(v) + " is above " + std::to_string(max));
    return v;
  }

  // An optional array of strings; null or absent is empty.
  Result<std::vector<std::string>> strings(const json& obj, const char* key,
                                           const std::string& path) const {
    std::vector<std::string> out;
    if (!obj.contains(key) || obj[key].is_null()) return out;
    const json& a = obj[key];
    if (!a.is_array()) return error(path, "must be an array of strings");
    for (size_t i = 0; i < a.size(); ++i)
      out.push_back(TRY(string_at(a[i], path + "[" + std::to_string(i) + "]")));
    return out;
  }

  Result<void> check_arch(const std::string& name, const std::string& path) const {
    constexpr std::string_view kPrefix = "SCMP_ARCH_";
    if (name.rfind(kPrefix, 0) == 0) {
      std::string lower = name.substr(kPrefix.size());
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (seccomp_arch_resolve_name(lower.c_str()) != 0) return {};
    }
    return error(path,
                 "unknown architecture \"" + name + "\" (SCMP_ARCH_X86_64, SCMP_ARCH_X86, ...)");
  }

  Result<unsigned> flag(const std::string& f) const {
    if (f == "SECCOMP_FILTER_FLAG_LOG") return SECCOMP_FILTER_FLAG_LOG;
    if (f == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") return SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    // The filter is installed by a single-threaded process: nothing to synchronise.
    if (f == "SECCOMP_FILTER_FLAG_TSYNC") return 0u;
    // Only meaningful with a listener (SCMP_ACT_NOTIFY), which is refused.
    if (f == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") return 0u;
    if (f == "SECCOMP_FILTER_FLAG_NEW_LISTENER")
      return error("flags", "SECCOMP_FILTER_FLAG_NEW_LISTENER: seccomp agents are not supported");
    return error("flags", "unknown flag \"" + f + "\"");
  }

  Result<Action> action(const json& j, const std::string& path, std::optional<uint64_t> errno_ret,
                        const std::string& errno_path) const {
    auto name = TRY(string_at(j, path));
    using K = Action::Kind;
    auto no_errno = [&](Action a) -> Result<Action> {
      if (errno_ret)
        return error(errno_path, "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a return value");
      return a;
    };
    if (name == "SCMP_ACT_ALLOW") return no_errno({K::kAllow});
    if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD")
      return no_errno({K::kKillThread});
    if (name == "SCMP_ACT_KILL_PROCESS") return no_errno({K::kKillProcess});
    if (name == "SCMP_ACT_TRAP") return no_errno({K::kTrap});
    if (name == "SCMP_ACT_LOG") return no_errno({K::kLog});
    // Without a value, EPERM (as runc).
    if (name == "SCMP_ACT_ERRNO")
      return Action{K::kErrno, static_cast<uint32_t>(errno_ret.value_or(EPERM))};
    if (name == "SCMP_ACT_TRACE")
      return Action{K::kTrace, static_cast<uint32_t>(errno_ret.value_or(EPERM))};
    if (name == "SCMP_ACT_NOTIFY")
      return error(path, "SCMP_ACT_NOTIFY needs a seccomp agent, which stack does not run");
    return error(path,
                 "unknown action \"" + name +
                     "\" (SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, "
                     "SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_TRACE, SCMP_ACT_LOG)");
  }

  Result<Arg> arg(const json& j, const std::string& path) const {
    if (!j.is_object()) return error(path, "must be an object");
    if (auto ok = known_members(j, path, {"index", "value", "valueTwo", "op"}); !ok)
      return fail(ok.error());
    Arg a;
    if (!j.contains("index")) return error(path + ".index", "missing");
    a.index = static_cast<unsigned>(TRY(uint_at(j["index"], path + ".index", 5)));
    if (!j.contains("value")) return error(path + ".value", "missing");
    a.value = TRY(uint_at(j["value"], path + ".value", UINT64_MAX));
    if (j.contains("valueTwo") && !j["valueTwo"].is_null())
      a.value_two = TRY(uint_at(j["valueTwo"], path + ".valueTwo", UINT64_MAX));
    if (!j.contains("op")) return error(path + ".op", "missing");
    auto op = TRY(string_at(j["op"], path + ".op"));
    static const std::pair<std::string_view, ArgOp> kOps[] = {
        {"SCMP_CMP_NE", ArgOp::kNe},
        {"SCMP_CMP_LT", ArgOp::kLt},
        {"SCMP_CMP_LE", ArgOp::kLe},
        {"SCMP_CMP_EQ", ArgOp::kEq},
        {"SCMP_CMP_GE", ArgOp::kGe},
        {"SCMP_CMP_GT", ArgOp::kGt},
        {"SCMP_CMP_MASKED_EQ", ArgOp::kMaskedEq}};
    for (const auto& [n, o] : kOps)
      if (op == n) {
        a.op = o;
        return a;
      }
    return error(path + ".op", "unknown operator \"" + op +
                                   "\" (SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT, _MASKED_EQ)");
  }

  Result<Condition> condition(const json& obj, const char* key, const std::string& path) const {
    Condition c;
    if (!obj.contains(key) || obj[key].is_null()) return c;
    const json& j = obj[key];
    if (!j.is_object()) return error(path, "must be an object");
    if (auto ok = known_members(j, path, {"caps", "arches", "minKernel"}); !ok)
      return fail(ok.error());
    for (const auto& name : TRY(strings(j, "caps", path + ".caps"))) {
      int n = capability_number(name);
      if (n < 0)
        c.unknown_cap = true;
      else
        c.caps |= uint64_t{1} << n;
    }
    c.arches = TRY(strings(j, "arches", path + ".arches"));
    if (j.contains("minKernel") && !j["minKernel"].is_null()) {
      auto v = TRY(string_at(j["minKernel"], path + ".minKernel"));
      auto k = parse_kernel_version(v);
      if (!k)
        return error(path + ".minKernel", "\"" + v + "\" is not a kernel version like \"4.8\"");
      c.min_kernel = *k;
    }
    return c;
  }

  Result<Rule> rule(const json& j, const std::string& path) const {
    if (!j.is_object()) return error(path, "must be an object");
    if (auto ok = known_members(
            j, path,
            {"name", "names", "action", "errnoRet", "args", "comment", "includes", "excludes"});
        !ok)
      return fail(ok.error());
    Rule r;
    bool has_name = j.contains("name") && !j["name"].is_null() && j["name"] != "";
    r.names = TRY(strings(j, "names", path + ".names"));
    if (has_name && !r.names.empty())
      return error(path, "'name' and 'names' are both given: use one");
    if (has_name) r.names.push_back(TRY(string_at(j["name"], path + ".name")));
    if (!j.contains("action")) return error(path + ".action", "missing");
    std::optional<uint64_t> errno_ret;
    if (j.contains("errnoRet") && !j["errnoRet"].is_null())
      errno_ret = TRY(uint_at(j["errnoRet"], path + ".errnoRet", kMaxErrno));
    r.action = TRY(action(j["action"], path + ".action", errno_ret, path + ".errnoRet"));
    if (j.contains("args") && !j["args"].is_null()) {
      const json& args = j["args"];
      if (!args.is_array()) return error(path + ".args", "must be an array");
      for (size_t i = 0; i < args.size(); ++i)
        r.args.push_back(TRY(arg(args[i], path + ".args[" + std::to_string(i) + "]")));
    }
    r.includes = TRY(condition(j, "includes", path + ".includes"));
    r.excludes = TRY(condition(j, "excludes", path + ".excludes"));
    return r;
  }

  std::string_view origin_;
};

}  // namespace

int capability_number(std::string_view name) {
  for (size_t i = 0; i < kCapabilityNames.size(); ++i)
    if (kCapabilityNames[i] == name) return static_cast<int>(i);
  return -1;
}

Result<KernelVersion> parse_kernel_version(std::string_view release) {
  // "6.18.44-fc-v657", "4.8": major.minor, the rest ignored.
  KernelVersion v;
  size_t i = 0;
  auto number = [&](unsigned& out) {
    size_t start = i;
    out = 0;
    while (i < release.size() && release[i] >= '0' && release[i] <= '9' && i - start < 6)
      out = out * 10 + static_cast<unsigned>(release[i++] - '0');
    return i > start;
  };
  if (!number(v.major) || i >= release.size() || release[i++] != '.' || !number(v.minor))
    return fail("not a kernel version: \"" + std::string(release) + "\"");
  return v;
}

namespace {

const char* action_name(Action::Kind k) {
  switch (k) {
    case Action::Kind::kKillThread:
      return "SCMP_ACT_KILL_THREAD";
    case Action::Kind::kKillProcess:
      return "SCMP_ACT_KILL_PROCESS";
    case Action::Kind::kTrap:
      return "SCMP_ACT_TRAP";
    case Action::Kind::kErrno:
      return "SCMP_ACT_ERRNO";
    case Action::Kind::kTrace:
      return "SCMP_ACT_TRACE";
    case Action::Kind::kLog:
      return "SCMP_ACT_LOG";
    case Action::Kind::kAllow:
      return "SCMP_ACT_ALLOW";
  }
  return "";
}

const char* op_name(ArgOp op) {
  switch (op) {
    case ArgOp::kNe:
      return "SCMP_CMP_NE";
    case ArgOp::kLt:
      return "SCMP_CMP_LT";
    case ArgOp::kLe:
      return "SCMP_CMP_LE";
    case ArgOp::kEq:
      return "SCMP_CMP_EQ";
    case ArgOp::kGe:
      return "SCMP_CMP_GE";
    case ArgOp::kGt:
      return "SCMP_CMP_GT";
    case ArgOp::kMaskedEq:
      return "SCMP_CMP_MASKED_EQ";
  }
  return "";
}

json condition_json(const Condition& c) {
  json j = json::object();
  json caps = json::array();
  for (size_t n = 0; n < kCapabilityNames.size(); ++n)
    if (c.caps & (uint64_t{1} << n)) caps.push_back(kCapabilityNames[n]);
  if (!caps.empty()) j["caps"] = caps;
  if (!c.arches.empty()) j["arches"] = c.arches;
  if (c.min_kernel)
    j["minKernel"] =
        std::to_string(c.min_kernel->major) + "." + std::to_string(c.min_kernel->minor);
  return j;
}

}  // namespace

std::string to_docker_json(const Profile& p) {
  json root = json::object();
  root["defaultAction"] = action_name(p.default_action.kind);
  if (p.default_action.kind == Action::Kind::kErrno)
    root["defaultErrnoRet"] = p.default_action.data;
  if (!p.architectures.empty()) root["architectures"] = p.architectures;
  if (!p.arch_map.empty()) {
    json map = json::array();
    for (const auto& e : p.arch_map)
      map.push_back({{"architecture", e.arch}, {"subArchitectures", e.subarches}});
    root["archMap"] = map;
  }
  json flags = json::array();
  if (p.flags & SECCOMP_FILTER_FLAG_LOG) flags.push_back("SECCOMP_FILTER_FLAG_LOG");
  if (p.flags & SECCOMP_FILTER_FLAG_SPEC_ALLOW) flags.push_back("SECCOMP_FILTER_FLAG_SPEC_ALLOW");
  if (!flags.empty()) root["flags"] = flags;
  json calls = json::array();
  for (const auto& r : p.rules) {
    json c = {{"names", r.names}, {"action", action_name(r.action.kind)}};
    if (r.action.kind == Action::Kind::kErrno || r.action.kind == Action::Kind::kTrace)
      c["errnoRet"] = r.action.data;
    if (!r.args.empty()) {
      json args = json::array();
      for (const auto& a : r.args)
        args.push_back({{"index", a.index},
                        {"value", a.value},
                        {"valueTwo", a.value_two},
                        {"op", op_name(a.op)}});
      c["args"] = args;
    }
    if (!r.includes.empty()) c["includes"] = condition_json(r.includes);
    if (!r.excludes.empty()) c["excludes"] = condition_json(r.excludes);
    calls.push_back(c);
  }
  root["syscalls"] = calls;
  return root.dump(1, '\t') + "\n";
}

Result<Profile> parse_profile(std::string_view text, std::string_view origin) {
  json root;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    std::string reason = syntax_reason(e.what());
    bool invalid_literal = reason.find("invalid literal") != std::string::npos;
    return fail(position(origin, text, token_start(text, e.byte, invalid_literal)) +
                ": invalid JSON: " + reason);
  } catch (const json::exception& e) {
    return fail(std::string(origin) + ": invalid JSON: " + syntax_reason(e.what()));
  }
  // Type errors are checked member by member, but nlohmann may still throw on a corner the
  // checks missed: an exception must not leave this file.
  try {
    return Parser(origin).profile(root);
  } catch (const json::exception& e) {
    return fail(std::string(origin) + ": " + e.what());
  }
}

}  // namespace stack::engine::seccomp
