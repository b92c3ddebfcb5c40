// The daemon's image operations: pull (the planner's PullImage step and `stack pull` call it),
// push, tag, remove, prune, login. Import, load and save stream a client's tar on a thread of
// their own (api/image_transfer.h), straight into the store. The store's slow work runs on the image
// workers, a pool of their own, so a long pull never holds up a container start; callbacks and
// results come back on the loop. Every method is called on the loop thread.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "fs/image_store.h"
#include "fs/pull.h"
#include "fs/push.h"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace stack::state {
class Store;
}

namespace stack::reconciler {

class ImageService {
 public:
  ImageService(boost::asio::io_context& io, fs::ImageStore& store, state::Store& state);
  // Cancels running pulls and waits for the workers.
  ~ImageService();

  // Pulls REQUEST.reference (its platform, credentials, progress: see fs/pull.h). PROGRESS, when
  // set, is called on the loop (not from the workers, as fs's is).
  boost::asio::awaitable<Result<fs::Image>> pull(fs::PullRequest request);
  // Pushes REQUEST.reference to its registry (fs/push.h); progress on the loop, as pull's.
  boost::asio::awaitable<Result<fs::Pushed>> push(fs::PushRequest request);
  // Refused while a container uses the image (its last name), unless FORCE: then untagged.
  boost::asio::awaitable<Result<fs::Removal>> remove(std::string reference, bool force);
  boost::asio::awaitable<Result<fs::Removal>> prune(bool all);
  boost::asio::awaitable<Result<void>> login(std::string registry, fs::Credentials credentials);
  [[nodiscard]] Result<fs::Image> tag(const std::string& source, const std::string& target);
  [[nodiscard]] Result<fs::Image> get(const std::string& reference) const;
  [[nodiscard]] Result<std::vector<fs::Image>> list() const;

  fs::ImageStore& store() { return store_; }

 private:
  // The images containers were made from (state records), each with one container's name.
  Result<fs::InUse> in_use();

  boost::asio::io_context& io_;
  fs::ImageStore& store_;
  state::Store& state_;
  std::unique_ptr<boost::asio::thread_pool> workers_;
  std::shared_ptr<std::atomic<bool>> cancel_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace stack::reconciler
