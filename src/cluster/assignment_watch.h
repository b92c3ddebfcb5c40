// What one node runs: the projects of the cluster and, of each, the slots assigned to this node
// (/stack/projects/, /stack/assign/). A thread reads them at one revision, hands each new view
// to a callback (the daemon posts it to its loop), then waits on a watch for the next change.
// The store unreachable: no view is handed on, so what runs keeps running. Logs as "cluster".
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <tuple>
#include <vector>
#include <string>
#include <thread>

#include "cluster/project_record.h"
#include "cluster/store.h"

namespace stack::cluster {

struct LocalProject {
  ProjectRecord project;
  std::map<std::string, std::set<int>> slots;  // service → its slots on this node
};
// Every project of the cluster by name (one with no slot here too: what runs of it goes).
using LocalView = std::map<std::string, LocalProject>;

[[nodiscard]] bool same_view(const LocalView& a, const LocalView& b);

// The view of NODE at one revision (the revision read).
// Every slot of every project: (service, slot, node) by project.
using SlotTable = std::map<std::string, std::vector<std::tuple<std::string, int, std::string>>>;
[[nodiscard]] Result<std::pair<LocalView, Revision>> read_local_view(Store& store,
                                                                     const std::string& node,
                                                                     SlotTable* all = nullptr);

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
  [[nodiscard]] uint64_t views() const { return views_; }  // views handed on
  // PROJECT's slots on every node as last read (`ps` shows them without asking the store).
  [[nodiscard]] std::vector<std::tuple<std::string, int, std::string>> slots_of(
      const std::string& project) const;

 private:
  void run();
  bool wait(std::chrono::milliseconds d);

  std::shared_ptr<Store> store_;
  std::string node_;
  Callback on_change_;
  std::chrono::milliseconds backoff_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> views_{0};
  std::thread thread_;
  mutable std::mutex mu_;
  SlotTable all_;
};

}  // namespace stack::cluster
