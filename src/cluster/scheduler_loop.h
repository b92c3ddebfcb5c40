// The scheduler's loop on one node: every node campaigns on /stack/election/scheduler under its
// node lease; the leader reads nodes, labels, projects and assignments in one guarded read,
// places (scheduler.h) and writes the changes in transactions that hold only while its leader
// key lives, so a deposed leader writes nothing; then it waits for the next change (a watch).
// Its own thread; blocking store calls never run on the daemon's loop. Logs as "cluster".
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "cluster/scheduler.h"
#include "cluster/store.h"
#include "cluster/watcher_thread.h"

namespace stack::cluster {

struct SchedulerLoopOptions {
  std::string node;                // the candidate's value: this node's name
  std::function<LeaseId()> lease;  // the node's lease now (0: not registered yet)
  std::chrono::milliseconds campaign_timeout{2000};
  std::chrono::milliseconds backoff{500};
  // The leader passes at least this often, events or not: a safety net, should a watch event
  // ever be missed (a pass that then writes anything says so in the log).
  std::chrono::milliseconds resync{10000};
};

// What one pass of a leader did.
struct PassResult {
  bool leader = true;  // false: the leader key was gone, nothing was written
  Revision revision = 0;  // the store's revision after the pass
  // The snapshot it placed from: the loop watches from the next revision, so a change made
  // between the read and the pass's own writes wakes it (from REVISION it was never seen).
  Revision read_revision = 0;
  size_t writes = 0;      // assignment and per-node index keys put or deleted
  Schedule schedule;
};

// One leader pass against STORE, guarded by LEADER's key (create_revision unchanged). Public for
// tests and the simulation.
[[nodiscard]] Result<PassResult> schedule_pass(Store& store, const LeaderKey& leader);

// Waits only on streams, with no timeout, and so never wakes while nothing changes: the leader
// on one watch of what it places from (nodes, labels, projects, assignments) and of its own
// leader key, whose deletion (its node's lease gone, or a resign) is how it learns it no longer
// leads; a follower, once its campaign timed out, on a watch of the leader's key, campaigning
// again when that key goes. The only timed waits: a campaign's (campaign_timeout, once per
// change of leader) and the back-off while unregistered or while the store does not answer.
class SchedulerLoop {
 public:
  SchedulerLoop(std::shared_ptr<Store> store, SchedulerLoopOptions options);
  ~SchedulerLoop();  // stop()
  SchedulerLoop(const SchedulerLoop&) = delete;
  SchedulerLoop& operator=(const SchedulerLoop&) = delete;

  void start();
  void stop();  // prompt: cancels the stream the loop waits on
  [[nodiscard]] bool leading() const { return leading_; }
  [[nodiscard]] uint64_t passes() const { return passes_; }
  // Returns from the wait on a stream (an event, a lost store): 0 while nothing changes.
  [[nodiscard]] uint64_t wakeups() const { return wakeups_; }
  [[nodiscard]] uint64_t campaigns() const { return campaigns_; }

 private:
  void run();
  void lead(const LeaderKey& key);
  void follow();
  // The next events of STREAM within TIMEOUT (none: empty), held for stop() meanwhile; an
  // error when stopped or lost.
  Result<std::vector<Event>> next(EventStream& stream,
                                  std::chrono::milliseconds timeout = kNoTimeout);

  std::shared_ptr<Store> store_;
  SchedulerLoopOptions options_;
  std::atomic<bool> leading_{false};
  std::atomic<uint64_t> passes_{0}, wakeups_{0}, campaigns_{0};
  WatcherThread thread_;  // last: stopped first
};

}  // namespace stack::cluster
