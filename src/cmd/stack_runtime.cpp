// stack-runtime: the engine as an OCI runtime, with the command line runc and crun share
// (what podman's conmon and containerd's shim call). Parses flags, calls src/runtime, prints
// results; every error goes to stderr and, with --log, to that file in --log-format (text or
// json: where podman and containerd read it).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace {

using stack::Result;

struct Global {
  std::string root = "/run/stack-runtime";
  std::string log;
  std::string log_format = "text";
  bool systemd_cgroup = false;
};

Global g;

std::string now_rfc3339() {
  time_t t = time(nullptr);
  tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void log_line(const char* level, const std::string& msg) {
  if (g.log.empty()) return;
  FILE* f = std::fopen(g.log.c_str(), "ae");
  if (!f) return;
  if (g.log_format == "json")
    std::fprintf(f, "%s\n",
                 nlohmann::json{{"level", level}, {"msg", msg}, {"time", now_rfc3339()}}
                     .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                     .c_str());
  else
    std::fprintf(f, "time=\"%s\" level=%s msg=\"%s\"\n", now_rfc3339().c_str(), level,
                 msg.c_str());
  std::fclose(f);
}

int error(const std::string& msg) {
  log_line("error", msg);
  std::fprintf(stderr, "stack-runtime: %s\n", msg.c_str());
  return 1;
}

// With --log (conmon, containerd) a warning goes there only: the caller shows stderr as the
// container's failure.
void warn(const std::string& msg) {
  if (!g.log.empty()) return log_line("warning", msg);
  std::fprintf(stderr, "stack-runtime: warning: %s\n", msg.c_str());
}

// stack-init next to this program (the build tree), else ../libexec/stack.
std::filesystem::path find_init() {
  if (const char* e = std::getenv("STACK_INIT"); e && *e) return e;
  auto dir = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  for (auto p : {dir / "stack-init", dir / "../libexec/stack/stack-init"})
    if (::access(p.c_str(), X_OK) == 0) return std::filesystem::weakly_canonical(p);
  return dir / "stack-init";
}

const char* kUsage =
    "usage: stack-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...\n"
    "commands:\n"
    "  create [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] ID   start ID   state ID\n"
    "  kill ID [SIGNAL] [--all]   delete [--force|-f] ID\n"
    "  run [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] [--detach] ID\n"
    "  pause ID   resume ID\n"
    "  update [--resources FILE|-] [--memory N] [--memory-reservation N] [--memory-swap N]\n"
    "         [--cpu-period N] [--cpu-quota N] [--cpu-share N] [--cpuset-cpus S] [--pids-limit N]\n"
    "         ID\n"
    "  exec [--process FILE] [--tty] [--console-socket SOCK] [--detach] [--pid-file FILE]\n"
    "       ID [CMD...]\n"
    "  list [--format table|json]   ps [--format table|json] ID   features   --version\n";

// runc update's flags (the limits podman and containerd pass), each a member of the runtime
// spec's linux.resources.
bool is_update_flag(const std::string& f) {
  for (const char* k : {"--memory", "--memory-reservation", "--memory-swap", "--kernel-memory",
                        "--kernel-memory-tcp", "--cpu-period", "--cpu-quota", "--cpu-share",
                        "--cpu-rt-period", "--cpu-rt-runtime", "--cpuset-cpus", "--cpuset-mems",
                        "--pids-limit", "--blkio-weight", "--l3-cache-schema", "--mem-bw-schema"})
    if (f == k) return true;
  return false;
}

// "512m", "1g", "1048576", "-1": bytes (binary units, as runc reads them).
Result<int64_t> bytes(const std::string& flag, const std::string& v) {
  size_t used = 0;
  int64_t n = 0;
  try {
    n = std::stoll(v, &used);
  } catch (...) {
    return stack::fail(flag + ": \"" + v + "\" is not a number");
  }
  std::string unit = v.substr(used);
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!unit.empty() && unit.back() == 'b') unit.pop_back();
  int shift = unit.empty() ? 0 : unit == "k" ? 10 : unit == "m" ? 20 : unit == "g" ? 30 : -1;
  if (shift < 0) return stack::fail(flag + ": \"" + v + "\" is not a size");
  return n < 0 ? n : n << shift;
}

// A command's own flags and operands: "--flag value", "--flag=value", booleans.
struct Args {
  std::vector<std::string> operands;
  std::string resources;                                   // update --resources FILE ("-": stdin)
  std::vector<std::pair<std::string, std::string>> limits;  // update's runc flags, in order
  std::string bundle = ".", pid_file, console_socket, format = "table", process;
  bool force = false, all = false, detach = false, tty = false;
  int preserve_fds = 0;
};

// CMD's flags: "-f" is delete's --force, as in runc, and --format elsewhere (state, list).
Result<Args> parse_args(const std::vector<std::string>& v, const std::string& cmd) {
  bool exec_args = cmd == "exec";
  Args a;
  for (size_t i = 0; i < v.size(); i++) {
    std::string arg = v[i], value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto take = [&]() -> Result<std::string> {
      if (has_value) return value;
      if (i + 1 >= v.size()) return stack::fail(arg + " needs a value");
      return v[++i];
    };
    auto set = [&](std::string& out) -> Result<void> {
      auto t = take();
      if (!t) return stack::fail(t.error());
      out = *t;
      return {};
    };
    Result<void> r;
    if (arg == "--bundle" || arg == "-b") r = set(a.bundle);
    else if (arg == "--pid-file") r = set(a.pid_file);
    else if (arg == "--console-socket") r = set(a.console_socket);
    else if (arg == "--force" || (arg == "-f" && cmd == "delete")) a.force = true;
    else if (arg == "--format" || arg == "-f") r = set(a.format);
    else if (arg == "--process" || arg == "-p") r = set(a.process);
    else if (arg == "--tty" || arg == "-t") a.tty = true;
    else if (arg == "--resources" || arg == "-r") r = set(a.resources);
    else if (is_update_flag(arg)) {
      std::string v;
      r = set(v);
      a.limits.emplace_back(arg, v);
    }
    else if (arg == "--preserve-fds") {
      std::string n;
      r = set(n);
      if (r) a.preserve_fds = std::atoi(n.c_str());
    } else if (arg == "--all" || arg == "-a") a.all = true;
    else if (arg == "--detach" || arg == "-d") a.detach = true;
    else if (arg == "--no-pivot" || arg == "--no-new-keyring" || arg == "--keep") continue;
    else if (arg.size() > 1 && arg[0] == '-') return stack::fail("unknown flag " + arg);
    else {
      a.operands.push_back(arg);
      // exec ID CMD ARGS...: what follows the command is its own, flags included.
      if (exec_args && a.operands.size() == 2) {
        a.operands.insert(a.operands.end(), v.begin() + static_cast<long>(i) + 1, v.end());
        break;
      }
    }
    if (!r) return stack::fail(r.error());
  }
  return a;
}

// update's flags as the resources object they stand for; members not expressible are named
// by parse_resources (blockIO, ...) and refused there.
Result<nlohmann::json> resources_from_flags(const Args& a) {
  nlohmann::json r = nlohmann::json::object();
  for (const auto& [flag, v] : a.limits) {
    auto number = [&]() -> Result<int64_t> { return bytes(flag, v); };
    Result<int64_t> n = 0;
    if (flag == "--memory") { if ((n = number())) r["memory"]["limit"] = *n; }
    else if (flag == "--memory-reservation") { if ((n = number())) r["memory"]["reservation"] = *n; }
    else if (flag == "--memory-swap") { if ((n = number())) r["memory"]["swap"] = *n; }
    else if (flag == "--kernel-memory") { if ((n = number())) r["memory"]["kernel"] = *n; }
    else if (flag == "--kernel-memory-tcp") { if ((n = number())) r["memory"]["kernelTCP"] = *n; }
    else if (flag == "--cpu-period") { if ((n = number())) r["cpu"]["period"] = *n; }
    else if (flag == "--cpu-quota") { if ((n = number())) r["cpu"]["quota"] = *n; }
    else if (flag == "--cpu-share") { if ((n = number())) r["cpu"]["shares"] = *n; }
    else if (flag == "--cpu-rt-period") { if ((n = number())) r["cpu"]["realtimePeriod"] = *n; }
    else if (flag == "--cpu-rt-runtime") { if ((n = number())) r["cpu"]["realtimeRuntime"] = *n; }
    else if (flag == "--cpuset-cpus") r["cpu"]["cpus"] = v;
    else if (flag == "--cpuset-mems") r["cpu"]["mems"] = v;
    else if (flag == "--pids-limit") { if ((n = number())) r["pids"]["limit"] = *n; }
    else if (flag == "--blkio-weight") { if ((n = number())) r["blockIO"]["weight"] = *n; }
    else return stack::fail(flag + ": Intel RDT is not supported");
    if (!n) return stack::fail(n.error());
  }
  return r;
}

Result<std::string> one_id(const Args& a, const char* cmd, size_t max_operands = 1) {
  if (a.operands.empty()) return stack::fail(std::string(cmd) + ": a container id is required");
  if (a.operands.size() > max_operands)
    return stack::fail(std::string(cmd) + ": unexpected operand " + a.operands.back());
  return a.operands[0];
}

Result<void> check_create_flags(const Args& a) {
  if (a.preserve_fds != 0) return stack::fail("--preserve-fds: not supported");
  return {};
}

int dispatch(const std::string& cmd, const std::vector<std::string>& rest) {
  auto parsed = parse_args(rest, cmd);
  if (!parsed) return error(cmd + ": " + parsed.error().message);
  const Args& a = *parsed;
  stack::runtime::Runtime rt(g.root, find_init(), warn);
  stack::runtime::CreateOptions co{a.bundle, a.pid_file, a.console_socket};
  auto done = [](const Result<void>& r) { return r ? 0 : error(r.error().message); };
  if (cmd == "features") {
    std::printf("%s\n", stack::runtime::features_json().c_str());
    return 0;
  }
  if (cmd == "list") {
    auto l = rt.list();
    if (!l) return error(l.error().message);
    if (a.format == "json") {
      std::printf("%s\n", l->c_str());
      return 0;
    }
    std::printf("%-24s %-8s %-10s %-40s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
    for (const auto& s : nlohmann::json::parse(*l))
      std::printf("%-24s %-8d %-10s %-40s %s\n", s["id"].get<std::string>().c_str(),
                  s["pid"].get<int>(), s["status"].get<std::string>().c_str(),
                  s["bundle"].get<std::string>().c_str(), s["created"].get<std::string>().c_str());
    return 0;
  }
  auto id = one_id(a, cmd.c_str(), cmd == "kill" ? 2 : cmd == "exec" ? SIZE_MAX : 1);
  if (!id) return error(id.error().message);
  if (cmd == "create") {
    if (auto r = check_create_flags(a); !r) return error(r.error().message);
    return done(rt.create(*id, co));
  }
  if (cmd == "run") {
    if (auto r = check_create_flags(a); !r) return error(r.error().message);
    auto code = rt.run(*id, co, a.detach);
    return code ? *code : error(code.error().message);
  }
  if (cmd == "exec") {
    if (a.preserve_fds != 0) return error("exec: --preserve-fds is not supported");
    std::vector<std::string> cmdline(a.operands.begin() + 1, a.operands.end());
    auto code = rt.exec(*id, a.process, cmdline, {a.detach, a.pid_file, a.tty, a.console_socket});
    return code ? *code : error(code.error().message);
  }
  if (cmd == "start") return done(rt.start(*id));
  if (cmd == "update") {
    std::string resources;
    if (!a.resources.empty()) {
      if (!a.limits.empty()) return error("update: --resources and limit flags together");
      std::ifstream in;
      std::istream* is = &std::cin;
      if (a.resources != "-") {
        in.open(a.resources);
        if (!in) return error("update: cannot read " + a.resources);
        is = &in;
      }
      resources.assign(std::istreambuf_iterator<char>(*is), {});
    } else {
      auto r = resources_from_flags(a);
      if (!r) return error("update: " + r.error().message);
      resources = r->dump();
    }
    return done(rt.update(*id, resources));
  }
  if (cmd == "pause" || cmd == "resume") return done(rt.freeze(*id, cmd == "pause"));
  if (cmd == "delete") return done(rt.remove(*id, a.force));
  if (cmd == "kill") {
    auto sig = stack::runtime::parse_signal(a.operands.size() > 1 ? a.operands[1] : "SIGTERM");
    if (!sig) return error(sig.error().message);
    return done(rt.kill(*id, *sig, a.all));
  }
  if (cmd == "state") {
    auto s = rt.state(*id);
    if (!s) return error(s.error().message);
    std::printf("%s\n", s->c_str());
    return 0;
  }
  if (cmd == "ps") {
    auto p = rt.pids(*id);
    if (!p) return error(p.error().message);
    if (a.format == "json") {
      std::printf("%s\n", nlohmann::json(*p).dump().c_str());
    } else {
      std::printf("PID\n");
      for (int pid : *p) std::printf("%d\n", pid);
    }
    return 0;
  }
  return error("unknown command \"" + cmd + "\" (" + std::string(kUsage) + ")");
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  ::umask(022);
  std::vector<std::string> args(argv + 1, argv + argc);
  size_t i = 0;
  for (; i < args.size(); i++) {
    std::string arg = args[i], value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto take = [&](std::string& out) {
      if (has_value) out = value;
      else if (i + 1 < args.size()) out = args[++i];
      else return false;
      return true;
    };
    if (arg == "--version" || arg == "-v") {
      std::printf("stack-runtime version %s\nspec: 1.1.0\n", STACK_VERSION);
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::printf("%s", kUsage);
      return 0;
    } else if (arg == "--root") {
      if (!take(g.root)) return error("--root needs a value");
    } else if (arg == "--log") {
      if (!take(g.log)) return error("--log needs a value");
    } else if (arg == "--log-format") {
      if (!take(g.log_format)) return error("--log-format needs a value");
      if (g.log_format != "text" && g.log_format != "json")
        return error("--log-format: \"" + g.log_format + "\" is not text or json");
    } else if (arg == "--systemd-cgroup") {
      g.systemd_cgroup = true;
    } else if (arg == "--debug") {
      continue;
    } else if (arg.size() > 1 && arg[0] == '-') {
      return error("unknown global flag " + arg);
    } else {
      break;
    }
  }
  if (g.systemd_cgroup)
    return error("--systemd-cgroup: cgroups through systemd are not supported (stack-runtime "
                 "manages cgroupfs itself); use the cgroupfs manager");
  if (i >= args.size()) {
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  }
  if (::geteuid() != 0) return error("must run as root");
  std::string cmd = args[i];
  return dispatch(cmd, std::vector<std::string>(args.begin() + i + 1, args.end()));
}
