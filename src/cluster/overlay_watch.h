// The endpoints of every overlay network a node has, followed on one thread through ONE stream
// over all their prefixes (Store::watch_ranges), waited on with no timeout: it wakes on a
// change, a lost store, stop() or a change of the set of networks (watch/unwatch cancel the
// stream, which is then opened again over the new set). Each network is listed once, then only
// its changes come; the new stream starts at the oldest revision a network still needs, and
// what a network already had is dropped, so a rebuild neither misses nor repeats an event.
// A lost stream (the store gone, a compacted revision): every network is listed again after a
// back-off. Callbacks run on the watch thread. Logs as "cluster".
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/store.h"
#include "cluster/store_peers.h"

namespace stack::cluster {

class OverlayWatch {
 public:
  struct Callbacks {
    // NETWORK's endpoints as listed (replaces what was known of it).
    std::function<void(const std::string& network, const std::vector<OverlayEndpoint>&)> listed;
    // Changes since the listing or the last call, in revision order.
    std::function<void(const std::string& network, const std::vector<EndpointChange>&)> changed;
  };
  // STORE outlives this object.
  OverlayWatch(Store& store, Callbacks callbacks,
               std::chrono::milliseconds backoff = std::chrono::milliseconds(500));
  ~OverlayWatch();  // stop()
  OverlayWatch(const OverlayWatch&) = delete;
  OverlayWatch& operator=(const OverlayWatch&) = delete;

  void start();
  void stop();
  // NETWORK is watched from now on; one watched already is listed again (a network made again
  // here: its new device has none of the entries programmed before).
  void watch(const std::string& network);
  void unwatch(const std::string& network);

  // Returns from the wait on the stream (an event, a rebuild, a lost store): 0 while idle.
  [[nodiscard]] uint64_t wakeups() const { return wakeups_; }
  [[nodiscard]] uint64_t streams() const { return streams_; }  // streams opened

 private:
  void run();
  // Waits until watch/unwatch/stop (at most D when D is not kNoTimeout).
  void wait(std::chrono::milliseconds d);
  bool hold(EventStream* stream);
  void deliver(const std::vector<Event>& events);

  Store& store_;
  Callbacks callbacks_;
  std::chrono::milliseconds backoff_;
  std::atomic<uint64_t> wakeups_{0}, streams_{0};

  std::mutex mu_;  // the fields below, against the watch thread
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<std::string, bool> pending_;  // network → (re)list it (true) or drop it (false)
  EventStream* stream_ = nullptr;        // the stream the thread waits on, owned by run()
  std::thread thread_;

  // The watch thread's own: each watched network's first revision not delivered yet.
  std::map<std::string, Revision> from_;
};

}  // namespace stack::cluster
