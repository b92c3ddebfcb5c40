// See watcher_thread.h.
#include "cluster/watcher_thread.h"

namespace stack::cluster {

void WatcherThread::start(std::function<void()> body) {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread(std::move(body));
}

void WatcherThread::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (stream_) stream_->cancel();
  }
  stopped_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool WatcherThread::wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  stopped_.wait_for(lock, d, [this] { return stopping_.load(); });
  return !stopping_;
}

bool WatcherThread::hold(EventStream* stream) {
  std::lock_guard lock(mu_);
  stream_ = stopping_ ? nullptr : stream;
  return !stopping_;
}

}  // namespace stack::cluster
