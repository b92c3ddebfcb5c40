// The daemon's builds: the plan's BuildImage steps and `stack build` call it. Each build runs
// on the build workers (a pool of its own: a long RUN holds up no container start, and two
// services' builds run side by side); progress comes back on the loop. The build engine
// (src/build) gets what it borrows from the daemon here: the image store, the engine, pulls,
// and RUN's default network through Networking (on the loop). Loop thread only.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>

#include "build/build.h"
#include "common/registry_credentials.h"
#include "common/result.h"
#include "fs/pull.h"
#include "model/build.h"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace stack::reconciler {

class Controller;
class Networking;

// The build engine's entry point, build::build's signature.
using BuildFunction = std::function<Result<build::BuildResult>(
    const build::BuildRequest&, build::BuildHost&, const build::Progress&)>;

// What `stack build` changes of a service's build: flags and --build-arg.
struct BuildOverrides {
  bool no_cache = false;
  bool pull = false;
  std::map<std::string, std::string> args;
};

// The engine's request for CONFIG, with OVERRIDES applied.
[[nodiscard]] build::BuildRequest build_request(const model::BuildConfig& config,
                                                const BuildOverrides& overrides = {});

// Who a pull is made for: with AUTH (a client's request), its credential for REQUEST's registry
// and no auth file (none there: anonymous); with none (the daemon's own pass), the daemon's
// own auth file, as REQUEST has it by default.
void apply_auth(fs::PullRequest& request, const RegistryAuths* auth);

class BuildService {
 public:
  // BUILDER is the build engine's entry point (build::build), given by the daemon's main so
  // that the reconciler links without it; unset, every build fails saying so.
  BuildService(boost::asio::io_context& io, Controller& controller, Networking& networking,
               std::filesystem::path work_dir, BuildFunction builder);
  // Stops running builds (their RUN steps are killed) and waits for the workers.
  ~BuildService();

  // PROGRESS, when set, is called on the loop.
  // AUTH: the client's registry credentials the FROM pulls use; null: the daemon's own pass
  // (its own auth file). See apply_auth.
  boost::asio::awaitable<Result<build::BuildResult>> build(
      build::BuildRequest request, build::Progress progress,
      std::shared_ptr<const RegistryAuths> auth = nullptr);

 private:
  class Network;
  boost::asio::io_context& io_;
  Controller& controller_;
  Networking& networking_;
  std::filesystem::path work_dir_;
  BuildFunction builder_;
  int running_ = 0;  // builds under way: the last one takes the builds' network away
  std::unique_ptr<Network> network_;
  std::unique_ptr<boost::asio::thread_pool> workers_;
  std::shared_ptr<std::atomic<bool>> cancel_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace stack::reconciler
