// The cluster's store: a synchronous, thread-safe interface over etcd v3's data model (keys,
// revisions, transactions, leases, watches, election). Implemented by MemoryStore (in process,
// tests and the simulation) and EtcdStore (etcd's v3 JSON gateway). Header-light on purpose:
// no Asio, Beast or JSON here. Blocking calls belong on the cluster agent's threads, never on
// the daemon's event loop.
//
// Key layout (everything under /stack/):
//   /stack/nodes/<node>                                 node record, under the node's lease
//   /stack/node-labels/<node>                           the node's labels
//   /stack/ipam/<network>/subnet                        the network's subnet (CIDR text)
//   /stack/ipam/<network>/addr/<ip>                     → owner (node/container); created with
//                                                         create_revision == 0, never overwritten
//   /stack/overlay/<network>/endpoints/<node>/<container> → {ip, mac, underlay} (node's lease)
//   /stack/assign/<project>/<service>/<slot>            → node
//   /stack/node-assign/<node>/<project>/<service>/<slot> → node: the same slot indexed by node,
//                                                         written in the same leader-guarded txn,
//                                                         so each node watches only its own
//   /stack/election/scheduler                           election prefix of the scheduler
//
// Semantics follow etcd's, so one conformance suite runs against both implementations:
// - the store's revision starts at 1 and goes up by one per write transaction (a txn with
//   several writes, or an erase of several keys, is one revision; an erase that finds nothing
//   and a txn that writes nothing do not count);
// - a key's create_revision/mod_revision are the revisions of its creation and last change,
//   version counts its puts since creation (1 after the first); a missing key compares as 0 on
//   version/create/mod, and a value compare on a missing key is false;
// - a lease's keys are deleted (delete events emitted) when it expires or is revoked;
// - election keys are "<name>/<lease in lower-case hex>"; the leader is the key with the
//   lowest create_revision under "<name>/".
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace stack::cluster {

using Revision = std::int64_t;
using LeaseId = std::int64_t;  // 0: no lease

struct KeyValue {
  std::string key;
  std::string value;  // bytes
  Revision create_revision = 0;
  Revision mod_revision = 0;
  std::int64_t version = 0;
  LeaseId lease = 0;
  bool operator==(const KeyValue&) const = default;
};

// A key, or every key that starts with it (prefix; an empty prefix is every key).
struct KeyRange {
  std::string key;
  bool prefix = false;
  static KeyRange exact(std::string k) { return {std::move(k), false}; }
  static KeyRange with_prefix(std::string p) { return {std::move(p), true}; }
};

struct RangeResult {
  std::vector<KeyValue> kvs;  // sorted by key
  Revision revision = 0;      // the store's revision when read
};

struct Compare {
  enum class Target { Version, CreateRevision, ModRevision, Value };
  enum class Op { Equal, NotEqual, Greater, Less };
  std::string key;
  Target target = Target::Version;
  Op op = Op::Equal;
  std::int64_t number = 0;  // Version / CreateRevision / ModRevision
  std::string value;        // Value

  // "key does not exist": create_revision == 0.
  static Compare absent(std::string k) {
    return {std::move(k), Target::CreateRevision, Op::Equal, 0, {}};
  }
  static Compare version(std::string k, Op op, std::int64_t n) {
    return {std::move(k), Target::Version, op, n, {}};
  }
  static Compare create_revision(std::string k, Op op, Revision r) {
    return {std::move(k), Target::CreateRevision, op, r, {}};
  }
  static Compare mod_revision(std::string k, Op op, Revision r) {
    return {std::move(k), Target::ModRevision, op, r, {}};
  }
  static Compare value_is(std::string k, Op op, std::string v) {
    return {std::move(k), Target::Value, op, 0, std::move(v)};
  }
};

// One operation of a transaction branch.
struct TxnOp {
  enum class Kind { Put, Erase, Get };
  Kind kind = Kind::Get;
  KeyRange range;     // Put uses range.key only
  std::string value;  // Put
  LeaseId lease = 0;  // Put

  static TxnOp put(std::string k, std::string v, LeaseId l = 0) {
    return {Kind::Put, KeyRange::exact(std::move(k)), std::move(v), l};
  }
  static TxnOp erase(KeyRange r) { return {Kind::Erase, std::move(r), {}, 0}; }
  static TxnOp get(KeyRange r) { return {Kind::Get, std::move(r), {}, 0}; }
};

struct TxnOpResult {
  std::vector<KeyValue> kvs;  // Get
  std::int64_t deleted = 0;   // Erase
};

struct TxnResult {
  bool succeeded = false;            // every compare held: the then-branch ran
  Revision revision = 0;             // the store's revision after the txn
  std::vector<TxnOpResult> results;  // one per op of the branch that ran
};

struct Event {
  enum class Type { Put, Delete };
  Type type = Type::Put;
  KeyValue kv;  // Delete: key and mod_revision (the deletion's revision) only
  bool operator==(const Event&) const = default;
};

// A stream of events (a watch) or of leaders (an observation), read by one thread at a time.
// Closed by cancel() or on destruction; a stream whose store is lost answers next() with an
// error (EtcdStore's first tries the other members, resuming after the last event it gave).
class EventStream {
 public:
  virtual ~EventStream() = default;
  // Waits at most TIMEOUT for events; an empty vector when none came (0 polls).
  [[nodiscard]] virtual Result<std::vector<Event>> next(std::chrono::milliseconds timeout) = 0;
  // May be called from another thread while next() waits: that next() returns an error at
  // once (how a thread blocked on a stream with no timeout is stopped).
  virtual void cancel() = 0;
};

// A next() timeout that is no timeout: a reader woken only by events, a lost store or cancel().
inline constexpr std::chrono::milliseconds kNoTimeout = std::chrono::hours(24);

struct Lease {
  LeaseId id = 0;
  std::int64_t ttl_seconds = 0;  // as granted (etcd raises a TTL below its minimum)
};

// What campaign gives the leader: needed to proclaim or resign.
struct LeaderKey {
  std::string name;
  std::string key;  // "<name>/<lease hex>"
  Revision create_revision = 0;
  LeaseId lease = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  [[nodiscard]] virtual Result<RangeResult> range(const KeyRange& r) = 0;
  // The store's revision after the put.
  [[nodiscard]] virtual Result<Revision> put(const std::string& key, const std::string& value,
                                             LeaseId lease = 0) = 0;
  // How many keys were deleted.
  [[nodiscard]] virtual Result<std::int64_t> erase(const KeyRange& r) = 0;
  [[nodiscard]] virtual Result<TxnResult> txn(const std::vector<Compare>& compares,
                                              const std::vector<TxnOp>& then_ops,
                                              const std::vector<TxnOp>& else_ops) = 0;
  // Forgets the history before REVISION: a watch from an older revision fails.
  [[nodiscard]] virtual Result<void> compact(Revision revision) = 0;

  [[nodiscard]] virtual Result<Lease> grant(std::int64_t ttl_seconds) = 0;
  // The TTL again; an error when the lease expired or was revoked.
  [[nodiscard]] virtual Result<std::int64_t> keepalive(LeaseId lease) = 0;
  [[nodiscard]] virtual Result<void> revoke(LeaseId lease) = 0;

  // Events on any of RANGES with mod_revision >= FROM (history included), in one stream, so a
  // reader waits on them all at once; FROM 0 = from now on. A range's events come in revision
  // order; the events of two ranges may interleave otherwise (etcd: one watcher per range).
  [[nodiscard]] virtual Result<std::unique_ptr<EventStream>> watch_ranges(
      const std::vector<KeyRange>& ranges, Revision from = 0) = 0;
  [[nodiscard]] Result<std::unique_ptr<EventStream>> watch(const KeyRange& r, Revision from = 0) {
    return watch_ranges({r}, from);
  }

  // Blocks until this candidate leads NAME (at most TIMEOUT: then the candidacy is withdrawn
  // and an error returned). The candidacy lives as long as LEASE.
  [[nodiscard]] virtual Result<LeaderKey> campaign(const std::string& name,
                                                   const std::string& value, LeaseId lease,
                                                   std::chrono::milliseconds timeout) = 0;
  // Changes the leader's value (its observers see it).
  [[nodiscard]] virtual Result<void> proclaim(const LeaderKey& leader,
                                              const std::string& value) = 0;
  // The current leader's key and value; an error when there is none.
  [[nodiscard]] virtual Result<KeyValue> leader(const std::string& name) = 0;
  [[nodiscard]] virtual Result<void> resign(const LeaderKey& leader) = 0;
  // Put events carrying the leader's key and value: the current one first (when there is one),
  // then each new leader or proclaimed value.
  [[nodiscard]] virtual Result<std::unique_ptr<EventStream>> observe(const std::string& name) = 0;
};

// Key layout helpers (the table above).
namespace keys {
inline std::string node(std::string_view n) { return "/stack/nodes/" + std::string(n); }
inline std::string node_labels(std::string_view n) {
  return "/stack/node-labels/" + std::string(n);
}
inline std::string ipam_subnet(std::string_view net) {
  return "/stack/ipam/" + std::string(net) + "/subnet";
}
inline std::string ipam_addrs(std::string_view net) {
  return "/stack/ipam/" + std::string(net) + "/addr/";
}
inline std::string ipam_addr(std::string_view net, std::string_view ip) {
  return ipam_addrs(net) + std::string(ip);
}
inline std::string overlay_endpoints(std::string_view net) {
  return "/stack/overlay/" + std::string(net) + "/endpoints/";
}
inline std::string overlay_endpoint(std::string_view net, std::string_view node,
                                    std::string_view container) {
  return overlay_endpoints(net) + std::string(node) + "/" + std::string(container);
}
inline std::string assign(std::string_view project, std::string_view service, int slot) {
  return "/stack/assign/" + std::string(project) + "/" + std::string(service) + "/" +
         std::to_string(slot);
}
inline std::string node_assigns(std::string_view node) {
  return "/stack/node-assign/" + std::string(node) + "/";
}
inline std::string node_assign(std::string_view node, std::string_view project,
                               std::string_view service, int slot) {
  return node_assigns(node) + std::string(project) + "/" + std::string(service) + "/" +
         std::to_string(slot);
}
inline constexpr std::string_view kSchedulerElection = "/stack/election/scheduler";
}  // namespace keys

}  // namespace stack::cluster
