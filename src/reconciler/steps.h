// What each step of a plan does on this host: the daemon's StepRunner. Networks through
// Networking, containers through the Controller and the Supervisor, pulls through the
// ImageService (on its workers), each step's outcome for the
// executor (done, retry after a delay, or terminal) and its line of progress for the client.
// Loop thread only. Private to the reconciler.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/registry_credentials.h"
#include "reconciler/controller.h"
#include "reconciler/executor.h"

#include <boost/asio/awaitable.hpp>

namespace stack::reconciler {

class Daemon;

class DaemonSteps final : public StepRunner {
 public:
  // TIMEOUT replaces each container's stop_grace_period (`down -t`, `stop -t`).
  // AUTH: the client's registry credentials its pulls use; null: the daemon's own pass, which
  // pulls with its own auth file (daemon.h, RegistryAuths).
  DaemonSteps(Daemon& daemon, Progress progress, const std::string& project,
              std::optional<std::chrono::seconds> timeout = std::nullopt,
              std::shared_ptr<const RegistryAuths> auth = nullptr)
      : daemon_(daemon),
        progress_(std::move(progress)),
        project_(project),
        timeout_(timeout),
        auth_(std::move(auth)) {}

  boost::asio::awaitable<Outcome> run(const planner::Node& node, PassId pass) override;

 private:
  boost::asio::awaitable<Outcome> ensure_network(const planner::EnsureNetwork& s, PassId pass);
  boost::asio::awaitable<Outcome> remove_network(const planner::RemoveNetwork& s, PassId pass);
  boost::asio::awaitable<Outcome> ensure_volume(const planner::EnsureVolume& s, PassId pass);
  boost::asio::awaitable<Outcome> remove_volume(const planner::RemoveVolume& s, PassId pass);
  boost::asio::awaitable<Outcome> create(const planner::CreateContainer& s, const std::string& reason,
                            PassId pass);
  boost::asio::awaitable<Outcome> start(const planner::StartContainer& s, PassId pass);
  boost::asio::awaitable<Outcome> await(const planner::AwaitContainer& s, PassId pass);
  boost::asio::awaitable<Outcome> stop(const planner::StopContainer& s, PassId pass);
  boost::asio::awaitable<Outcome> remove(const planner::RemoveContainer& s, const std::string& reason,
                            PassId pass);
  boost::asio::awaitable<Outcome> rename(const planner::RenameContainer& s, PassId pass);
  boost::asio::awaitable<Outcome> switch_traffic(const planner::SwitchTraffic& s, PassId pass);
  boost::asio::awaitable<Outcome> pull(const planner::PullImage& s, const std::string& reason,
                                       PassId pass);
  boost::asio::awaitable<Outcome> build_image(const planner::BuildImage& s,
                                              const std::string& reason, PassId pass);
  // provider_step.cpp: the provider's binary run on the worker pool, its info lines as progress.
  boost::asio::awaitable<Outcome> run_provider(const planner::RunProvider& s, PassId pass);
  // An update's new container failed its check: undone as its failure_action says.
  boost::asio::awaitable<Outcome> update_failed(const planner::AwaitContainer& s,
                                                const std::string& why, PassId pass);
  boost::asio::awaitable<Result<void>> rename_container(const std::string& from,
                                                        const std::string& to);

  Daemon& daemon_;
  Progress progress_;
  std::string project_;
  std::optional<std::chrono::seconds> timeout_;
  std::shared_ptr<const RegistryAuths> auth_;
  std::map<std::string, int> update_failures_;  // per service, in this pass
};

}  // namespace stack::reconciler
