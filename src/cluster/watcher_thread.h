// The thread of a store watcher that waits on one stream at a time (AssignmentWatch,
// SchedulerLoop): stop() marks it stopping, cancels the stream it holds and ends a back-off
// wait, then joins, so it returns at once however long the stream would have waited.
// (OverlayWatch is woken by watch()/unwatch() too, and keeps its own.)
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "cluster/store.h"

namespace stack::cluster {

class WatcherThread {
 public:
  WatcherThread() = default;
  ~WatcherThread() { stop(); }
  WatcherThread(const WatcherThread&) = delete;
  WatcherThread& operator=(const WatcherThread&) = delete;

  void start(std::function<void()> body);  // none while one runs
  void stop();
  [[nodiscard]] bool stopping() const { return stopping_; }
  // Waits D, less when stop() comes; false once stopping.
  bool wait(std::chrono::milliseconds d);
  // STREAM (null: none) is what stop() cancels now; false once stopping (then it is not held,
  // and the caller does not wait on it).
  bool hold(EventStream* stream);

 private:
  std::atomic<bool> stopping_{false};
  std::mutex mu_;                    // stopping_ against stream_
  std::condition_variable stopped_;  // a back-off's wait ends at stop()
  EventStream* stream_ = nullptr;    // owned by the body
  std::thread thread_;
};

}  // namespace stack::cluster
