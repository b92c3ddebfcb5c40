// The device cgroup's rules, and their cgroup v2 form: a BPF_PROG_TYPE_CGROUP_DEVICE program
// built from the rules (as runc's devicefilter does) and attached to the container's cgroup2
// directory. Root on the host; the only file of the engine that calls bpf(2).
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "common/unique_fd.h"
#include "engine/cgroup.h"

namespace stack::engine {

std::string device_rule_text(const DeviceRule& rule) {
  auto num = [](int64_t v) { return v < 0 ? std::string("*") : std::to_string(v); };
  return std::string(1, rule.type) + " " + num(rule.major) + ":" + num(rule.minor) + " " + rule.access;
}

const std::vector<DeviceRule>& default_device_rules() {
  static const std::vector<DeviceRule> rules = {
      {'c', -1, -1, "m"}, {'b', -1, -1, "m"},     // mknod of anything, as Docker
      {'c', 1, 3, "rwm"}, {'c', 1, 5, "rwm"},     // null, zero
      {'c', 1, 7, "rwm"}, {'c', 1, 8, "rwm"},     // full, random
      {'c', 1, 9, "rwm"}, {'c', 5, 0, "rwm"},     // urandom, tty
      {'c', 5, 2, "rwm"}, {'c', 136, -1, "rwm"},  // ptmx, the pts devices
  };
  return rules;
}

namespace {

// include/uapi/linux/bpf.h: struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
// with access_type = (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*.
bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

constexpr uint8_t kLdxW = BPF_LDX | BPF_MEM | BPF_W;
constexpr uint8_t kJneImm = BPF_JMP | BPF_JNE | BPF_K;
constexpr uint8_t kJneReg = BPF_JMP | BPF_JNE | BPF_X;

// The program: r2 = type, r3 = access, r4 = major, r5 = minor; one block per rule that jumps
// to the next block on any mismatch and returns 1 (allow) at its end; 0 (deny) after the last.
std::vector<bpf_insn> device_program(const std::vector<DeviceRule>& rules) {
  std::vector<bpf_insn> p = {
      insn(kLdxW, BPF_REG_2, BPF_REG_1, 0, 0),
      insn(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff),
      insn(kLdxW, BPF_REG_3, BPF_REG_1, 0, 0),
      insn(BPF_ALU64 | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16),
      insn(kLdxW, BPF_REG_4, BPF_REG_1, 4, 0),
      insn(kLdxW, BPF_REG_5, BPF_REG_1, 8, 0),
  };
  for (const auto& r : rules) {
    std::vector<bpf_insn> block;  // jumps hold -1 until the block's length is known
    if (r.type != 'a')
      block.push_back(insn(kJneImm, BPF_REG_2, 0, -1,
                           r.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR));
    int32_t allowed = (r.access.find('m') != std::string::npos ? BPF_DEVCG_ACC_MKNOD : 0) |
                      (r.access.find('r') != std::string::npos ? BPF_DEVCG_ACC_READ : 0) |
                      (r.access.find('w') != std::string::npos ? BPF_DEVCG_ACC_WRITE : 0);
    if (allowed != (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)) {
      // Every access asked for must be allowed: (access & allowed) == access.
      block.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_3, 0, 0));
      block.push_back(insn(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_6, 0, 0, allowed));
      block.push_back(insn(kJneReg, BPF_REG_6, BPF_REG_3, -1, 0));
    }
    if (r.major >= 0)
      block.push_back(insn(kJneImm, BPF_REG_4, 0, -1, static_cast<int32_t>(r.major)));
    if (r.minor >= 0)
      block.push_back(insn(kJneImm, BPF_REG_5, 0, -1, static_cast<int32_t>(r.minor)));
    block.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1));
    block.push_back(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    for (size_t i = 0; i < block.size(); i++)  // to the first instruction after the block
      if (block[i].off == -1) block[i].off = static_cast<int16_t>(block.size() - i - 1);
    p.insert(p.end(), block.begin(), block.end());
  }
  p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0));
  p.push_back(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  return p;
}

long bpf(int cmd, bpf_attr& attr) { return ::syscall(SYS_bpf, cmd, &attr, sizeof attr); }

class BpfDeviceFilter final : public DeviceFilter {
 public:
  Result<void> attach(const std::filesystem::path& dir,
                      const std::vector<DeviceRule>& rules) override {
    const std::string ctx = "device filter on " + dir.string();
    auto prog = device_program(rules);
    static const char kLicense[] = "Apache-2.0";
    bpf_attr load{};
    load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    load.insn_cnt = static_cast<uint32_t>(prog.size());
    load.insns = reinterpret_cast<uint64_t>(prog.data());
    load.license = reinterpret_cast<uint64_t>(kLicense);
    UniqueFd prog_fd(static_cast<int>(bpf(BPF_PROG_LOAD, load)));
    if (!prog_fd) {
      // Again with the verifier's log, for the message (a log that does not fit is ENOSPC:
      // only asked for when the load failed).
      int err = errno;
      static thread_local char log[16384];
      log[0] = 0;
      load.log_buf = reinterpret_cast<uint64_t>(log);
      load.log_size = sizeof log;
      load.log_level = 1;
      UniqueFd again(static_cast<int>(bpf(BPF_PROG_LOAD, load)));
      return fail_errno(ctx + ": load program" + (log[0] ? std::string(" (") + log + ")" : ""),
                        err);
    }
    UniqueFd cg(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cg) return fail_errno(ctx + ": open");
    // ALLOW_MULTI: a program an ancestor holds (a host's own policy) still runs as well; the
    // cgroup keeps ours attached until it is removed, so the descriptor can go.
    bpf_attr at{};
    at.target_fd = static_cast<uint32_t>(cg.get());
    at.attach_bpf_fd = static_cast<uint32_t>(prog_fd.get());
    at.attach_type = BPF_CGROUP_DEVICE;
    at.attach_flags = BPF_F_ALLOW_MULTI;
    if (bpf(BPF_PROG_ATTACH, at) != 0) return fail_errno(ctx + ": attach");
    return {};
  }
};

}  // namespace

std::shared_ptr<DeviceFilter> make_bpf_device_filter() {
  return std::make_shared<BpfDeviceFilter>();
}

}  // namespace stack::engine
