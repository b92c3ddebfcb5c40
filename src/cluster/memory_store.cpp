// MemoryStore: keys, history, leases and waiters behind one mutex and one condition variable.
// Every write bumps the revision once and appends its events to the history and to each
// matching watcher's queue; blocking calls wait on the condition variable, never spin.
#include "cluster/memory_store.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

namespace stack::cluster {

namespace {

using TimePoint = std::chrono::steady_clock::time_point;

bool in_range(const KeyRange& r, const std::string& key) {
  if (!r.prefix) return key == r.key;
  return key.compare(0, r.key.size(), r.key) == 0;
}

bool in_any(const std::vector<KeyRange>& ranges, const std::string& key) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const KeyRange& r) { return in_range(r, key); });
}

// "/a/,/b/": the ranges of a watch, for its messages.
std::string ranges_text(const std::vector<KeyRange>& ranges) {
  std::string out;
  for (const auto& r : ranges) out += (out.empty() ? "" : ",") + r.key;
  return out;
}

std::string lease_hex(LeaseId id) {
  std::ostringstream s;
  s << std::hex << id;
  return s.str();
}

template <class T>
bool compare_with(const T& actual, Compare::Op op, const T& wanted) {
  switch (op) {
    case Compare::Op::Equal: return actual == wanted;
    case Compare::Op::NotEqual: return actual != wanted;
    case Compare::Op::Greater: return actual > wanted;
    case Compare::Op::Less: return actual < wanted;
  }
  return false;
}

}  // namespace

namespace detail {

struct Watcher {
  std::vector<KeyRange> ranges;
  Revision from = 0;  // events before it are not for this watcher (a future start)
  std::deque<Event> queue;
  bool cancelled = false;
};

struct MemoryCore {
  struct LeaseRec {
    std::int64_t ttl = 0;
    TimePoint deadline;
    std::set<std::string> keys;
  };

  std::mutex mu;
  std::condition_variable cv;
  MemoryStore::Clock now;
  Revision rev = 1;  // etcd's empty store is at revision 1
  Revision compacted = 0;
  std::map<std::string, KeyValue> kvs;
  std::vector<Event> history;
  std::map<LeaseId, LeaseRec> leases;
  LeaseId next_lease = 0x7a3e0001;
  std::vector<std::shared_ptr<Watcher>> watchers;
  MemoryStore::Stats stats;

  // Events of the write in progress (one revision), published by commit().
  std::vector<Event> pending;

  void record(Event e) { pending.push_back(std::move(e)); }

  // Ends a write: one revision for all its changes, none when nothing changed.
  void commit() {
    if (pending.empty()) return;
    for (auto& w : watchers)
      for (const auto& e : pending)
        if (!w->cancelled && e.kv.mod_revision >= w->from && in_any(w->ranges, e.kv.key))
          w->queue.push_back(e);
    history.insert(history.end(), pending.begin(), pending.end());
    pending.clear();
    cv.notify_all();
  }

  // The revision the write in progress writes at.
  Revision write_rev() {
    if (pending.empty()) return rev + 1;
    return rev;
  }

  void do_put(const std::string& key, const std::string& value, LeaseId lease) {
    Revision r = write_rev();
    rev = r;
    auto& kv = kvs[key];
    if (kv.create_revision == 0) {
      kv.key = key;
      kv.create_revision = r;
      kv.version = 0;
    }
    if (kv.lease != 0 && kv.lease != lease) {
      if (auto it = leases.find(kv.lease); it != leases.end()) it->second.keys.erase(key);
    }
    kv.value = value;
    kv.mod_revision = r;
    kv.version += 1;
    kv.lease = lease;
    if (lease != 0) leases[lease].keys.insert(key);
    stats.keys_put += 1;
    stats.bytes_put += static_cast<std::int64_t>(key.size() + value.size());
    record(Event{Event::Type::Put, kv});
  }

  std::int64_t do_erase(const KeyRange& r) {
    std::vector<std::string> doomed;
    if (r.prefix) {
      for (auto it = kvs.lower_bound(r.key); it != kvs.end() && in_range(r, it->first); ++it)
        doomed.push_back(it->first);
    } else if (kvs.count(r.key)) {
      doomed.push_back(r.key);
    }
    if (doomed.empty()) return 0;
    Revision rv = write_rev();
    rev = rv;
    for (const auto& key : doomed) {
      auto it = kvs.find(key);
      if (it->second.lease != 0)
        if (auto l = leases.find(it->second.lease); l != leases.end()) l->second.keys.erase(key);
      kvs.erase(it);
      KeyValue gone;
      gone.key = key;
      gone.mod_revision = rv;
      record(Event{Event::Type::Delete, gone});
    }
    stats.keys_deleted += static_cast<std::int64_t>(doomed.size());
    return static_cast<std::int64_t>(doomed.size());
  }

  std::vector<KeyValue> do_range(const KeyRange& r) const {
    std::vector<KeyValue> out;
    if (r.prefix) {
      for (auto it = kvs.lower_bound(r.key); it != kvs.end() && in_range(r, it->first); ++it)
        out.push_back(it->second);
    } else if (auto it = kvs.find(r.key); it != kvs.end()) {
      out.push_back(it->second);
    }
    return out;
  }

  // etcd revokes each lease in its own write: one revision per lease.
  void drop_lease(std::map<LeaseId, LeaseRec>::iterator it) {
    auto keys = std::move(it->second.keys);
    leases.erase(it);
    for (const auto& k : keys) do_erase(KeyRange::exact(k));
    commit();
  }

  void expire() {
    auto t = now();
    for (auto it = leases.begin(); it != leases.end();) {
      auto next = std::next(it);
      if (it->second.deadline <= t) drop_lease(it);
      it = next;
    }
  }

  // How long a waiter may sleep: until DEADLINE (real time) or the next lease deadline.
  TimePoint wake_at(TimePoint deadline) {
    auto t = now();
    auto real_now = std::chrono::steady_clock::now();
    TimePoint wake = deadline;
    for (const auto& [id, l] : leases) {
      auto in = l.deadline - t;
      if (in < std::chrono::milliseconds(1)) in = std::chrono::milliseconds(1);
      wake = std::min(wake, real_now + std::chrono::duration_cast<std::chrono::nanoseconds>(in));
    }
    return wake;
  }

  bool compare(const Compare& c) const {
    auto it = kvs.find(c.key);
    if (c.target == Compare::Target::Value) {
      if (it == kvs.end()) return false;
      return compare_with(it->second.value, c.op, c.value);
    }
    std::int64_t actual = 0;
    if (it != kvs.end()) {
      switch (c.target) {
        case Compare::Target::Version: actual = it->second.version; break;
        case Compare::Target::CreateRevision: actual = it->second.create_revision; break;
        case Compare::Target::ModRevision: actual = it->second.mod_revision; break;
        case Compare::Target::Value: break;
      }
    }
    return compare_with(actual, c.op, c.number);
  }

  // The leader of election NAME: the lowest create_revision under "<name>/".
  const KeyValue* leader_of(const std::string& name) const {
    const KeyValue* best = nullptr;
    KeyRange r = KeyRange::with_prefix(name + "/");
    for (auto it = kvs.lower_bound(r.key); it != kvs.end() && in_range(r, it->first); ++it)
      if (!best || it->second.create_revision < best->create_revision) best = &it->second;
    return best;
  }
};

}  // namespace detail

namespace {

using detail::MemoryCore;

class MemoryWatch final : public EventStream {
 public:
  MemoryWatch(std::shared_ptr<MemoryCore> core, std::shared_ptr<detail::Watcher> w)
      : core_(std::move(core)), w_(std::move(w)) {}
  ~MemoryWatch() override { cancel(); }

  Result<std::vector<Event>> next(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(core_->mu);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      core_->expire();
      if (w_->cancelled) return fail("watch " + ranges_text(w_->ranges) + ": cancelled");
      if (!w_->queue.empty()) {
        std::vector<Event> out(w_->queue.begin(), w_->queue.end());
        w_->queue.clear();
        core_->stats.events_delivered += static_cast<std::int64_t>(out.size());
        return out;
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::vector<Event>{};
      core_->cv.wait_until(lock, core_->wake_at(deadline));
    }
  }

  void cancel() override {
    std::lock_guard lock(core_->mu);
    if (w_->cancelled) return;
    w_->cancelled = true;
    auto& ws = core_->watchers;
    ws.erase(std::remove(ws.begin(), ws.end(), w_), ws.end());
    core_->cv.notify_all();
  }

 private:
  std::shared_ptr<MemoryCore> core_;
  std::shared_ptr<detail::Watcher> w_;
};

// Leaders of one election: the current one, then each change of leader key or value.
class MemoryObserve final : public EventStream {
 public:
  MemoryObserve(std::shared_ptr<MemoryCore> core, std::string name)
      : core_(std::move(core)), name_(std::move(name)) {}
  ~MemoryObserve() override { cancel(); }

  Result<std::vector<Event>> next(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(core_->mu);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      core_->expire();
      if (cancelled_) return fail("observe " + name_ + ": cancelled");
      if (const KeyValue* l = core_->leader_of(name_);
          l && (l->key != last_.key || l->mod_revision != last_.mod_revision)) {
        last_ = *l;
        core_->stats.events_delivered += 1;
        return std::vector<Event>{Event{Event::Type::Put, *l}};
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::vector<Event>{};
      core_->cv.wait_until(lock, core_->wake_at(deadline));
    }
  }

  void cancel() override {
    std::lock_guard lock(core_->mu);
    cancelled_ = true;
    core_->cv.notify_all();
  }

 private:
  std::shared_ptr<MemoryCore> core_;
  std::string name_;
  KeyValue last_;
  bool cancelled_ = false;
};

}  // namespace

MemoryStore::MemoryStore() : MemoryStore([] { return std::chrono::steady_clock::now(); }) {}

MemoryStore::MemoryStore(Clock now) : core_(std::make_shared<MemoryCore>()) {
  core_->now = std::move(now);
}

MemoryStore::~MemoryStore() {
  std::lock_guard lock(core_->mu);
  for (auto& w : core_->watchers) w->cancelled = true;
  core_->watchers.clear();
  core_->cv.notify_all();
}

void MemoryStore::expire_leases() {
  std::lock_guard lock(core_->mu);
  core_->expire();
}

MemoryStore::Stats MemoryStore::stats() const {
  std::lock_guard lock(core_->mu);
  return core_->stats;
}

void MemoryStore::reset_stats() {
  std::lock_guard lock(core_->mu);
  core_->stats = {};
}

Result<RangeResult> MemoryStore::range(const KeyRange& r) {
  std::lock_guard lock(core_->mu);
  core_->expire();
  return RangeResult{core_->do_range(r), core_->rev};
}

Result<Revision> MemoryStore::put(const std::string& key, const std::string& value,
                                  LeaseId lease) {
  std::lock_guard lock(core_->mu);
  core_->expire();
  if (key.empty()) return fail("put: empty key");
  if (lease != 0 && !core_->leases.count(lease))
    return fail("put " + key + ": lease " + lease_hex(lease) + " not found");
  core_->do_put(key, value, lease);
  core_->commit();
  return core_->rev;
}

Result<std::int64_t> MemoryStore::erase(const KeyRange& r) {
  std::lock_guard lock(core_->mu);
  core_->expire();
  auto n = core_->do_erase(r);
  core_->commit();
  return n;
}

Result<TxnResult> MemoryStore::txn(const std::vector<Compare>& compares,
                                   const std::vector<TxnOp>& then_ops,
                                   const std::vector<TxnOp>& else_ops) {
  std::lock_guard lock(core_->mu);
  core_->expire();
  bool ok = std::all_of(compares.begin(), compares.end(),
                        [&](const Compare& c) { return core_->compare(c); });
  const auto& ops = ok ? then_ops : else_ops;
  // Checked before any write, as etcd does, so a refused txn changes nothing.
  std::set<std::string> written;
  for (const auto& op : ops) {
    if (op.kind == TxnOp::Kind::Put) {
      if (op.lease != 0 && !core_->leases.count(op.lease))
        return fail("txn: put " + op.range.key + ": lease " + lease_hex(op.lease) +
                    " not found");
      if (!written.insert(op.range.key).second)
        return fail("txn: duplicate key given in txn request: " + op.range.key);
    }
  }
  TxnResult out;
  out.succeeded = ok;
  for (const auto& op : ops) {
    TxnOpResult res;
    switch (op.kind) {
      case TxnOp::Kind::Put: core_->do_put(op.range.key, op.value, op.lease); break;
      case TxnOp::Kind::Erase: res.deleted = core_->do_erase(op.range); break;
      case TxnOp::Kind::Get: res.kvs = core_->do_range(op.range); break;
    }
    out.results.push_back(std::move(res));
  }
  core_->commit();
  out.revision = core_->rev;
  return out;
}

Result<void> MemoryStore::compact(Revision revision) {
  std::lock_guard lock(core_->mu);
  if (revision > core_->rev)
    return fail("compact " + std::to_string(revision) + ": required revision is a future revision");
  if (revision <= core_->compacted)
    return fail("compact " + std::to_string(revision) +
                ": required revision has been compacted");
  core_->compacted = revision;
  auto& h = core_->history;
  h.erase(std::remove_if(h.begin(), h.end(),
                         [&](const Event& e) { return e.kv.mod_revision < revision; }),
          h.end());
  return {};
}

Result<Lease> MemoryStore::grant(std::int64_t ttl_seconds) {
  std::lock_guard lock(core_->mu);
  core_->expire();
  if (ttl_seconds <= 0) return fail("grant: TTL must be positive, not " +
                                    std::to_string(ttl_seconds));
  auto ttl = std::max(ttl_seconds, kMinLeaseTtl);
  LeaseId id = core_->next_lease++;
  auto& l = core_->leases[id];
  l.ttl = ttl;
  l.deadline = core_->now() + std::chrono::seconds(ttl);
  return Lease{id, ttl};
}

Result<std::int64_t> MemoryStore::keepalive(LeaseId lease) {
  std::lock_guard lock(core_->mu);
  core_->expire();
  auto it = core_->leases.find(lease);
  if (it == core_->leases.end())
    return fail("keepalive " + lease_hex(lease) + ": lease not found");
  it->second.deadline = core_->now() + std::chrono::seconds(it->second.ttl);
  return it->second.ttl;
}

Result<void> MemoryStore::revoke(LeaseId lease) {
  std::lock_guard lock(core_->mu);
  core_->expire();
  auto it = core_->leases.find(lease);
  if (it == core_->leases.end()) return fail("revoke " + lease_hex(lease) + ": lease not found");
  core_->drop_lease(it);
  return {};
}

Result<std::unique_ptr<EventStream>> MemoryStore::watch_ranges(const std::vector<KeyRange>& ranges,
                                                              Revision from) {
  std::lock_guard lock(core_->mu);
  core_->expire();
  if (ranges.empty()) return fail("watch: no key range");
  if (from != 0 && from < core_->compacted)
    return fail("watch " + ranges_text(ranges) + " from " + std::to_string(from) +
                ": required revision has been compacted");
  auto w = std::make_shared<detail::Watcher>();
  w->ranges = ranges;
  w->from = from;
  if (from != 0)
    for (const auto& e : core_->history)
      if (e.kv.mod_revision >= from && in_any(ranges, e.kv.key)) w->queue.push_back(e);
  core_->watchers.push_back(w);
  return std::unique_ptr<EventStream>(std::make_unique<MemoryWatch>(core_, w));
}

Result<LeaderKey> MemoryStore::campaign(const std::string& name, const std::string& value,
                                        LeaseId lease, std::chrono::milliseconds timeout) {
  std::unique_lock lock(core_->mu);
  core_->expire();
  if (!core_->leases.count(lease))
    return fail("campaign " + name + ": lease " + lease_hex(lease) + " not found");
  std::string key = name + "/" + lease_hex(lease);
  auto it = core_->kvs.find(key);
  if (it == core_->kvs.end() || it->second.value != value) {
    core_->do_put(key, value, lease);
    core_->commit();
  }
  const Revision mine = core_->kvs[key].create_revision;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    core_->expire();
    const KeyValue* l = core_->leader_of(name);
    if (!l || !core_->kvs.count(key))
      return fail("campaign " + name + ": lease " + lease_hex(lease) + " expired while waiting");
    if (l->create_revision == mine) return LeaderKey{name, key, mine, lease};
    if (std::chrono::steady_clock::now() >= deadline) {
      // As etcd's server does when a campaign is cancelled: withdraw the candidacy.
      core_->do_erase(KeyRange::exact(key));
      core_->commit();
      return fail("campaign " + name + ": not leader after " + std::to_string(timeout.count()) +
                  " ms");
    }
    core_->cv.wait_until(lock, core_->wake_at(deadline));
  }
}

Result<void> MemoryStore::proclaim(const LeaderKey& leader, const std::string& value) {
  std::lock_guard lock(core_->mu);
  core_->expire();
  auto it = core_->kvs.find(leader.key);
  if (it == core_->kvs.end() || it->second.create_revision != leader.create_revision)
    return fail("proclaim " + leader.name + ": election: not leader");
  core_->do_put(leader.key, value, leader.lease);
  core_->commit();
  return {};
}

Result<KeyValue> MemoryStore::leader(const std::string& name) {
  std::lock_guard lock(core_->mu);
  core_->expire();
  const KeyValue* l = core_->leader_of(name);
  if (!l) return fail("leader " + name + ": election: no leader");
  return *l;
}

Result<void> MemoryStore::resign(const LeaderKey& leader) {
  std::lock_guard lock(core_->mu);
  core_->expire();
  auto it = core_->kvs.find(leader.key);
  if (it != core_->kvs.end() && it->second.create_revision == leader.create_revision) {
    core_->do_erase(KeyRange::exact(leader.key));
    core_->commit();
  }
  return {};
}

Result<std::unique_ptr<EventStream>> MemoryStore::observe(const std::string& name) {
  return std::unique_ptr<EventStream>(std::make_unique<MemoryObserve>(core_, name));
}

}  // namespace stack::cluster
