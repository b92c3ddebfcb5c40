// `stackd`: the daemon's main. The long-lived reconciler and its API on one io_context; the
// CLI execs it (`stack daemon`) or starts it when no daemon answers. Under systemd it speaks
// sd_notify: READY=1 once running containers are re-adopted, STATUS= lines, WATCHDOG=1 from the
// event loop, STOPPING=1, and logs to journald. Options come from flags, then the environment,
// then /etc/stack/daemon.json, then the defaults. Stopping the daemon never stops a container.
// Root only.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <thread>

#include "api/server.h"
#include "build/build.h"
#include "cluster/node_agent.h"
#include "cmd/cluster_join.h"
#include "cmd/journal_sink.h"
#include "common/daemon_config.h"
#include "common/instance.h"
#include "common/log.h"
#include "common/unique_fd.h"
#include "engine/cgroup.h"
#include "engine/container.h"
#include "reconciler/async.h"
#include "reconciler/controller.h"
#include "reconciler/daemon.h"

namespace {

using namespace stack;
namespace asio = boost::asio;

struct Flags {
  std::string root = kDefaultRoot;
  std::string run_root = "/run/stack";
  std::string log_level = "info";
  std::string stacks_dir = "/etc/stack/stacks.d";
  double resync = 5;
  std::string userns_remap;
  std::string userns_layers = "auto";
  std::string log_max_size = "10m";
  int log_max_file = 3;
  std::string registries_config;  // "": $STACK_REGISTRIES_CONFIG, else /etc/stack/registries.json
  // The cluster: etcd URLs (empty: not in a cluster), this node's name and address, TLS files.
  std::vector<std::string> cluster;
  std::string node_name;  // "": the hostname
  std::string advertise;  // "": the source address of the default route
  std::string cluster_ca, cluster_cert, cluster_key;
  std::string ingress_subnet;  // "": reconciler/cluster_ingress.h's kIngressSubnet
};

// stack-init next to this program (the build tree, libexec/stack), else ../libexec/stack.
std::filesystem::path find_init() {
  if (const char* e = std::getenv("STACK_INIT"); e && *e) return e;
  auto dir = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  for (auto p : {dir / "stack-init", dir / "../libexec/stack/stack-init"})
    if (::access(p.c_str(), X_OK) == 0) return std::filesystem::weakly_canonical(p);
  return dir / "stack-init";
}

// Sends WATCHDOG=1 at half the interval systemd asks for: from the loop, so a stuck loop
// is what the watchdog catches.
asio::awaitable<void> watchdog(uint64_t usec) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  for (;;) {
    t.expires_after(std::chrono::microseconds(usec / 2));
    co_await t.async_wait(reconciler::no_throw);
    sd_notify(0, "WATCHDOG=1");
  }
}

// Adoption first, then the API: a client never sees a daemon that does not yet know what runs.
asio::awaitable<void> start(asio::io_context* io, reconciler::Daemon* daemon, api::Server* server,
                            int* exit_code) {
  auto log = log::get("reconciler");
  auto adopted = co_await daemon->start();
  if (!adopted) {
    log->error("start: {}", adopted.error().message);
    *exit_code = 1;
    io->stop();
    co_return;
  }
  if (auto r = server->listen(); !r) {
    log->error("{}", r.error().message);
    *exit_code = 1;
    io->stop();
    co_return;
  }
  log->info("ready pid={} root={} adopted={}", ::getpid(), daemon->paths().root.string(), *adopted);
  // After adoption: the first view of the assignments is planned against what runs.
  daemon->start_cluster();
  std::string status =
      "READY=1\nSTATUS=running, " + std::to_string(*adopted) + " container(s) adopted";
  // Not fatal: adopted containers are still supervised and can be stopped. But every start
  // would fail, so say why once, here and in `systemctl status`.
  if (auto w = daemon->controller().engine().cgroups().check_writable(); !w) {
    log->error(
        "containers cannot start: {} (inside a container manager such as systemd-nspawn, "
        "its cgroup hierarchies must be delegated read-write)",
        w.error().message);
    status += "; containers cannot start: " + w.error().message;
  }
  sd_notify(0, status.c_str());
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0) asio::co_spawn(*io, watchdog(usec), asio::detached);
}

int run_daemon(const Flags& flags) {
  log::setup(flags.log_level, journal_wanted() ? make_journal_sink() : nullptr);
  auto log = log::get("reconciler");
  if (::geteuid() != 0) {
    std::fprintf(stderr, "stackd: needs root (namespaces, mounts, cgroups)\n");
    return 1;
  }
  ::signal(SIGPIPE, SIG_IGN);  // a client that goes away is an error code, not our death
  // A descriptor per container (pidfd), per API client (up to 256), per DNS socket and inotify
  // watch: the soft limit of 1024 is not enough for a busy host. Containers inherit it, as
  // Docker's do from dockerd; a service's `ulimits` set its own.
  if (rlimit lim{}; ::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  std::filesystem::path run_root = flags.run_root;
  std::error_code ec;
  std::filesystem::create_directories(run_root, ec);
  // One daemon per run root: the lock dies with its holder, even on SIGKILL. A daemon that
  // was just asked to stop may still hold it for a moment: wait a little before giving up.
  UniqueFd lock(::open((run_root / "daemon.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  bool locked = false;
  for (int i = 0; lock && i < 300 && !locked; i++) {
    locked = ::flock(lock.get(), LOCK_EX | LOCK_NB) == 0;
    if (!locked) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!locked) {
    std::fprintf(stderr, "stackd: another daemon already serves %s\n", run_root.c_str());
    return 1;
  }
  reconciler::Paths paths{flags.root, run_root, find_init(), ""};
  if (!flags.userns_remap.empty()) {
    // Checked now: a daemon told to remap that cannot would start containers as host root.
    if (auto ids = engine::subordinate_ids(flags.userns_remap); !ids) {
      std::fprintf(stderr, "stackd: --userns-remap: %s\n", ids.error().message.c_str());
      return 1;
    }
    paths.userns_remap = flags.userns_remap;
  }
  paths.userns_layers = flags.userns_layers;
  paths.log_max_size = *parse_log_size(flags.log_max_size);  // checked when parsed
  paths.log_max_files = flags.log_max_file;
  if (::access(paths.init_binary.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "stackd: container init not found at %s\n", paths.init_binary.c_str());
    return 1;
  }
  // The cluster first: a name another daemon holds stops this one before it serves. An
  // unreachable etcd does not: the agent keeps trying while containers run.
  std::unique_ptr<cluster::NodeAgent> agent;
  if (!flags.cluster.empty()) {
    cmd::ClusterFlags cf{flags.cluster,    flags.node_name,    flags.advertise,
                         flags.cluster_ca, flags.cluster_cert, flags.cluster_key};
    auto joined = cmd::join_cluster(cf, run_root);
    if (!joined) {
      std::fprintf(stderr, "stackd: --cluster: %s\n", joined.error().message.c_str());
      return 1;
    }
    agent = std::move(*joined);
  }
  asio::io_context io;
  reconciler::DaemonOptions options;
  options.stacks_dir = flags.stacks_dir;
  options.ingress_subnet = flags.ingress_subnet;
  options.resync_interval = std::chrono::milliseconds(static_cast<int64_t>(flags.resync * 1000));
  options.builder = [](const build::BuildRequest& r, build::BuildHost& h, const build::Progress& p) {
    return build::build(r, h, p);
  };
  reconciler::Daemon daemon(io, paths, options);
  daemon.cluster_agent = agent.get();
  if (agent) agent->start();
  api::Server server(io, daemon, run_root / "stack.sock");
  auto stop = [&] {
    sd_notify(0, "STOPPING=1\nSTATUS=stopping (containers keep running)");
    log->info("stopping; containers keep running");
    daemon.shutdown();
    server.close();
    io.stop();
  };
  daemon.on_shutdown_request = [&] { asio::post(io, stop); };
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](boost::system::error_code e, int) {
    if (!e) stop();
  });
  int exit_code = 0;
  asio::co_spawn(io, start(&io, &daemon, &server, &exit_code), asio::detached);
  io.run();
  // Stopped on purpose: leave the cluster now rather than after the lease's TTL.
  if (agent) agent->stop(true);
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "stackd: the stack daemon. Reconciles the registered stacks and serves the API on "
      "<run-root>/stack.sock. Usually started as `stack daemon`, or by the CLI when no "
      "daemon answers.",
      "stackd"};
  Flags flags;
  std::string config_path = daemon_config_path();
  app.add_option("--config", config_path,
                 "Options as JSON, each key a long flag of this command (env "
                 "STACK_DAEMON_CONFIG); flags and STACK_ROOT/STACK_RUN_ROOT override it")
      ->capture_default_str();
  app.add_option("--root", flags.root, "State, images and containers (env STACK_ROOT)")
      ->capture_default_str();
  app.add_option("--run-root", flags.run_root,
                 "Runtime files and the API socket (env "
                 "STACK_RUN_ROOT)")
      ->capture_default_str();
  app.add_option("--log-level", flags.log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--stacks-dir", flags.stacks_dir, "Stack files reconciled continuously")
      ->capture_default_str();
  app.add_option("--resync", flags.resync, "Seconds between full re-plans of every project")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0));
  app.add_option("--userns-remap", flags.userns_remap,
                 "Run containers in user namespaces: their root is USER's first subordinate uid "
                 "and gid (/etc/subuid, /etc/subgid); a service opts out with userns_mode: host");
  app.add_option("--userns-layers", flags.userns_layers,
                 "How image layers become a user namespace's: auto (idmapped mounts where the "
                 "filesystem takes them, else shifted copies), idmap, or copy (made once per "
                 "mapping and layer under ROOT/userns-layers)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "idmap", "copy"}));
  app.add_option("--log-max-size", flags.log_max_size,
                 "Log rotation size of a service whose logging.options set none (10m, 512k, 1g)")
      ->capture_default_str()
      ->check([](const std::string& v) {
        return parse_log_size(v) ? std::string() : "not a size such as 10m: " + v;
      });
  app.add_option("--registries-config", flags.registries_config,
                 "Registry mirrors, insecure and blocked registries (JSON; default "
                 "$STACK_REGISTRIES_CONFIG, else /etc/stack/registries.json)");
  app.add_option("--cluster", flags.cluster,
                 "Join the cluster whose etcd answers at these client URLs (comma-separated or "
                 "repeated; http:// or https://)")
      ->delimiter(',');
  app.add_option("--node-name", flags.node_name,
                 "This node's name in the cluster (default: the hostname)")
      ->check([](const std::string& v) {
        auto ok = check_node_name(v);
        return ok ? std::string() : ok.error().message;
      });
  app.add_option("--advertise", flags.advertise,
                 "The IPv4 address other nodes reach this one at (default: the source address "
                 "of the default route)")
      ->check(CLI::ValidIPV4);
  app.add_option("--cluster-ca", flags.cluster_ca, "CA certificate (PEM) that etcd's certificate "
                                                   "must chain to");
  app.add_option("--cluster-cert", flags.cluster_cert,
                 "Client certificate (PEM) presented to etcd, with --cluster-key");
  app.add_option("--cluster-key", flags.cluster_key, "Private key (PEM) of --cluster-cert");
  app.add_option("--ingress-subnet", flags.ingress_subnet,
                 "The cluster's ingress network (the routing mesh's), proposed by this node's "
                 "first up; the first recorded stays (default 10.127.0.0/16)")
      ->check([](const std::string& v) {
        auto ok = check_ingress_subnet(v);
        return ok ? std::string() : ok.error().message;
      });
  app.add_option("--log-max-file", flags.log_max_file,
                 "Log files kept of a service whose logging.options set none")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);  // prints help, or the message
    return code == 0 ? 0 : 2;
  }
  auto config = load_daemon_config(config_path);
  if (!config) {
    std::fprintf(stderr, "stackd: %s\n", config.error().message.c_str());
    return 2;
  }
  // A flag given wins; then the environment (roots only); then the file.
  auto unset = [&](const char* flag) { return app.get_option(flag)->count() == 0; };
  auto take = [&](const char* flag, auto& field, const auto& value) {
    if (value && unset(flag)) field = *value;
  };
  take("--root", flags.root, config->root);
  take("--run-root", flags.run_root, config->run_root);
  take("--stacks-dir", flags.stacks_dir, config->stacks_dir);
  take("--resync", flags.resync, config->resync);
  take("--log-level", flags.log_level, config->log_level);
  take("--userns-remap", flags.userns_remap, config->userns_remap);
  take("--userns-layers", flags.userns_layers, config->userns_layers);
  if (config->log_max_size && unset("--log-max-size"))
    flags.log_max_size = std::to_string(*config->log_max_size);
  take("--log-max-file", flags.log_max_file, config->log_max_file);
  if (config->cluster && unset("--cluster")) flags.cluster = *config->cluster;
  take("--node-name", flags.node_name, config->node_name);
  take("--advertise", flags.advertise, config->advertise);
  take("--cluster-ca", flags.cluster_ca, config->cluster_ca);
  take("--cluster-cert", flags.cluster_cert, config->cluster_cert);
  take("--cluster-key", flags.cluster_key, config->cluster_key);
  take("--ingress-subnet", flags.ingress_subnet, config->ingress_subnet);
  if (!flags.cluster.empty()) {
    auto urls = parse_cluster_urls(flags.cluster);
    if (!urls) {
      std::fprintf(stderr, "stackd: --cluster: %s\n", urls.error().message.c_str());
      return 2;
    }
    flags.cluster = *urls;
  }
  if (flags.cluster_cert.empty() != flags.cluster_key.empty()) {
    std::fprintf(stderr, "stackd: --cluster-cert and --cluster-key go together\n");
    return 2;
  }
  if (flags.cluster.empty() && (!flags.node_name.empty() || !flags.advertise.empty() ||
                                !flags.cluster_ca.empty() || !flags.cluster_cert.empty() ||
                                !flags.ingress_subnet.empty())) {
    std::fprintf(stderr, "stackd: --node-name, --advertise, --ingress-subnet and the --cluster-* "
                         "files need --cluster URLS\n");
    return 2;
  }
  const char* env_registries = std::getenv("STACK_REGISTRIES_CONFIG");
  if (!env_registries || !*env_registries)  // as the roots: the environment wins over the file
    take("--registries-config", flags.registries_config, config->registries_config);
  // The pulls read it where fs/pull.h looks: this process's environment, set once here.
  if (!flags.registries_config.empty())
    ::setenv("STACK_REGISTRIES_CONFIG", flags.registries_config.c_str(), 1);
  const char* env_root = std::getenv("STACK_ROOT");
  const char* env_run = std::getenv("STACK_RUN_ROOT");
  if (env_root && *env_root && unset("--root")) flags.root = env_root;
  if (env_run && *env_run && unset("--run-root")) flags.run_root = env_run;
  return run_daemon(flags);
}
