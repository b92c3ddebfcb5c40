// What one node runs: the projects of the cluster and, of each, the slots assigned to this node
// (/stack/projects/, this node's index /stack/node-assign/<node>/). A thread reads them at one
// revision, hands each new view to a callback (the daemon posts it to its loop), then waits on
// one stream watching both prefixes (projects, its own index), with no timeout: it wakes on a
// change, a lost store or stop(), never to poll; another node's slots never wake it.
// The store unreachable: no view is handed on, so what runs keeps running. Logs as "cluster".
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "cluster/project_record.h"
#include "cluster/store.h"
#include "cluster/watcher_thread.h"

namespace stack::cluster {

struct LocalProject {
  ProjectRecord project;
  std::map<std::string, std::set<int>> slots;  // service → its slots on this node
};
// Every project of the cluster by name (one with no slot here too: what runs of it goes).
using LocalView = std::map<std::string, LocalProject>;

[[nodiscard]] bool same_view(const LocalView& a, const LocalView& b);

// The view of NODE at one revision (the revision read).
[[nodiscard]] Result<std::pair<LocalView, Revision>> read_local_view(Store& store,
                                                                     const std::string& node);
// PROJECT's slots on every node: (service, slot, node), from /stack/assign/<project>/.
[[nodiscard]] Result<std::vector<std::tuple<std::string, int, std::string>>> read_project_slots(
    Store& store, const std::string& project);

class AssignmentWatch {
 public:
  using Callback = std::function<void(LocalView)>;
  AssignmentWatch(std::shared_ptr<Store> store, std::string node, Callback on_change,
                  std::chrono::milliseconds backoff = std::chrono::milliseconds(500));
  ~AssignmentWatch();  // stop()
  AssignmentWatch(const AssignmentWatch&) = delete;
  AssignmentWatch& operator=(const AssignmentWatch&) = delete;
  void start();
  void stop();
  [[nodiscard]] uint64_t views() const { return views_; }    // views handed on
  [[nodiscard]] uint64_t events() const { return events_; }  // watch events received
  // Returns from the wait on the stream (an event, a lost store): 0 while nothing changes.
  [[nodiscard]] uint64_t wakeups() const { return wakeups_; }

 private:
  void run();

  std::shared_ptr<Store> store_;
  std::string node_;
  Callback on_change_;
  std::chrono::milliseconds backoff_;
  std::atomic<uint64_t> views_{0}, events_{0}, wakeups_{0};
  WatcherThread thread_;  // last: stopped first
};

}  // namespace stack::cluster
