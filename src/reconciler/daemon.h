// The long-lived reconciler (`stack daemon`): one Boost.Asio io_context, C++20 coroutines.
// Every operation is a plan (a DAG of typed steps from src/planner) run by the executor; the
// daemon supervises every container through its pidfd (restart policies with backoff, health
// checks), re-adopts running containers after its own restart, and repairs drift: a container
// killed from outside, a registered stack file edited. Every method runs on the loop thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "common/registry_credentials.h"
#include "common/result.h"
#include "fs/image_store.h"
#include "reconciler/builds.h"
#include "reconciler/controller.h"
#include "reconciler/desired.h"
#include "reconciler/events.h"
#include "reconciler/executor.h"
#include "spec/loader.h"
#include "state/store.h"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace stack::cluster {
class NodeAgent;
class SchedulerLoop;
class AssignmentWatch;
struct LocalProject;
}

namespace stack::reconciler {

// A client's RegistryAuths (common/registry_credentials.h), sent with its request: the pulls
// that request makes use these and nothing else (a registry without one: anonymous), never the
// daemon's own login, which only its own passes use (stacks.d, the resync of a registered
// project): a member of the socket's group must not pull a private image with root's login.
struct DaemonOptions {
  std::filesystem::path stacks_dir;  // stack files reconciled like static pods; empty: none
  std::chrono::milliseconds resync_interval{5'000};  // full re-plan of every project
  BuildFunction builder;  // build::build, from the daemon's main (reconciler/builds.h)
  std::string ingress_subnet;  // a cluster's ingress network's (cluster_ingress.h); "": default
};

struct UpRequest {
  spec::LoadOptions load;
  std::shared_ptr<const RegistryAuths> registry_auth;  // the client's; null: none
  UpOptions options;
  bool wait = false;  // return once every service is running and healthy, or failed
  std::chrono::milliseconds wait_timeout{300'000};
  // `up --scale SERVICE=N`: kept as the service's replica count until the next `up`.
  std::map<std::string, int> scale;
  // `create`, `up --no-start`: the containers are made, not started, and the daemon's passes
  // leave them so until `start` or `up`.
  bool no_start = false;
  // The loader's warnings (an unset variable, an obsolete `version`), told as they are found:
  // the daemon loads the files, the CLI only names them.
  std::function<void(const std::string&)> warn;
};

// `stack run SERVICE [CMD...]`: a one-off container of SERVICE, with what the flags change.
struct RunRequest {
  spec::LoadOptions load;
  std::shared_ptr<const RegistryAuths> registry_auth;  // the client's; null: none
  std::string service;
  std::optional<std::vector<std::string>> command, entrypoint;  // none: the service's
  std::map<std::string, std::string> environment, labels;       // over the service's
  std::string user, workdir;                                    // "": the service's
  std::string name;  // --name; "": <project>-<service>-run-<12 hex digits>
  std::vector<std::string> publish, volumes;  // -p and -v, in the file's short syntax
  bool service_ports = false;  // the service's own ports too (else only -p's)
  bool no_deps = false;        // its dependencies are not started
  bool auto_remove = false;    // `run -d --rm`: removed by the supervisor once it has exited
  bool tty = false, stdin_open = false;  // `run -t`, `run -i`: the CLI attaches to it
};

// `up --scale` and `--no-start` applied to the loaded STACK and REQUEST's plan options, or why
// not (a service the file lacks, a count below 0). daemon_lifecycle.cpp.
[[nodiscard]] Result<void> prepare_up(spec::Stack& stack, UpRequest& request);
// NAMED (every service of STACK when empty) and, transitively, what they depend on.
[[nodiscard]] std::set<std::string> with_dependencies(const spec::Stack& stack,
                                                      const std::vector<std::string>& named);

// `stack build [SERVICE...]`: the project's files as `up` loads them, the services (every one
// with a build section when empty) and what the command line changes of their builds.
struct BuildServicesRequest {
  spec::LoadOptions load;
  std::shared_ptr<const RegistryAuths> registry_auth;  // the client's; null: none
  std::vector<std::string> services;
  bool no_cache = false;
  bool pull = false;
  std::map<std::string, std::string> args;  // --build-arg, over each build's args
  std::function<void(const std::string&)> warn;
};
struct BuiltImage {
  std::string service;  // the first service that uses it
  std::string image;
  std::string id;
};

// A running container, for a process started in it (`stack exec` through the API).
struct ExecTarget {
  std::string name;
  int pid = 0;
  uint64_t start_time = 0;
  std::string cgroup;
  std::shared_ptr<const model::RuntimeRecord> runtime;  // env, cwd, user, layers, security
};

class Supervisor;
class Notifier;
class ImageService;
class Networking;
class ClusterOverlay;
class ClusterMesh;
class BuildService;

class Daemon {
 public:
  Daemon(boost::asio::io_context& io, Paths paths, DaemonOptions options);
  ~Daemon();

  // Opens the state, re-adopts running containers (records exits that happened meanwhile),
  // then reconciles every registered project in the background.
  boost::asio::awaitable<Result<int>> start();  // how many containers were adopted
  // Stops supervising; containers keep running.
  void shutdown();

  // The project the files name and the plan that was run (or, with dry_run, would be).
  struct UpOutcome {
    std::string project;
    planner::Plan plan;
    std::vector<std::string> not_attached;  // services with attach: false (compose's)
  };
  boost::asio::awaitable<Result<UpOutcome>> up(UpRequest request, Progress progress);
  // Builds the images of the request's services, independent ones side by side; changes
  // nothing else (the containers are `up`'s). Each image once, with the first service that uses it.
  boost::asio::awaitable<Result<std::vector<BuiltImage>>> build_services(BuildServicesRequest request,
                                                                         Progress progress);
  // VOLUMES (`down -v`): the project's named volumes go too, with their data.
  boost::asio::awaitable<Result<void>> down(std::string project,
                                            std::optional<std::chrono::seconds> timeout,
                                            Progress progress, bool volumes = false);
  // Removes named volume NAME and its data; refused while a container mounts it (named in the
  // error). The data is deleted on the worker pool (daemon_volumes.cpp).
  boost::asio::awaitable<Result<void>> remove_volume(std::string name);
  // `stack volume ls|inspect|create|prune` (daemon_volumes.cpp): each volume with where its
  // data is and the containers that mount it.
  struct VolumeInfo {
    std::string name, project, mountpoint;
    std::map<std::string, std::string> driver_opts, labels;
    int64_t created_at = 0;
    std::vector<std::string> used_by;
    bool anonymous = false;  // made for one container's mount: listed, gone with its container
  };
  [[nodiscard]] Result<std::vector<VolumeInfo>> list_volumes();
  [[nodiscard]] Result<VolumeInfo> create_volume(const std::string& name,
                                                 std::map<std::string, std::string> driver_opts,
                                                 std::map<std::string, std::string> labels);
  // Every volume no container mounts; their names.
  boost::asio::awaitable<Result<std::vector<std::string>>> prune_volumes();
  // `stack network ls|inspect|create|rm` (daemon_networks.cpp): every network of this host,
  // with the project that owns it ("" : made by `stack network create`) and the containers on
  // it. A network made here has no project: only `stack network rm` removes it, refused while
  // a container joins it; projects join it as external (or by name).
  struct NetworkListing {
    std::string name, project, subnet, gateway;
    std::vector<std::string> containers;
    std::string driver = "bridge";  // bridge | overlay | macvlan | ipvlan
    bool ingress = false;  // the cluster's routing mesh network (cluster_ingress.h): no project's
  };
  [[nodiscard]] Result<std::vector<NetworkListing>> list_networks();
  [[nodiscard]] Result<NetworkListing> create_network(const std::string& name,
                                                      const std::string& subnet);
  [[nodiscard]] Result<void> remove_network(const std::string& name);
  // The config_hash a network made by create_network is recorded with (made again at start).
  static constexpr const char* kStandaloneNetwork = "stack network create";
  boost::asio::awaitable<Result<void>> stop(std::string project, std::vector<std::string> services,
                                            std::optional<std::chrono::seconds> timeout,
                                            Progress progress);
  boost::asio::awaitable<Result<void>> start_services(std::string project,
                                                      std::vector<std::string> services,
                                                      Progress progress);
  boost::asio::awaitable<Result<void>> restart(std::string project,
                                               std::vector<std::string> services,
                                               std::optional<std::chrono::seconds> timeout,
                                               Progress progress);
  // `stack rollback`: SERVICES (every one with a previous configuration when empty) go back to
  // what their replicas ran before their last update, and stay there while the file still asks
  // for what they were rolled back from.
  boost::asio::awaitable<Result<void>> rollback(std::string project,
                                                std::vector<std::string> services,
                                                Progress progress);
  [[nodiscard]] Result<std::vector<ContainerStatus>> ps(const std::string& project, bool all);
  // `stack scale SERVICE=N...` (daemon_lifecycle.cpp): each service's replica count, kept by
  // the daemon's passes until the next `up`; replicas made or removed now (and, unless NO_DEPS,
  // what they depend on started).
  boost::asio::awaitable<Result<void>> scale(std::string project, std::map<std::string, int> replicas,
                                             bool no_deps, Progress progress);
  // `stack run` (daemon_run.cpp): the one-off container made and started after what SERVICE
  // depends on (unless no_deps), its networks made if need be; the project and the container's
  // name. A project that only `run` has used keeps its dependencies up, and no container of the
  // service itself, until `up`.
  struct RunOutcome {
    std::string project, container;
  };
  boost::asio::awaitable<Result<RunOutcome>> run(RunRequest request, Progress progress);
  // `stack rm` (daemon_lifecycle.cpp): the containers of SERVICES (every service when empty)
  // that do not run are removed, and with STOP the running ones are stopped first; the daemon's
  // passes do not make them again until `up`. The containers removed.
  // With CONTAINERS, only those (`run --rm`), and no override is recorded.
  boost::asio::awaitable<Result<std::vector<std::string>>> remove_containers(
      std::string project, std::vector<std::string> services, bool stop, Progress progress,
      std::vector<std::string> containers = {});
  // `stack kill` (daemon_verbs.cpp): SIGNAL to the running containers of SERVICES (every
  // service when empty). A signal that ends processes marks them stopped by the user first, so
  // neither a restart policy nor drift repair starts them again (docker's kill does the same).
  // The containers signalled. With CONTAINERS, only those (`attach --sig-proxy`).
  boost::asio::awaitable<Result<std::vector<std::string>>> kill(
      std::string project, std::vector<std::string> services, int signal,
      std::vector<std::string> containers = {});
  // `stack pause` / `unpause` (daemon_verbs.cpp): freezes (thaws) the cgroups of the running
  // containers of SERVICES (every service when empty). The containers changed.
  boost::asio::awaitable<Result<std::vector<std::string>>> pause(std::string project,
                                                                 std::vector<std::string> services,
                                                                 bool paused);
  // `stack top` (daemon_verbs.cpp): the processes in each running container's cgroup, as
  // /proc has them now (host PIDs).
  struct Process {
    uint32_t uid = 0;
    int pid = 0, ppid = 0;
    int64_t started_at = 0;  // unix ms
    uint64_t cpu_ms = 0;     // user + system
    std::string tty, command;
  };
  struct Top {
    std::string container, service;
    std::vector<Process> processes;
  };
  [[nodiscard]] Result<std::vector<Top>> top(const std::string& project,
                                             const std::vector<std::string>& services);
  // CONTAINER, when given, names it instead of INDEX (a `run` container of SERVICE).
  [[nodiscard]] Result<ExecTarget> exec_target(const std::string& project,
                                               const std::string& service, int index,
                                               const std::string& container = "");
  [[nodiscard]] Result<std::vector<std::string>> projects();
  Controller& controller() { return *controller_; }
  // Pulls, imports and the rest of the image store's operations (reconciler/images.h).
  ImageService& images() { return *images_; }
  Networking& networking() { return *networking_; }
  // A daemon in a cluster: its cluster overlay networks (null otherwise).
  ClusterOverlay* cluster_overlay() { return cluster_overlay_.get(); }
  // Image builds (reconciler/builds.h): the plan's BuildImage steps.
  BuildService& builds() { return *builds_; }
  // `stack port`: "HOST_IP:PORT" of SERVICE's replica INDEX for PRIVATE_PORT/PROTOCOL.
  [[nodiscard]] Result<std::string> port(const std::string& project, const std::string& service,
                                         int index, int private_port, const std::string& protocol);
  // Notified whenever a container's state or health changes, and when a client goes away.
  Notifier& changed();
  // Set by `stack daemon`: what a POST /v1/shutdown does.
  std::function<void()> on_shutdown_request;
  // Set by `stack daemon --cluster`: this node's cluster agent (the API's /v1/nodes use it).
  // Null on a daemon that is not in a cluster.
  cluster::NodeAgent* cluster_agent = nullptr;
  // In a cluster (daemon_cluster.cpp): starts this node's scheduler candidate and the watch of
  // what is assigned to it, once start() has adopted what runs. Stopped by shutdown().
  void start_cluster();
  void stop_cluster();
  // What the cluster assigns to this node now (every project, with this node's slots): each
  // project's file written under <root>/cluster, registered and reconciled to those slots; a
  // project gone from the cluster goes down here.
  void cluster_view(const std::map<std::string, cluster::LocalProject>& view);
  // The cluster's projects (as this node last saw them) whose services join network NETWORK
  // for the routing mesh: the ingress network stays here while one of them has it.
  [[nodiscard]] std::set<std::string> mesh_projects(const std::string& network) const;
  // SERVICE's ports the routing mesh answers on every node, as ps shows them
  // ("0.0.0.0:30000->80/tcp"), and the one of TARGET/PROTO (its number, 0 when none).
  [[nodiscard]] std::vector<std::string> mesh_ports(const std::string& project,
                                                    const std::string& service) const;
  [[nodiscard]] int mesh_port(const std::string& project, const std::string& service, int target,
                              const std::string& proto) const;
  EventBus& events() { return events_; }
  [[nodiscard]] const Paths& paths() const { return paths_; }

  // Re-plans PROJECT from its registered files and converges; REASON goes to the log.
  boost::asio::awaitable<void> reconcile(std::string project, std::string reason);
  // How many reconcile passes have run (any project, any reason): a test waits on it.
  [[nodiscard]] uint64_t reconciles() const { return reconciles_; }

 private:
  friend class Supervisor;
  friend class DaemonSteps;
  struct Project;
  // Plans PROJECT's STACK against what exists and runs the plan (not with dry_run).
  // An update that fails its check with failure_action rollback is rolled back at once, unless
  // MAY_ROLL_BACK is false (the rollback itself).
  // DESIRED, when the caller has computed it already (up checks it before any change).
  boost::asio::awaitable<Result<planner::Plan>> apply(
      const spec::Stack& stack, const UpOptions& options, bool explicit_up, Progress progress,
      bool may_roll_back = true, std::optional<planner::DesiredState> desired = std::nullopt);
  // What the pins of PROJECT ask of DESIRED (see state::PinRecord): rolled-back services and
  // held (paused) ones. Pins the file has moved past are dropped, and every one with RELEASE.
  struct Pins {
    Rollbacks rollbacks;
    std::set<std::string> held;
  };
  Result<Pins> pins_of(const std::string& project, const planner::DesiredState& desired,
                       bool release);
  // What `scale`, `create` and `rm` asked of PROJECT since its last `up` (state::OverrideRecord),
  // applied to STACK (replica counts) and OPTIONS (services left created, services removed).
  // daemon_lifecycle.cpp.
  Result<void> apply_overrides(spec::Stack& stack, planner::PlanOptions& options);
  // Changes SERVICE's override in PROJECT by EDIT (read, edited, written back).
  Result<void> edit_override(const std::string& project, const std::string& service,
                             const std::function<void(state::OverrideRecord&)>& edit);
  // `up` clears the overrides of the services it brings up (all when NAMED is empty), then
  // records its own --scale and --no-start.
  Result<void> reset_overrides(const spec::Stack& stack, const UpRequest& request);
  // `up --no-recreate`: each service whose containers differ from FILE_HASHES (service ->
  // what the file asks for) is held as it is (a pin, see state::PinRecord) until the next `up`
  // or a change of the file, so the daemon's passes do not recreate it either.
  Result<void> hold_unchanged(const std::string& project,
                              const std::map<std::string, std::string>& file_hashes);
  // The credentials PROJECT's running operation pulls with (held under its ProjectLock): a
  // client's request sets its own for its duration (the returned guard's lifetime); the
  // daemon's own passes set none and pull with its own auth file. Anything else a client
  // asked for pulls anonymously.
  [[nodiscard]] std::shared_ptr<void> pull_as_client(const std::string& project,
                                                     std::shared_ptr<const RegistryAuths> auth);
  [[nodiscard]] std::shared_ptr<void> pull_as_daemon(const std::string& project);
  std::map<std::string, std::shared_ptr<const RegistryAuths>> client_auth_;
  std::set<std::string> own_pulls_;
  // Runs PLAN for PROJECT as one pass: its id in every log line and event of it.
  boost::asio::awaitable<Result<void>> execute(const std::string& project,
                                               const planner::Plan& plan, Progress progress,
                                               std::optional<std::chrono::seconds> timeout = {});
  // The desired services of PROJECT's last loaded file (their dependencies, for the order of
  // stop, start and restart); empty when none was loaded.
  std::vector<planner::DesiredService> services_of(const std::string& project);
  boost::asio::awaitable<Result<void>> wait_ready(const spec::Stack& stack,
                                                  std::chrono::milliseconds timeout);
  Result<spec::Stack> load_registered(const std::string& project);
  // Each external network a service joins exists on this host (daemon_ops.cpp).
  Result<void> check_external_networks(const spec::Stack& stack,
                                       const planner::DesiredState& desired);
  // No two macvlan or ipvlan networks on one parent link, in the file or on this host
  // (daemon_ops.cpp).
  Result<void> check_sublink_parents(const spec::Stack& stack);
  // `down` asks the project's running plan (awaiting a dependency, say) to give up.
  [[nodiscard]] bool cancelled(const std::string& project) const { return cancels_.count(project) > 0; }
  // A start of REC failed: kept for `ps`, published, and returned.
  Result<void> container_failed(const state::ContainerRecord& rec, const Error& error);
  // An error naming the first of SERVICES that has no container in PROJECT.
  Result<void> check_services(const std::string& project, const std::vector<std::string>& services);
  // Marks the containers PLAN stops on the user's behalf as stopped by the user.
  boost::asio::awaitable<Result<void>> mark_stopped(const planner::Plan& plan);
  // Stack files: registered projects' files and the stacks directory, watched with inotify.
  void watch_files();
  boost::asio::awaitable<void> file_watch_loop();
  boost::asio::awaitable<void> resync_loop();
  boost::asio::awaitable<void> resync_one(std::string project);
  boost::asio::awaitable<void> guarded_reconcile(std::string project, std::string reason);
  boost::asio::awaitable<void> retry_later(std::string project, std::chrono::milliseconds delay);
  // A reconcile of PROJECT failed: counted, logged, published, and retried after a backoff.
  void failed(const std::string& project, const Error& error, const std::string& reason);
  static spec::LoadOptions load_options_of(const state::ProjectRecord& rec);
  // OPTS with the daemon's time budget and its shutdown flag.
  spec::LoadOptions budgeted(spec::LoadOptions opts) const;
  boost::asio::awaitable<void> repair_networks();
  void register_watch(const std::string& project, const std::vector<std::string>& files);
  void unregister_watch(const std::string& project);
  void watch_dir(const std::filesystem::path& dir);
  void scan_stacks_dir();
  boost::asio::awaitable<void> sync_static_project(std::filesystem::path file);

  boost::asio::io_context& io_;
  Paths paths_;
  DaemonOptions options_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<ImageService> images_;  // before controller_ goes: it uses its stores
  std::unique_ptr<Supervisor> supervisor_;
  std::unique_ptr<Networking> networking_;
  std::unique_ptr<ClusterOverlay> cluster_overlay_;  // after networking_: it goes first
  std::unique_ptr<ClusterMesh> cluster_mesh_;        // after cluster_overlay_: it goes first
  std::unique_ptr<BuildService> builds_;  // after networking_: its network goes first
  EventBus events_;
  std::map<std::string, spec::Stack> stacks_;  // the last loaded file of each project
  // Cluster mode (daemon_cluster.cpp). `up` and `down` go to the store; what runs here is
  // what the cluster assigns here: project → service → its slots on this node. A project of
  // the cluster not in it yet (a restarted daemon before its first view) is left as it runs.
  boost::asio::awaitable<Result<UpOutcome>> cluster_up(UpRequest request);
  boost::asio::awaitable<Result<void>> cluster_down(const std::string& project);
  boost::asio::awaitable<void> cluster_gone(std::string project);  // down here, file removed
  // A `down` that could not reach the store: <root>/cluster/<project>.down holds the project's
  // hash as this node had it; the first view that has the project with that hash removes its
  // record instead of running it again (a newer `up` elsewhere wins: the marker goes).
  [[nodiscard]] Result<void> cluster_down_later(const std::string& project);  // writes the marker
  [[nodiscard]] std::filesystem::path cluster_down_marker(const std::string& project) const;
  boost::asio::awaitable<void> cluster_retry_down(std::string project, std::string hash);
  std::set<std::string> cluster_retrying_;
  [[nodiscard]] bool is_cluster_project(const state::ProjectRecord& rec) const;
  [[nodiscard]] std::filesystem::path cluster_file(const std::string& project) const;
  // DESIRED limited to this node's slots of PROJECT (when it is a cluster project).
  void restrict_to_slots(planner::DesiredState& desired) const;
  std::map<std::string, std::map<std::string, std::set<int>>> cluster_slots_;
  // Projects a `down` here is taking down: the view that no longer has them starts no
  // second down (which would cancel the first).
  std::set<std::string> cluster_leaving_;
  std::unique_ptr<cluster::SchedulerLoop> scheduler_;
  std::unique_ptr<cluster::AssignmentWatch> assignments_;
  std::set<std::string> busy_;                 // projects with an operation under way
  std::unique_ptr<Notifier> busy_changed_;
  int inotify_fd_ = -1;
  std::map<int, std::string> watch_dirs_;      // inotify watch -> directory
  std::map<std::string, std::set<std::string>> file_projects_;  // file path -> projects
  bool stopping_ = false;
  // Projects whose last reconcile failed: the backoff before the next attempt.
  struct Failures {
    int count = 0;
    std::chrono::steady_clock::time_point next_try;
    std::string message;
    bool retry_scheduled = false;
  };
  static constexpr std::chrono::milliseconds kFirstRetry{500};
  static constexpr std::chrono::milliseconds kMaxRetry{300'000};
  std::map<std::string, Failures> failures_;
  std::set<std::string> resyncing_;  // projects the periodic resync is reconciling now
  std::map<std::string, std::string> errors_;  // container -> why its last start failed
  // `run -d --rm` containers being made: their records carry auto_remove from the create on.
  std::set<std::string> auto_remove_;
  std::set<std::string> cancels_;              // projects whose running plan must give up
  // Updates that failed in the running pass: project -> service -> rolled back (else paused).
  std::map<std::string, std::map<std::string, bool>> update_failures_;
  uint64_t next_pass_ = 1;
  uint64_t reconciles_ = 0;          // completed reconcile passes, for `GET /v1/version`
  static constexpr std::chrono::seconds kLoadBudget{10};
  std::atomic<bool> cancel_loads_{false};  // read by loads on the worker pool
};

}  // namespace stack::reconciler
