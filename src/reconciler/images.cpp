// ImageService (images.h): each operation reads what it needs on the loop (which images
// containers use), runs the store's work on the image workers, and relays progress back to the
// loop. Callbacks stop once the operation has returned: none arrives after its result.
#include "reconciler/images.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "reconciler/async.h"
#include "state/store.h"

namespace stack::reconciler {

namespace {

// F, called from a worker, run on EX instead, until *ALIVE is false.
template <class... Args>
std::function<void(Args...)> on_loop(asio::any_io_executor ex, std::shared_ptr<bool> alive,
                                     std::function<void(Args...)> f) {
  if (!f) return {};
  return [ex, alive, f](Args... args) {
    asio::post(ex, [alive, f, args...] {
      if (*alive) f(args...);
    });
  };
}

}  // namespace

ImageService::ImageService(asio::io_context& io, fs::ImageStore& store, state::Store& state)
    : io_(io), store_(store), state_(state), workers_(std::make_unique<asio::thread_pool>(2)) {}

ImageService::~ImageService() {
  cancel_->store(true);
  workers_->join();
}

Result<fs::InUse> ImageService::in_use() {
  auto records = state_.list_all_containers();
  if (!records) return fail(records.error());
  fs::InUse out;
  for (const auto& r : *records) {
    if (!r.image_id.empty()) out.emplace(r.image_id, r.name);
    if (r.runtime)  // the images its `type: image` mounts show (their layers must stay)
      for (const auto& m : r.runtime->spec.mounts)
        if (m.kind == model::BindMount::Kind::kImage && !m.image_id.empty())
          out.emplace(m.image_id, r.name);
  }
  return out;
}

awaitable<Result<fs::Image>> ImageService::pull(fs::PullRequest request) {
  auto alive = std::make_shared<bool>(true);
  request.progress = on_loop<const fs::PullEvent&>(io_.get_executor(), alive, request.progress);
  request.cancel = cancel_.get();
  auto cancel = cancel_;  // outlives this object only as long as the work does
  auto work = [&store = store_, request, cancel] { return fs::pull_image(store, request); };
  auto r = co_await on_pool(*workers_, std::move(work));
  *alive = false;
  co_return r;
}

awaitable<Result<fs::Pushed>> ImageService::push(fs::PushRequest request) {
  auto alive = std::make_shared<bool>(true);
  request.progress = on_loop<const fs::PullEvent&>(io_.get_executor(), alive, request.progress);
  request.cancel = cancel_.get();
  auto cancel = cancel_;
  auto work = [&store = store_, request, cancel] { return fs::push_image(store, request); };
  auto r = co_await on_pool(*workers_, std::move(work));
  *alive = false;
  co_return r;
}

awaitable<Result<fs::Removal>> ImageService::remove(std::string reference, bool force) {
  auto used = in_use();
  if (!used) co_return fail(used.error());
  auto work = [&store = store_, reference, used = *used, force] {
    return store.remove(reference, used, force);
  };
  co_return co_await on_pool(*workers_, std::move(work));
}

awaitable<Result<fs::Removal>> ImageService::prune(bool all) {
  auto used = in_use();
  if (!used) co_return fail(used.error());
  auto work = [&store = store_, used = *used, all] { return store.prune(used, all); };
  co_return co_await on_pool(*workers_, std::move(work));
}

awaitable<Result<void>> ImageService::login(std::string registry, fs::Credentials credentials) {
  auto work = [registry, credentials] { return fs::check_login(registry, credentials); };
  co_return co_await on_pool(*workers_, std::move(work));
}

Result<fs::Image> ImageService::tag(const std::string& source, const std::string& target) {
  return store_.tag(source, target);
}

Result<fs::Image> ImageService::get(const std::string& reference) const {
  return store_.get(reference);
}

Result<std::vector<fs::Image>> ImageService::list() const { return store_.list(); }

}  // namespace stack::reconciler
