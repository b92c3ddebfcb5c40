// Compiles a Profile with libseccomp (seccomp_init, seccomp_rule_add_array, seccomp_export_bpf
// into a memfd: no process is spawned) for one capability set and host, the way moby selects
// rules and runc adds them. Pure computation plus a memfd; it never installs a filter.
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "common/unique_fd.h"
#include "engine/seccomp_profile.h"

namespace stack::engine::seccomp {
namespace {

// The x32 ABI shares AUDIT_ARCH_X86_64 and sets this bit in the syscall number.
constexpr uint32_t kX32SyscallBit = 0x40000000;

class FilterCtx {
 public:
  explicit FilterCtx(uint32_t default_action) : ctx_(seccomp_init(default_action)) {}
  ~FilterCtx() {
    if (ctx_) seccomp_release(ctx_);
  }
  FilterCtx(const FilterCtx&) = delete;
  FilterCtx& operator=(const FilterCtx&) = delete;
  scmp_filter_ctx get() const { return ctx_; }

 private:
  scmp_filter_ctx ctx_;
};

uint32_t scmp_action(const Action& a) {
  switch (a.kind) {
    case Action::Kind::kKillThread:
      return SCMP_ACT_KILL_THREAD;
    case Action::Kind::kKillProcess:
      return SCMP_ACT_KILL_PROCESS;
    case Action::Kind::kTrap:
      return SCMP_ACT_TRAP;
    case Action::Kind::kErrno:
      return SCMP_ACT_ERRNO(a.data);
    case Action::Kind::kTrace:
      return SCMP_ACT_TRACE(a.data);
    case Action::Kind::kLog:
      return SCMP_ACT_LOG;
    case Action::Kind::kAllow:
      return SCMP_ACT_ALLOW;
  }
  return SCMP_ACT_KILL_PROCESS;
}

scmp_compare scmp_op(ArgOp op) {
  switch (op) {
    case ArgOp::kNe:
      return SCMP_CMP_NE;
    case ArgOp::kLt:
      return SCMP_CMP_LT;
    case ArgOp::kLe:
      return SCMP_CMP_LE;
    case ArgOp::kEq:
      return SCMP_CMP_EQ;
    case ArgOp::kGe:
      return SCMP_CMP_GE;
    case ArgOp::kGt:
      return SCMP_CMP_GT;
    case ArgOp::kMaskedEq:
      return SCMP_CMP_MASKED_EQ;
  }
  return SCMP_CMP_EQ;
}

// The names moby's includes/excludes use for the native architecture (Go's GOARCH spelled as
// libseccomp does: moby profiles/seccomp/seccomp_linux.go).
std::string_view docker_arch_name(uint32_t token) {
  switch (token) {
    case SCMP_ARCH_X86_64:
      return "amd64";
    case SCMP_ARCH_X86:
      return "x86";
    case SCMP_ARCH_X32:
      return "x32";
    case SCMP_ARCH_ARM:
      return "arm";
    case SCMP_ARCH_AARCH64:
      return "arm64";
    case SCMP_ARCH_MIPS:
      return "mips";
    case SCMP_ARCH_MIPSEL:
      return "mipsle";
    case SCMP_ARCH_MIPS64:
      return "mips64";
    case SCMP_ARCH_MIPS64N32:
      return "mips64n32";
    case SCMP_ARCH_MIPSEL64:
      return "mipsel64";
    case SCMP_ARCH_MIPSEL64N32:
      return "mips3l64n32";  // sic, moby's spelling
    case SCMP_ARCH_PPC:
      return "ppc";
    case SCMP_ARCH_PPC64:
      return "ppc64";
    case SCMP_ARCH_PPC64LE:
      return "ppc64le";
    case SCMP_ARCH_S390:
      return "s390";
    case SCMP_ARCH_S390X:
      return "s390x";
    case SCMP_ARCH_RISCV64:
      return "riscv64";
  }
  return "";
}

uint32_t arch_token(std::string_view scmp_name) {
  std::string lower(scmp_name.substr(std::min(scmp_name.size(), sizeof("SCMP_ARCH_") - 1)));
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return seccomp_arch_resolve_name(lower.c_str());
}

bool listed(const std::vector<std::string>& arches, std::string_view native) {
  return std::find(arches.begin(), arches.end(), native) != arches.end();
}

// moby's rule selection: excludes first (any match drops the rule), then includes (all must hold).
bool applies(const Rule& r, uint64_t caps, const Host& host) {
  std::string_view native = docker_arch_name(host.native_arch);
  const Condition& ex = r.excludes;
  if (listed(ex.arches, native) || (caps & ex.caps) != 0) return false;
  if (ex.min_kernel && host.kernel >= *ex.min_kernel) return false;
  const Condition& in = r.includes;
  if (!in.arches.empty() && !listed(in.arches, native)) return false;
  if (in.unknown_cap || (caps & in.caps) != in.caps) return false;
  if (in.min_kernel && host.kernel < *in.min_kernel) return false;
  return true;
}

// The architectures of the filter: "architectures" as given, else the archMap entry of the
// native architecture with its sub-architectures, else the native one alone.
std::vector<uint32_t> filter_arches(const Profile& p, const Host& host) {
  std::vector<uint32_t> out{host.native_arch};
  auto add = [&](std::string_view name) {
    uint32_t t = arch_token(name);
    if (t != 0 && std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
  };
  for (const auto& a : p.architectures) add(a);
  if (p.architectures.empty())
    for (const auto& e : p.arch_map)
      if (arch_token(e.arch) == host.native_arch) {
        for (const auto& s : e.subarches) add(s);
        break;
      }
  return out;
}

Result<void> add_rule(scmp_filter_ctx ctx, uint32_t action, const Rule& r) {
  std::vector<scmp_arg_cmp> conds;
  unsigned per_index[6] = {};
  for (const auto& a : r.args) {
    conds.push_back(scmp_arg_cmp{a.index, scmp_op(a.op), a.value, a.value_two});
    ++per_index[a.index];
  }
  // libseccomp refuses two comparisons of one argument in a rule (EINVAL); runc then adds each
  // comparison as a rule of its own, so any of them matching applies the action. Same here.
  bool split =
      std::any_of(std::begin(per_index), std::end(per_index), [](unsigned n) { return n > 1; });
  for (const auto& name : r.names) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) continue;  // unknown to this libseccomp: skipped, as Docker does
    auto add = [&](unsigned n, const scmp_arg_cmp* c) -> Result<void> {
      if (int rc = seccomp_rule_add_array(ctx, action, nr, n, c); rc < 0)
        return fail("add rule for " + name + ": " + std::strerror(-rc), -rc);
      return {};
    };
    if (!split) {
      if (auto res = add(static_cast<unsigned>(conds.size()), conds.data()); !res) return res;
    } else {
      for (const auto& c : conds)
        if (auto res = add(1, &c); !res) return res;
    }
  }
  return {};
}

bool denies_by_default(const Action& a) {
  return a.kind == Action::Kind::kErrno || a.kind == Action::Kind::kKillThread ||
         a.kind == Action::Kind::kKillProcess || a.kind == Action::Kind::kTrap;
}

// A prefix answering ENOSYS, per architecture, to syscall numbers above every syscall the
// profile names (runc's libcontainer/seccomp/patchbpf does the same): a syscall newer than the
// profile looks unimplemented, so a libc falls back (glibc's fchmodat2 -> fchmodat) instead of
// failing with EPERM. It jumps to the libseccomp program, which reloads what it needs; BPF
// jumps are relative and forward, so the program is unchanged by what precedes it.
std::vector<sock_filter> enosys_prefix(const Profile& p, const std::vector<uint32_t>& arches) {
  struct Block {
    uint32_t arch;
    int max_nr;
  };
  std::vector<Block> blocks;
  for (uint32_t arch : arches) {
    if (arch == SCMP_ARCH_X32) continue;  // checked by the libseccomp program, see below
    int max_nr = -1;
    for (const auto& r : p.rules)
      for (const auto& n : r.names)
        max_nr = std::max(max_nr, seccomp_syscall_resolve_name_arch(arch, n.c_str()));
    if (max_nr >= 0) blocks.push_back({arch, max_nr});
  }
  if (blocks.empty()) return {};
  // Layout: ld arch; one jeq per block; ja program; the blocks; ret ENOSYS; (program).
  size_t block_len = 0;
  for (const auto& b : blocks) block_len += b.arch == SCMP_ARCH_X86_64 ? 3 : 2;
  const size_t enosys = 1 + blocks.size() + 1 + block_len;
  const size_t program = enosys + 1;
  auto off = [](size_t from, size_t to) { return static_cast<uint8_t>(to - from - 1); };
  std::vector<sock_filter> out;
  out.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  size_t block_at = 1 + blocks.size() + 1;
  for (const auto& b : blocks) {
    size_t here = out.size();
    out.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, b.arch, off(here, block_at), 0));
    block_at += b.arch == SCMP_ARCH_X86_64 ? 3 : 2;
  }
  out.push_back(BPF_STMT(BPF_JMP | BPF_JA, static_cast<uint32_t>(program - out.size() - 1)));
  for (const auto& b : blocks) {
    out.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
    if (b.arch == SCMP_ARCH_X86_64) {
      // x32 numbers (bit 30 set) are left to libseccomp, which knows that ABI's table.
      size_t here = out.size();
      out.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, kX32SyscallBit, off(here, program), 0));
    }
    size_t here = out.size();
    out.push_back(BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, static_cast<uint32_t>(b.max_nr),
                           off(here, enosys), off(here, program)));
  }
  out.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)));
  return out;
}

Result<std::string> export_bpf(scmp_filter_ctx ctx) {
  UniqueFd fd(::memfd_create("stack-seccomp", MFD_CLOEXEC));
  if (!fd) return fail_errno("memfd_create");
  if (int rc = seccomp_export_bpf(ctx, fd.get()); rc < 0)
    return fail(std::string("seccomp_export_bpf: ") + std::strerror(-rc), -rc);
  off_t size = ::lseek(fd.get(), 0, SEEK_END);
  if (size < 0) return fail_errno("lseek memfd");
  std::string out(static_cast<size_t>(size), '\0');
  if (::pread(fd.get(), out.data(), out.size(), 0) != size) return fail_errno("read memfd");
  return out;
}

}  // namespace

Result<Host> current_host() {
  Host h;
  h.native_arch = seccomp_arch_native();
  utsname u{};
  if (::uname(&u) != 0) return fail_errno("uname");
  auto k = parse_kernel_version(u.release);
  if (!k) return fail(k.error().wrap("kernel release"));
  h.kernel = *k;
  return h;
}

Result<std::string> compile(const Profile& p, uint64_t caps, const Host& host, int optimize) {
  const uint32_t default_action = scmp_action(p.default_action);
  FilterCtx ctx(default_action);
  if (!ctx.get()) return fail("seccomp_init: the default action is not supported by libseccomp");
  // A binary tree of syscall numbers instead of libseccomp's linear list: a syscall the kernel
  // cannot answer from its action cache (an argument rule such as personality(2), or a refused
  // one) runs fewer instructions, for a program ~25% longer (bench_seccomp measures both).
  if (int rc =
          seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, static_cast<uint32_t>(optimize));
      rc < 0)
    return fail(std::string("seccomp optimize level: ") + std::strerror(-rc), -rc);
  const std::vector<uint32_t> arches = filter_arches(p, host);
  for (uint32_t a : arches)
    if (int rc = seccomp_arch_add(ctx.get(), a); rc < 0 && rc != -EEXIST)
      return fail(std::string("add architecture: ") + std::strerror(-rc), -rc);
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const Rule& r = p.rules[i];
    if (!applies(r, caps, host)) continue;
    uint32_t action = scmp_action(r.action);
    if (action == default_action) continue;  // libseccomp refuses it (EACCES); runc skips it too
    if (auto res = add_rule(ctx.get(), action, r); !res)
      return fail(res.error().wrap("syscalls[" + std::to_string(i) + "]"));
  }
  std::string program = STACK_TRY_CTX(export_bpf(ctx.get()), "compile seccomp filter");
  if (denies_by_default(p.default_action)) {
    auto prefix = enosys_prefix(p, arches);
    program.insert(0, reinterpret_cast<const char*>(prefix.data()),
                   prefix.size() * sizeof(sock_filter));
  }
  if (program.size() % sizeof(sock_filter) != 0 || program.empty())
    return fail("compile seccomp filter: libseccomp returned a malformed program");
  if (program.size() / sizeof(sock_filter) > BPF_MAXINSNS)
    return fail("compile seccomp filter: " + std::to_string(program.size() / sizeof(sock_filter)) +
                " instructions, the kernel accepts at most " + std::to_string(BPF_MAXINSNS));
  return program;
}

}  // namespace stack::engine::seccomp
