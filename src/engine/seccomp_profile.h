// Engine-internal: one seccomp profile model for the built-in default table and for Docker's JSON
// format, and the libseccomp compiler that turns it into BPF for a capability set and a host.
// Not a public header of the engine (that is seccomp.h); unit tests and the bench use it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stack::engine::seccomp {

// The SCMP_ACT_* actions of Docker's format. NOTIFY is refused by the parser (no seccomp agent).
struct Action {
  enum class Kind { kKillThread, kKillProcess, kTrap, kErrno, kTrace, kLog, kAllow } kind;
  uint32_t data = 0;  // the errno for kErrno, the tracer's message for kTrace
  bool operator==(const Action&) const = default;
};

enum class ArgOp { kNe, kLt, kLe, kEq, kGe, kGt, kMaskedEq };

struct Arg {
  unsigned index = 0;      // 0..5
  uint64_t value = 0;      // for kMaskedEq, the mask
  uint64_t value_two = 0;  // for kMaskedEq, what the masked argument must equal
  ArgOp op = ArgOp::kEq;
};

struct KernelVersion {
  unsigned major = 0, minor = 0;
  auto operator<=>(const KernelVersion&) const = default;
};

// Docker's includes/excludes. Capabilities are bit numbers; a name this build does not know is
// a capability no container holds (Docker compares names against the bounding set).
struct Condition {
  uint64_t caps = 0;
  bool unknown_cap = false;
  std::vector<std::string> arches;  // Docker's names: "amd64", "x86", "x32", "arm64", "s390x"...
  std::optional<KernelVersion> min_kernel;
  [[nodiscard]] bool empty() const {
    return caps == 0 && !unknown_cap && arches.empty() && !min_kernel;
  }
};

struct Rule {
  std::vector<std::string> names;
  Action action{Action::Kind::kAllow};
  std::vector<Arg> args;
  Condition includes;  // every listed capability held, the native arch listed, kernel >= min
  Condition excludes;  // any listed capability held, the native arch listed, kernel >= min
};

struct ArchMapEntry {
  std::string arch;  // "SCMP_ARCH_X86_64"
  std::vector<std::string> subarches;
};

struct Profile {
  Action default_action{Action::Kind::kErrno, 1 /* EPERM */};
  std::vector<std::string> architectures;  // "SCMP_ARCH_*": used as given
  std::vector<ArchMapEntry> arch_map;      // the entry of the native arch is used
  unsigned flags = 0;                      // SECCOMP_FILTER_FLAG_*, for seccomp(2)
  std::vector<Rule> rules;
};

// Docker's default profile as data (seccomp_default.cpp).
const Profile& default_profile();

// Docker's seccomp JSON. ORIGIN names the source in errors ("/srv/app/seccomp.json");
// syntax errors give ORIGIN:line:column, others the member path ("syscalls[3].args[0].op").
[[nodiscard]] Result<Profile> parse_profile(std::string_view json, std::string_view origin);

// "CAP_SYS_ADMIN" -> 21; -1 when unknown.
int capability_number(std::string_view name);

// What a profile is compiled against besides the capabilities.
struct Host {
  uint32_t native_arch = 0;  // SCMP_ARCH_* (libseccomp's token, the kernel's AUDIT_ARCH_*)
  KernelVersion kernel;
};
[[nodiscard]] Result<Host> current_host();
[[nodiscard]] Result<KernelVersion> parse_kernel_version(std::string_view release);

// The BPF program for PROFILE given the container's capability set CAPS, as raw sock_filter
// bytes. When the default action denies, syscalls numbered above every syscall the profile
// names answer ENOSYS (as runc does), so a libc falls back from a syscall newer than the profile.
// OPTIMIZE is libseccomp's SCMP_FLTATR_CTL_OPTIMIZE: 2 (a binary tree) unless a bench compares.
[[nodiscard]] Result<std::string> compile(const Profile& profile, uint64_t caps, const Host& host,
                                          int optimize = 2);

// PROFILE in Docker's JSON format (what `seccomp=PATH` reads): the built-in table can be
// written out, edited and given back.
[[nodiscard]] std::string to_docker_json(const Profile& profile);

}  // namespace stack::engine::seccomp
