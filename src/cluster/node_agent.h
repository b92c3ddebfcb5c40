// The cluster agent of one daemon: keeps this node registered under /stack/nodes/<name> with
// a lease (keepalive every TTL/3), registers again after losing it, and retries with backoff
// while the store is unreachable; containers and the API never wait for it. Its own threads:
// one for the lease, one for the API's store queries. Logs as component "cluster".
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "cluster/node_record.h"
#include "cluster/store.h"

namespace stack::cluster {

struct AgentOptions {
  NodeRecord record;  // what is registered (its labels come from the store)
  std::chrono::seconds ttl{10};
  std::chrono::milliseconds backoff_min{250};
  std::chrono::milliseconds backoff_max{5000};
};

class NodeAgent {
 public:
  enum class State { Joining, Ready, Refused, Unreachable };
  struct Status {
    State state = State::Joining;
    std::string error;  // why it is not Ready
    LeaseId lease = 0;
  };

  NodeAgent(std::shared_ptr<Store> store, AgentOptions options);
  ~NodeAgent();  // stop(false)
  NodeAgent(const NodeAgent&) = delete;
  NodeAgent& operator=(const NodeAgent&) = delete;

  // The first registration, on the calling thread, before the daemon serves: an error when
  // another daemon holds the name (EEXIST). An unreachable store is not an error here: the
  // agent keeps trying once started.
  [[nodiscard]] Result<void> join();
  // Starts the agent's threads.
  void start();
  // Stops them. LEAVE: revokes the lease, so the node shows down at once (a daemon stopped on
  // purpose); a killed daemon's lease expires after the TTL instead.
  void stop(bool leave);

  // One step of the lease thread: keeps the lease alive, or registers; returns how long to
  // wait before the next. Public for tests, which drive it without the thread.
  std::chrono::milliseconds step();
  [[nodiscard]] Status status() const;
  [[nodiscard]] const std::string& name() const { return options_.record.name; }
  // The underlay address this node advertises (the VXLAN endpoint of its overlays).
  [[nodiscard]] const std::string& address() const { return options_.record.address; }
  [[nodiscard]] Store& store() { return *store_; }
  // Runs WORK on the query thread (the API's blocking store calls), in order.
  void submit(std::function<void()> work);
  // Called on the lease thread after each registration under a new lease (the first, or after
  // the old one expired with the node's keys), once status() has it: what the node keeps in
  // the store under its lease is written again then, with no one polling status() for it.
  // Null: none.
  void on_registered(std::function<void(LeaseId)> listener);

 private:
  struct Threads;
  std::chrono::milliseconds backoff(State state, const Error& why);

  std::shared_ptr<Store> store_;
  AgentOptions options_;
  std::unique_ptr<Threads> threads_;
};

// A random daemon id (32 hex digits) kept in PATH (0600), created on first use.
[[nodiscard]] Result<std::string> ensure_daemon_id(const std::string& path);
// This host's capacity: usable CPUs (the daemon's affinity) and memory (MemTotal).
struct Capacity {
  int cpus = 0;
  std::int64_t memory_bytes = 0;
};
[[nodiscard]] Capacity observe_capacity();
// Milliseconds since the epoch as ISO 8601 UTC ("2026-11-30T12:00:00Z").
[[nodiscard]] std::string iso_utc(std::int64_t epoch_seconds);

}  // namespace stack::cluster
