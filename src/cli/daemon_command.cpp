// `stack daemon [ARGS]`: execs `stackd` (the daemon is a program of its own, so the CLI maps
// none of its libraries) with the global flags and ARGS; the process stays the same, so a
// systemd unit with `ExecStart=stack daemon` and Type=notify keeps its main PID. `stack daemon
// stop` asks the running daemon to end; containers keep running.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/cli.h"
#include "common/files.h"

namespace stack::cli {

namespace {

struct DaemonFlags {
  std::string stacks_dir;
  std::string resync;
  std::string userns_remap;
  std::string userns_layers;
  std::string log_max_size;
  std::string log_max_file;
  std::string registries_config;
  std::vector<std::string> cluster;
  std::string node_name, advertise, cluster_ca, cluster_cert, cluster_key, ingress_subnet;
};

[[noreturn]] void exec_daemon(const DaemonFlags& flags) {
  auto binary = daemon_binary();
  std::vector<std::string> args = {binary.string()};
  for (const auto& a : daemon_global_args()) args.push_back(a);
  if (!flags.stacks_dir.empty()) args.insert(args.end(), {"--stacks-dir", flags.stacks_dir});
  if (!flags.resync.empty()) args.insert(args.end(), {"--resync", flags.resync});
  if (!flags.userns_remap.empty()) args.insert(args.end(), {"--userns-remap", flags.userns_remap});
  if (!flags.userns_layers.empty()) args.insert(args.end(), {"--userns-layers", flags.userns_layers});
  if (!flags.log_max_size.empty()) args.insert(args.end(), {"--log-max-size", flags.log_max_size});
  if (!flags.log_max_file.empty()) args.insert(args.end(), {"--log-max-file", flags.log_max_file});
  if (!flags.registries_config.empty())
    args.insert(args.end(), {"--registries-config", flags.registries_config});
  for (const auto& url : flags.cluster) args.insert(args.end(), {"--cluster", url});
  for (auto [flag, value] : {std::pair{"--node-name", &flags.node_name},
                             {"--advertise", &flags.advertise},
                             {"--cluster-ca", &flags.cluster_ca},
                             {"--cluster-cert", &flags.cluster_cert},
                             {"--cluster-key", &flags.cluster_key},
                             {"--ingress-subnet", &flags.ingress_subnet}})
    if (!value->empty()) args.insert(args.end(), {flag, *value});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  ::execv(argv[0], argv.data());
  std::fprintf(stderr, "stack daemon: cannot run %s: %s\n", argv[0], std::strerror(errno));
  throw ExitCode{1};
}

void stop_daemon() {
  api::Client client(std::filesystem::path(globals().run_root) / "stack.sock");
  auto version = client.call("GET", "/v1/version");
  if (!version || version->status != 200) return;  // none runs
  int pid = nlohmann::json::parse(version->body, nullptr, false).value("pid", 0);
  (void)client.call("POST", "/v1/shutdown");
  // Gone when its process is (a zombie waiting for its reaper counts as gone): then its lock
  // and socket are free for the next one.
  auto running = [pid] {
    if (pid <= 0 || ::kill(pid, 0) != 0) return false;
    auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    auto paren = stat ? stat->rfind(')') : std::string::npos;
    return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] != 'Z';
  };
  for (int i = 0; i < 1000 && running(); i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

}  // namespace

void add_daemon_command(CLI::App& app) {
  auto* daemon = app.add_subcommand("daemon",
                                    "Run the reconciler daemon in the foreground (execs "
                                    "stackd; options from /etc/stack/daemon.json, which these "
                                    "flags override; the CLI starts one when none answers)");
  static DaemonFlags flags;
  // Checked by stackd, which prints its own message; passed on as written.
  daemon->add_option("--stacks-dir", flags.stacks_dir,
                     "Stack files reconciled continuously (default /etc/stack/stacks.d)");
  daemon->add_option("--resync", flags.resync,
                     "Seconds between full re-plans of every project (default 5)");
  daemon->add_option("--log-max-size", flags.log_max_size,
                     "Log rotation size of a service whose logging.options set none (default 10m)");
  daemon->add_option("--registries-config", flags.registries_config,
                     "Registry mirrors, insecure and blocked registries (default "
                     "/etc/stack/registries.json)");
  daemon->add_option("--log-max-file", flags.log_max_file,
                     "Log files kept of a service whose logging.options set none (default 3)");
  daemon->add_option("--userns-remap", flags.userns_remap,
                     "Run containers in user namespaces: their root is USER's first subordinate "
                     "uid and gid (/etc/subuid, /etc/subgid); a service opts out with "
                     "userns_mode: host");
  daemon->add_option("--userns-layers", flags.userns_layers,
                     "How image layers become a user namespace's: auto (default), idmap or copy");
  daemon->add_option("--cluster", flags.cluster,
                     "Join the cluster whose etcd answers at these client URLs "
                     "(http://10.0.0.5:2379,...)");
  daemon->add_option("--node-name", flags.node_name,
                     "This node's name in the cluster (default: the hostname)");
  daemon->add_option("--advertise", flags.advertise,
                     "The IPv4 address other nodes reach this one at (default: the source "
                     "address of the default route)");
  daemon->add_option("--cluster-ca", flags.cluster_ca, "CA certificate (PEM) for etcd");
  daemon->add_option("--cluster-cert", flags.cluster_cert,
                     "Client certificate (PEM) presented to etcd, with --cluster-key");
  daemon->add_option("--cluster-key", flags.cluster_key, "Private key (PEM) of --cluster-cert");
  daemon->add_option("--ingress-subnet", flags.ingress_subnet,
                     "The cluster's ingress network (the routing mesh's) subnet, proposed by "
                     "this node's first up (default 10.127.0.0/16)");
  auto* stop = daemon->add_subcommand("stop", "Stop the daemon; containers keep running");
  stop->callback(stop_daemon);
  daemon->callback([daemon] {
    if (daemon->got_subcommand("stop")) return;
    exec_daemon(flags);
  });
}

}  // namespace stack::cli
