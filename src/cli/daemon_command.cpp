// `stack daemon`: the long-lived reconciler and its API on one io_context. Under systemd it
// speaks sd_notify: READY=1 once running containers are re-adopted, STATUS= lines, WATCHDOG=1
// from the event loop, STOPPING=1. Stopping the daemon never stops a container.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/server.h"
#include "cli/cli.h"
#include "common/files.h"
#include "common/log.h"
#include "common/unique_fd.h"
#include "engine/cgroup.h"
#include "engine/container.h"
#include "reconciler/async.h"
#include "reconciler/controller.h"
#include "reconciler/daemon.h"

#include <spdlog/spdlog.h>

namespace stack::cli {

namespace {

namespace asio = boost::asio;

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
  std::string status =
      "READY=1\nSTATUS=running, " + std::to_string(*adopted) + " container(s) adopted";
  // Not fatal: adopted containers are still supervised and can be stopped. But every start
  // would fail, so say why once, here and in `systemctl status`.
  if (auto w = daemon->controller().engine().cgroups().check_writable(); !w) {
    log->error("containers cannot start: {} (inside a container manager such as systemd-nspawn, "
               "its cgroup hierarchies must be delegated read-write)",
               w.error().message);
    status += "; containers cannot start: " + w.error().message;
  }
  sd_notify(0, status.c_str());
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0) asio::co_spawn(*io, watchdog(usec), asio::detached);
}

int run_daemon(const std::string& stacks_dir, double resync_seconds,
               const std::string& userns_remap, const std::string& userns_layers) {
  log::setup(globals().log_level == "warn" ? "info" : globals().log_level);
  auto log = log::get("reconciler");
  if (::geteuid() != 0) {
    std::fprintf(stderr, "stack daemon: needs root (namespaces, mounts, cgroups)\n");
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
  std::filesystem::path run_root = globals().run_root;
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
    std::fprintf(stderr, "stack daemon: another daemon already serves %s\n", run_root.c_str());
    return 1;
  }
  reconciler::Paths paths{globals().root, run_root, find_init(), ""};
  if (!userns_remap.empty()) {
    // Checked now: a daemon told to remap that cannot would start containers as host root.
    if (auto ids = engine::subordinate_ids(userns_remap); !ids) {
      std::fprintf(stderr, "stack daemon: --userns-remap: %s\n", ids.error().message.c_str());
      return 1;
    }
    paths.userns_remap = userns_remap;
  }
  paths.userns_layers = userns_layers;
  if (::access(paths.init_binary.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "stack daemon: container init not found at %s\n",
                 paths.init_binary.c_str());
    return 1;
  }
  asio::io_context io;
  reconciler::DaemonOptions options;
  options.stacks_dir = stacks_dir;
  options.resync_interval = std::chrono::milliseconds(static_cast<int64_t>(resync_seconds * 1000));
  reconciler::Daemon daemon(io, paths, options);
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
  return exit_code;
}

}  // namespace

void add_daemon_command(CLI::App& app) {
  auto* daemon = app.add_subcommand("daemon", "Run the reconciler daemon (the CLI starts one "
                                              "when none answers)");
  static std::string stacks_dir = "/etc/stack/stacks.d";
  static double resync = 5;
  static std::string userns_remap, userns_layers = "auto";
  daemon->add_option("--stacks-dir", stacks_dir, "Stack files reconciled continuously")
      ->capture_default_str();
  daemon->add_option("--resync", resync, "Seconds between full re-plans of every project")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0));
  daemon->add_option("--userns-remap", userns_remap,
                     "Run containers in user namespaces: their root is USER's first subordinate "
                     "uid and gid (/etc/subuid, /etc/subgid); a service opts out with "
                     "userns_mode: host");
  daemon->add_option("--userns-layers", userns_layers,
                     "How image layers become a user namespace's: auto (idmapped mounts where the "
                     "filesystem takes them, else shifted copies), idmap, or copy (made once per "
                     "mapping and layer under ROOT/userns-layers)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "idmap", "copy"}));
  auto* stop = daemon->add_subcommand("stop", "Stop the daemon; containers keep running");
  stop->callback([] {
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
  });
  daemon->callback([daemon] {
    if (daemon->got_subcommand("stop")) return;
    throw ExitCode{run_daemon(stacks_dir, resync, userns_remap, userns_layers)};
  });
}

}  // namespace stack::cli
