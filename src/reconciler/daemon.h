// The long-lived reconciler (`stack daemon`): one Boost.Asio io_context, C++20 coroutines.
// It executes plans with independent actions in parallel and depends_on conditions honoured,
// supervises every container through its pidfd (restart policies with backoff, health
// checks), re-adopts running containers after its own restart, and repairs drift: a container
// killed from outside, a registered stack file edited. Every method runs on the loop thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "common/result.h"
#include "fs/image_store.h"
#include "reconciler/controller.h"
#include "reconciler/events.h"
#include "spec/loader.h"
#include "state/store.h"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace stack::reconciler {

struct DaemonOptions {
  std::filesystem::path stacks_dir;  // stack files reconciled like static pods; empty: none
  std::chrono::milliseconds resync_interval{5'000};  // full re-plan of every project
};

struct UpRequest {
  spec::LoadOptions load;
  UpOptions options;
  bool wait = false;  // return once every service is running and healthy, or failed
  std::chrono::milliseconds wait_timeout{300'000};
};

// Where a container is, for `stack exec` run by the CLI itself.
struct ExecTarget {
  std::string name;
  int pid = 0;
  uint64_t start_time = 0;
  std::string cgroup;
  std::string runtime_json;  // the engine spec: env, cwd, user, layers
};

class Supervisor;
class Notifier;
class ImageService;
class Networking;

class Daemon {
 public:
  Daemon(boost::asio::io_context& io, Paths paths, DaemonOptions options);
  ~Daemon();

  // Opens the state, re-adopts running containers (records exits that happened meanwhile),
  // then reconciles every registered project in the background.
  boost::asio::awaitable<Result<int>> start();  // how many containers were adopted
  // Stops supervising; containers keep running.
  void shutdown();

  boost::asio::awaitable<Result<planner::Plan>> up(UpRequest request, Progress progress);
  boost::asio::awaitable<Result<void>> down(std::string project,
                                            std::optional<std::chrono::seconds> timeout,
                                            Progress progress);
  boost::asio::awaitable<Result<void>> stop(std::string project, std::vector<std::string> services,
                                            std::optional<std::chrono::seconds> timeout,
                                            Progress progress);
  boost::asio::awaitable<Result<void>> start_services(std::string project,
                                                      std::vector<std::string> services,
                                                      Progress progress);
  [[nodiscard]] Result<std::vector<ContainerStatus>> ps(const std::string& project, bool all);
  [[nodiscard]] Result<ExecTarget> exec_target(const std::string& project,
                                               const std::string& service, int index);
  [[nodiscard]] Result<std::vector<std::string>> projects();
  Controller& controller() { return *controller_; }
  // Pulls, imports and the rest of the image store's operations (reconciler/images.h).
  ImageService& images() { return *images_; }
  Networking& networking() { return *networking_; }
  // `stack port`: "HOST_IP:PORT" of SERVICE's replica INDEX for PRIVATE_PORT/PROTOCOL.
  [[nodiscard]] Result<std::string> port(const std::string& project, const std::string& service,
                                         int index, int private_port, const std::string& protocol);
  // Notified whenever a container's state or health changes, and when a client goes away.
  Notifier& changed();
  // Set by `stack daemon`: what a POST /v1/shutdown does.
  std::function<void()> on_shutdown_request;
  EventBus& events() { return events_; }
  [[nodiscard]] const Paths& paths() const { return paths_; }

  // Re-plans PROJECT from its registered files and converges; REASON goes to the log.
  boost::asio::awaitable<void> reconcile(std::string project, std::string reason);
  // How many reconcile passes have run (any project, any reason): a test waits on it.
  [[nodiscard]] uint64_t reconciles() const { return reconciles_; }

 private:
  friend class Supervisor;
  struct Project;
  boost::asio::awaitable<Result<planner::Plan>> apply(const spec::Stack& stack,
                                                      const UpOptions& options, bool explicit_up,
                                                      Progress progress);
  boost::asio::awaitable<Result<void>> run_service(const spec::Stack& stack,
                                                   const std::string& service,
                                                   const std::vector<planner::Action>& actions,
                                                   const Progress& progress);
  boost::asio::awaitable<Result<void>> run_and_mark(const spec::Stack& stack,
                                                    const std::string& service,
                                                    const std::vector<planner::Action>& actions,
                                                    const Progress& progress,
                                                    std::set<std::string>& done);
  boost::asio::awaitable<Result<void>> wait_dependencies(const spec::Stack& stack,
                                                         const spec::Service& service);
  boost::asio::awaitable<Result<void>> wait_ready(const spec::Stack& stack,
                                                  std::chrono::milliseconds timeout);
  boost::asio::awaitable<Result<void>> stop_records(std::vector<state::ContainerRecord> records,
                                                    std::optional<std::chrono::seconds> timeout,
                                                    bool remove, Progress progress);
  Result<spec::Stack> load_registered(const std::string& project);
  // A start of REC failed: kept for `ps`, published, and returned.
  Result<void> container_failed(const state::ContainerRecord& rec, const Error& error);
  Result<std::vector<state::ContainerRecord>> select(const std::string& project,
                                                     const std::vector<std::string>& services);
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
  EventBus events_;
  std::map<std::string, spec::Stack> stacks_;  // the last loaded file of each project
  std::set<std::string> busy_;                 // projects with an operation under way
  std::unique_ptr<Notifier> busy_changed_;
  std::map<std::string, std::set<std::string>> done_;  // services an apply has finished
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
  uint64_t reconciles_ = 0;          // completed reconcile passes, for `GET /v1/version`
};

}  // namespace stack::reconciler
