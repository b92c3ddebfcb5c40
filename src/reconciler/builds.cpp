// The daemon's builds (see builds.h): requests from the plan's build configuration, the build
// engine on the build workers, and what it borrows from the daemon — pulls run on the worker
// itself, RUN's network is attached on the loop (Networking is the loop's alone).
#include "reconciler/builds.h"

#include <cctype>
#include <chrono>
#include <future>

#include "fs/pull.h"
#include "reconciler/async.h"
#include "reconciler/controller.h"
#include "reconciler/networking.h"

namespace stack::reconciler {

build::BuildRequest build_request(const model::BuildConfig& c, const BuildOverrides& o) {
  build::BuildRequest r;
  r.context = c.context;
  if (!c.dockerfile_inline.empty())
    r.dockerfile_inline = c.dockerfile_inline;
  else if (!c.dockerfile.empty())
    r.dockerfile = c.dockerfile;
  r.args = c.args;
  for (const auto& [k, v] : o.args) r.args[k] = v;
  r.target = c.target;
  r.labels = c.labels;
  r.tags.push_back(c.image);
  for (const auto& t : c.tags)
    if (t != c.image) r.tags.push_back(t);
  r.network = c.network == "none"   ? build::NetworkMode::kNone
              : c.network == "host" ? build::NetworkMode::kHost
                                    : build::NetworkMode::kDefault;
  r.no_cache = c.no_cache || o.no_cache;
  r.pull = c.pull || o.pull;
  r.shm_size = c.shm_size;
  for (const auto& [host, ip] : c.extra_hosts) r.extra_hosts.push_back(host + ":" + ip);
  // "demo-web:latest" -> "demo-web": names RUN containers and progress.
  r.name = c.image;
  size_t slash = r.name.rfind('/'), colon = r.name.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) r.name.resize(colon);
  for (char& ch : r.name)  // a path component and a cgroup name: "reg:5000/app" -> "reg-5000-app"
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.') ch = '-';
  return r;
}

// RUN's default network, attached by Networking on the loop while the worker waits. A loop
// that does not answer (the daemon stopping) fails the RUN step instead of hanging it.
class BuildService::Network final : public build::BuildNetwork {
 public:
  Network(asio::io_context& io, Networking& networking) : io_(io), networking_(networking) {}

  Result<std::string> resolv_conf() override {
    return on_loop<std::string>("the build network", [this] { return networking_.build_resolv_conf(); });
  }

  Result<void> attach(std::string_view container, int netns_fd, pid_t pid) override {
    return on_loop<void>("attach " + std::string(container) + " to the build network",
                         [this, name = std::string(container), netns_fd, pid] {
                           return networking_.attach_build(name, netns_fd, pid);
                         });
  }

  void detach(std::string_view container) override {
    asio::post(io_, [this, name = std::string(container)] { networking_.detach_build(name); });
  }

 private:
  // F's result, F run on the loop while this worker waits.
  template <class T, class F>
  Result<T> on_loop(const std::string& what, F f) {
    auto done = std::make_shared<std::promise<Result<T>>>();
    auto answer = done->get_future();
    asio::post(io_, [done, f = std::move(f)] { done->set_value(f()); });
    if (answer.wait_for(std::chrono::seconds(60)) != std::future_status::ready)
      return fail(what + ": the daemon did not answer");
    return answer.get();
  }

  asio::io_context& io_;
  Networking& networking_;
};

BuildService::BuildService(asio::io_context& io, Controller& controller, Networking& networking,
                           std::filesystem::path work_dir, BuildFunction builder)
    : io_(io),
      controller_(controller),
      networking_(networking),
      work_dir_(std::move(work_dir)),
      builder_(std::move(builder)),
      network_(std::make_unique<Network>(io, networking)),
      workers_(std::make_unique<asio::thread_pool>(2)) {}

BuildService::~BuildService() {
  cancel_->store(true);
  workers_->join();
}

void apply_auth(fs::PullRequest& request, const RegistryAuths* auth) {
  if (!auth) return;
  request.auth_file.clear();
  auto it = auth->find(registry_of_reference(request.reference));
  if (it != auth->end()) request.credentials = it->second;
}

awaitable<Result<build::BuildResult>> BuildService::build(build::BuildRequest request,
                                                           build::Progress progress,
                                                           std::shared_ptr<const RegistryAuths> auth) {
  auto alive = std::make_shared<bool>(true);
  build::Progress relay;
  if (progress)
    relay = [ex = io_.get_executor(), alive, progress](const build::BuildEvent& e) {
      asio::post(ex, [alive, progress, e] {
        if (*alive) progress(e);
      });
    };
  if (!builder_) co_return fail("builds are not available: this daemon was made without the build engine");
  auto& images = controller_.images();
  auto& engine = controller_.engine();
  std::string cgroup = controller_.paths().cgroup_parent() + "/build";
  auto work = [&images, &engine, builder = builder_, request = std::move(request), relay, cancel = cancel_, auth,
               network = network_.get(), dir = work_dir_, cgroup]() -> Result<build::BuildResult> {
    build::BuildHost host{images, engine, dir};
    host.cgroup_parent = cgroup;
    host.network = network;
    host.cancel = cancel.get();
    host.pull = [&images, cancel, auth](const std::string& ref, const std::string& platform) -> Result<void> {
      fs::PullRequest p;
      p.reference = ref;
      apply_auth(p, auth.get());
      if (!platform.empty()) p.platform = platform;
      p.cancel = cancel.get();
      auto image = fs::pull_image(images, p);
      if (!image) return fail(image.error());
      return {};
    };
    return builder(request, host, relay);
  };
  running_++;
  auto r = co_await on_pool(*workers_, std::move(work));
  *alive = false;
  // The builds' network lives while a build may need it.
  if (--running_ == 0) (void)networking_.remove_build_network();
  co_return r;
}

}  // namespace stack::reconciler
