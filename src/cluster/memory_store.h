// MemoryStore: the Store in one process, with etcd's semantics (store.h), for unit tests and the
// 1,000-node simulation. Leases expire by an injectable clock; it never touches the host.
// Thread-safe: one mutex; streams keep the store's state alive after the store is gone.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "cluster/store.h"

namespace stack::cluster {

namespace detail {
struct MemoryCore;
}

class MemoryStore final : public Store {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // etcd 3.4 raises a lease's TTL to 2 s at least (3/2 election timeouts, rounded up).
  static constexpr std::int64_t kMinLeaseTtl = 2;

  MemoryStore();
  explicit MemoryStore(Clock now);
  ~MemoryStore() override;
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  Result<RangeResult> range(const KeyRange& r) override;
  Result<Revision> put(const std::string& key, const std::string& value,
                       LeaseId lease = 0) override;
  Result<std::int64_t> erase(const KeyRange& r) override;
  Result<TxnResult> txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& then_ops,
                        const std::vector<TxnOp>& else_ops) override;
  Result<void> compact(Revision revision) override;

  Result<Lease> grant(std::int64_t ttl_seconds) override;
  Result<std::int64_t> keepalive(LeaseId lease) override;
  Result<void> revoke(LeaseId lease) override;

  Result<std::unique_ptr<EventStream>> watch_ranges(const std::vector<KeyRange>& ranges,
                                                    Revision from = 0) override;

  Result<LeaderKey> campaign(const std::string& name, const std::string& value, LeaseId lease,
                             std::chrono::milliseconds timeout) override;
  Result<void> proclaim(const LeaderKey& leader, const std::string& value) override;
  Result<KeyValue> leader(const std::string& name) override;
  Result<void> resign(const LeaderKey& leader) override;
  Result<std::unique_ptr<EventStream>> observe(const std::string& name) override;

  // Deletes the keys of leases whose time has come by the clock. Every call does it first;
  // a test that moves its clock calls this to see the effect without another operation.
  void expire_leases();

  // What was written and delivered, for the simulation's figures.
  struct Stats {
    std::int64_t keys_put = 0;      // key writes (a txn's puts each count)
    std::int64_t bytes_put = 0;     // key + value bytes of those writes
    std::int64_t keys_deleted = 0;  // by erase, txn or lease expiry/revoke
    std::int64_t events_delivered = 0;  // events handed out by watch streams' next()
  };
  [[nodiscard]] Stats stats() const;
  void reset_stats();

 private:
  std::shared_ptr<detail::MemoryCore> core_;
};

}  // namespace stack::cluster
