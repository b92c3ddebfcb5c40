// EtcdStore: requests as etcd's gateway JSON (int64 as strings, bytes as base64), a pool of
// keep-alive connections to the current member, and failover to the next member when one does
// not answer or says it cannot serve (no leader, leader changed, unavailable).
#include "cluster/etcd_store.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "cluster/etcd_http.h"
#include "cluster/etcd_json.h"

// Result<void>'s counterpart of STACK_TRY_CTX.
#define CLUSTER_TRY_VOID(expr, ctx)                                   \
  do {                                                                \
    if (auto cluster_r_ = (expr); !cluster_r_)                        \
      return ::stack::fail(cluster_r_.error().wrap(ctx));             \
  } while (0)

namespace stack::cluster {

using json = nlohmann::json;
using namespace etcd_json;

namespace {

std::chrono::milliseconds left(std::chrono::steady_clock::time_point deadline) {
  return std::max(std::chrono::milliseconds(1),
                  std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now()));
}

// A member that cannot serve now (another may): go to the next.
bool unavailable(std::int64_t code, const std::string& message) {
  if (code == 14 || code == 4) return true;  // gRPC Unavailable, DeadlineExceeded
  // etcd's own words; "election: no leader" is an answer, not an unavailable member.
  for (const char* m : {"etcdserver: no leader", "etcdserver: leader changed",
                        "etcdserver: request timed out", "etcdserver: too many requests",
                        "etcdserver: not capable", "etcdserver: server stopped"})
    if (message.find(m) != std::string::npos) return true;
  return false;
}

}  // namespace

struct EtcdStore::Impl {
  std::vector<Endpoint> endpoints;
  std::shared_ptr<TlsConfig> tls;
  std::chrono::milliseconds timeout{10000};
  std::chrono::milliseconds attempt_timeout{2000};

  std::mutex mu;
  size_t current = 0;
  std::vector<std::unique_ptr<HttpConnection>> idle;  // to endpoints[current]

  // Moves on from member IDX (unless another thread already did).
  void next_member(size_t idx) {
    std::lock_guard lock(mu);
    if (current != idx) return;
    current = (current + 1) % endpoints.size();
    idle.clear();
  }

  // A connection to the current member: a kept one when POOLED may be (then it says so), or
  // new. IDX says which member it is.
  Result<std::unique_ptr<HttpConnection>> take(size_t& idx,
                                               std::chrono::steady_clock::time_point deadline,
                                               bool& pooled) {
    {
      std::lock_guard lock(mu);
      idx = current;
      if (pooled && !idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        return c;
      }
    }
    pooled = false;
    return HttpConnection::open(endpoints[idx], tls, std::min(left(deadline), timeout));
  }

  // A new connection to the current member for a request that holds it (a watch stream, a
  // campaign): null when the member does not answer, LAST saying why and the next member made
  // current. Such a request gets each member twice, and once more.
  std::unique_ptr<HttpConnection> open_held(size_t& idx,
                                            std::chrono::steady_clock::time_point deadline,
                                            std::string& last) {
    bool pooled = false;
    auto conn = take(idx, deadline, pooled);
    if (conn) return std::move(*conn);
    last = conn.error().message;
    next_member(idx);
    return nullptr;
  }
  size_t held_attempts() const { return endpoints.size() * 2 + 1; }

  void give_back(size_t idx, std::unique_ptr<HttpConnection> c) {
    if (!c->reusable()) return;
    std::lock_guard lock(mu);
    if (idx == current && idle.size() < 8) idle.push_back(std::move(c));
  }

  // One request, with failover: the answer's JSON, or the member's error. Tried again while
  // the budget lasts, pausing after each round of every member.
  Result<json> call(const std::string& target, const json& body,
                    std::chrono::milliseconds budget = std::chrono::milliseconds(0)) {
    if (budget.count() == 0) budget = timeout;
    auto deadline = std::chrono::steady_clock::now() + budget;
    const std::string text = body.dump();
    std::string last = "no endpoint answered";
    size_t failures = 0;
    size_t refusals = 0;  // TLS handshakes that failed: asking again will not help
    auto failed = [&](size_t idx, std::string why) {
      if (why.find("TLS handshake") != std::string::npos) ++refusals;
      last = std::move(why);
      next_member(idx);
      if (++failures % endpoints.size() == 0)
        std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
            std::chrono::milliseconds(50) * (failures / endpoints.size()),
            std::chrono::milliseconds(500)));
    };
    for (bool first = true; first || std::chrono::steady_clock::now() < deadline; first = false) {
      size_t idx = 0;
      bool pooled = true;
      auto conn = take(idx, deadline, pooled);
      if (!conn) {
        failed(idx, conn.error().message);
        if (refusals == failures && failures >= endpoints.size()) break;
        continue;
      }
      // A member that lost its leader holds a request for up to 7 s before it says so: give
      // each attempt less, and try again (on the next member) while the budget lasts.
      auto resp = (*conn)->post(target, text, std::min(left(deadline), attempt_timeout));
      if (!resp) {
        // A kept connection the member closed meanwhile says nothing about the member.
        if (pooled && resp.error().message.find("timed out") == std::string::npos) continue;
        failed(idx, "etcd " + endpoints[idx].url + ": " + resp.error().message);
        continue;
      }
      give_back(idx, std::move(*conn));
      json j = json::parse(resp->body, nullptr, false);
      if (resp->status == 200 && !j.is_discarded()) return j;
      std::string message = error_text(j, resp->body);
      std::int64_t code = i64(j, "code");
      if (resp->status == 200) return fail(target + ": unreadable answer: " + resp->body);
      if (!unavailable(code, message)) return fail(target + ": " + message);
      failed(idx, "etcd " + endpoints[idx].url + ": " + message);
    }
    return fail(target + ": " + last);
  }
};

namespace {

// A watch (one watcher per range, all on one HTTP stream: the gateway passes each JSON request
// of the body on to etcd's watch stream) or an observation, as a stream of gateway messages;
// reconnects to the next member when its stream breaks and resumes each range after what it
// already gave. cancel() from another thread interrupts the connection a next() waits on.
class EtcdStream final : public EventStream {
 public:
  enum class Kind { Watch, Observe };
  EtcdStream(std::shared_ptr<EtcdStore::Impl> impl, Kind kind, std::vector<KeyRange> ranges,
             Revision from)
      : impl_(std::move(impl)), kind_(kind), ranges_(std::move(ranges)),
        next_rev_(ranges_.size(), from) {
    for (const auto& r : ranges_) what_ += (what_.empty() ? "" : ",") + r.key;
  }

  // Opens the stream; a watch returns once etcd confirmed each watcher (so no later write is
  // missed).
  Result<void> open(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string last;
    for (size_t attempt = 0; attempt < impl_->held_attempts(); ++attempt) {
      if (attempt > 0 && std::chrono::steady_clock::now() >= deadline) break;
      if (cancelled_) return fail("cancelled");
      size_t idx = 0;
      auto conn = impl_->open_held(idx, deadline, last);
      if (!conn) continue;
      std::string body, target;
      if (kind_ == Kind::Watch) {
        // One request a line; the k-th "created" answer is the k-th range's watcher.
        for (size_t i = 0; i < ranges_.size(); ++i) {
          json create;
          set_range(create, ranges_[i]);
          if (next_rev_[i]) create["start_revision"] = std::to_string(next_rev_[i]);
          body += json{{"create_request", create}}.dump() + "\n";
        }
        target = "/v3/watch";
      } else {
        body = json{{"name", b64(ranges_[0].key)}}.dump();
        target = "/v3/election/observe";
      }
      if (auto r = conn->open_stream(target, body, left(deadline)); !r) {
        last = r.error().message;
        impl_->next_member(idx);
        continue;
      }
      set_conn(std::move(conn));
      if (kind_ == Kind::Observe) return {};
      watcher_.clear();
      // The watch's first messages say each watcher was created (and at which revision).
      while (watcher_.size() < ranges_.size()) {
        auto m = conn_->next_message(left(deadline));
        if (!m || !*m) {
          last = m ? "etcd " + impl_->endpoints[idx].url + ": watch not confirmed"
                   : m.error().message;
          set_conn(nullptr);
          break;
        }
        auto handled = handle(**m);
        if (!handled) return fail(handled.error());
      }
      if (conn_) return {};
      if (cancelled_) return fail("cancelled");
      impl_->next_member(idx);
    }
    return fail("watch " + what_ + ": " + last);
  }

  Result<std::vector<Event>> next(std::chrono::milliseconds timeout) override {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (cancelled_) return fail("watch " + what_ + ": cancelled");
      if (!pending_.empty()) {
        std::vector<Event> out;
        out.swap(pending_);
        return out;
      }
      if (!conn_) CLUSTER_TRY_VOID(open(left(deadline)), "reconnect");
      auto m = conn_->next_message(left(deadline));
      if (!m) {
        set_conn(nullptr);  // broken (or interrupted): the next round reconnects, from next_rev_
        if (cancelled_) continue;
        if (std::chrono::steady_clock::now() >= deadline) return fail(m.error());
        continue;
      }
      if (!*m) return std::vector<Event>{};
      CLUSTER_TRY_VOID(handle(**m), "watch " + what_);
      if (pending_.empty() && std::chrono::steady_clock::now() >= deadline)
        return std::vector<Event>{};
    }
  }

  void cancel() override {
    cancelled_ = true;
    std::lock_guard lock(conn_mu_);
    if (conn_) conn_->interrupt();
  }

 private:
  // Only the reading thread changes CONN_; under the lock so that cancel() never interrupts
  // a connection being destroyed.
  void set_conn(std::unique_ptr<HttpConnection> c) {
    std::unique_ptr<HttpConnection> old;
    {
      std::lock_guard lock(conn_mu_);
      old = std::exchange(conn_, std::move(c));
    }
    // Cancelled while the connection was being made: it must not wait.
    if (cancelled_ && conn_) conn_->interrupt();
  }

  Result<void> handle(const std::string& line) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) return fail("unreadable message: " + line);
    if (!member(j, "error").is_null()) return fail(error_text(j, line));
    const json& r = member(j, "result").is_object() ? member(j, "result") : j;
    if (kind_ == Kind::Observe) {
      if (!member(r, "kv").is_object()) return {};
      KeyValue kv = kv_of(member(r, "kv"));
      if (kv.key == last_.key && kv.mod_revision == last_.mod_revision) return {};
      last_ = kv;
      pending_.push_back(Event{Event::Type::Put, std::move(kv)});
      return {};
    }
    const std::int64_t id = i64(r, "watch_id");
    if (flag(r, "created")) {
      size_t i = watcher_.size();
      if (i >= ranges_.size()) return fail("watcher " + std::to_string(id) + " not asked for");
      watcher_[id] = i;
      if (next_rev_[i] == 0) next_rev_[i] = header_rev(r) + 1;
    }
    auto w = watcher_.find(id);
    if (flag(r, "canceled")) {
      set_conn(nullptr);
      cancelled_ = true;
      Revision from = w != watcher_.end() ? next_rev_[w->second] : 0;
      if (i64(r, "compact_revision"))
        return fail("from " + std::to_string(from) +
                    ": required revision has been compacted (compacted at " +
                    std::to_string(i64(r, "compact_revision")) + ")");
      return fail("canceled by etcd: " + str(r, "cancel_reason"));
    }
    if (const json& events = member(r, "events"); events.is_array()) {
      if (w == watcher_.end())
        return fail("events of watcher " + std::to_string(id) + " not asked for");
      // One message carries every event of a revision (a txn, a lease's keys): skip only
      // revisions given before a reconnect.
      Revision& next_rev = next_rev_[w->second];
      const Revision floor = next_rev;
      for (const auto& e : events) {
        Event ev;
        ev.type = str(e, "type") == "DELETE" ? Event::Type::Delete : Event::Type::Put;
        ev.kv = kv_of(member(e, "kv"));
        if (ev.kv.mod_revision < floor) continue;
        next_rev = std::max(next_rev, ev.kv.mod_revision + 1);
        pending_.push_back(std::move(ev));
      }
    }
    return {};
  }

  std::shared_ptr<EtcdStore::Impl> impl_;
  Kind kind_;
  std::vector<KeyRange> ranges_;
  std::string what_;                     // the ranges' keys, for messages
  std::vector<Revision> next_rev_;       // per range: the first revision not given yet
  std::map<std::int64_t, size_t> watcher_;  // etcd's watch id -> range, this connection's
  std::atomic<bool> cancelled_{false};
  std::mutex conn_mu_;
  std::unique_ptr<HttpConnection> conn_;
  std::vector<Event> pending_;
  KeyValue last_;  // observe: the last leader given
};

}  // namespace

EtcdStore::EtcdStore(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdStore::~EtcdStore() = default;

Result<std::unique_ptr<EtcdStore>> EtcdStore::open(const EtcdOptions& options) {
  auto impl = std::make_shared<Impl>();
  if (options.endpoints.empty()) return fail("cluster store: no etcd endpoint given");
  bool any_tls = false;
  for (const auto& url : options.endpoints) {
    auto ep = STACK_TRY_CTX(parse_endpoint(url), "cluster store");
    any_tls = any_tls || ep.tls;
    impl->endpoints.push_back(std::move(ep));
  }
  if (any_tls || !options.ca_file.empty() || !options.cert_file.empty()) {
    impl->tls = STACK_TRY_CTX(load_tls({options.ca_file, options.cert_file, options.key_file}),
                              "cluster store");
  }
  impl->timeout = options.timeout;
  impl->attempt_timeout = std::min(options.attempt_timeout, options.timeout);
  return std::unique_ptr<EtcdStore>(new EtcdStore(std::move(impl)));
}

Result<RangeResult> EtcdStore::range(const KeyRange& r) {
  json body;
  set_range(body, r);
  auto j = STACK_TRY_CTX(impl_->call("/v3/kv/range", body), "range " + r.key);
  return RangeResult{kvs_of(j), header_rev(j)};
}

Result<Revision> EtcdStore::put(const std::string& key, const std::string& value,
                                LeaseId lease) {
  if (key.empty()) return fail("put: empty key");
  json body{{"key", b64(key)}, {"value", b64(value)}};
  if (lease) body["lease"] = std::to_string(lease);
  auto j = STACK_TRY_CTX(impl_->call("/v3/kv/put", body), "put " + key);
  return header_rev(j);
}

Result<std::int64_t> EtcdStore::erase(const KeyRange& r) {
  json body;
  set_range(body, r);
  auto j = STACK_TRY_CTX(impl_->call("/v3/kv/deleterange", body), "erase " + r.key);
  return i64(j, "deleted");
}

Result<TxnResult> EtcdStore::txn(const std::vector<Compare>& compares,
                                 const std::vector<TxnOp>& then_ops,
                                 const std::vector<TxnOp>& else_ops) {
  json body{{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto& c : compares) body["compare"].push_back(compare_json(c));
  for (const auto& o : then_ops) body["success"].push_back(op_json(o));
  for (const auto& o : else_ops) body["failure"].push_back(op_json(o));
  auto j = STACK_TRY_CTX(impl_->call("/v3/kv/txn", body), "txn");
  TxnResult out;
  out.succeeded = flag(j, "succeeded");
  out.revision = header_rev(j);
  if (const json& responses = member(j, "responses"); responses.is_array()) {
    for (const auto& r : responses) {
      TxnOpResult res;
      res.kvs = kvs_of(member(r, "response_range"));
      res.deleted = i64(member(r, "response_delete_range"), "deleted");
      out.results.push_back(std::move(res));
    }
  }
  return out;
}

Result<void> EtcdStore::compact(Revision revision) {
  json body{{"revision", std::to_string(revision)}};
  STACK_TRY_CTX(impl_->call("/v3/kv/compaction", body), "compact " + std::to_string(revision));
  return {};
}

Result<Lease> EtcdStore::grant(std::int64_t ttl_seconds) {
  if (ttl_seconds <= 0)
    return fail("grant: TTL must be positive, not " + std::to_string(ttl_seconds));
  json body{{"TTL", std::to_string(ttl_seconds)}};
  auto j = STACK_TRY_CTX(impl_->call("/v3/lease/grant", body), "grant");
  if (auto e = str(j, "error"); !e.empty()) return fail("grant: " + e);
  return Lease{i64(j, "ID"), i64(j, "TTL")};
}

Result<std::int64_t> EtcdStore::keepalive(LeaseId lease) {
  // The gateway streams keepalive: one request line, one answer line, then the end.
  json body{{"ID", std::to_string(lease)}};
  auto j = STACK_TRY_CTX(impl_->call("/v3/lease/keepalive", body), "keepalive " + lease_hex(lease));
  const json& r = member(j, "result").is_object() ? member(j, "result") : j;
  auto ttl = i64(r, "TTL");
  if (ttl <= 0) return fail("keepalive " + lease_hex(lease) + ": lease not found");
  return ttl;
}

Result<void> EtcdStore::revoke(LeaseId lease) {
  json body{{"ID", std::to_string(lease)}};
  STACK_TRY_CTX(impl_->call("/v3/lease/revoke", body), "revoke " + lease_hex(lease));
  return {};
}

Result<std::unique_ptr<EventStream>> EtcdStore::watch_ranges(const std::vector<KeyRange>& ranges,
                                                            Revision from) {
  if (ranges.empty()) return fail("watch: no key range");
  auto s = std::make_unique<EtcdStream>(impl_, EtcdStream::Kind::Watch, ranges, from);
  if (auto r = s->open(impl_->timeout); !r) return fail(r.error());  // names the ranges
  return std::unique_ptr<EventStream>(std::move(s));
}

Result<LeaderKey> EtcdStore::campaign(const std::string& name, const std::string& value,
                                      LeaseId lease, std::chrono::milliseconds timeout) {
  json body{{"name", b64(name)}, {"value", b64(value)}, {"lease", std::to_string(lease)}};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  // Not pooled: the request waits until this candidate leads, and closing it withdraws.
  for (size_t attempt = 0; attempt < impl_->held_attempts(); ++attempt) {
    if (attempt > 0 && std::chrono::steady_clock::now() >= deadline) break;
    size_t idx = 0;
    auto conn = impl_->open_held(idx, deadline, last);
    if (!conn) continue;
    auto resp = conn->post("/v3/election/campaign", body.dump(), left(deadline));
    if (!resp) {
      last = resp.error().message;
      if (std::chrono::steady_clock::now() < deadline) impl_->next_member(idx);
      continue;
    }
    json j = json::parse(resp->body, nullptr, false);
    if (resp->status != 200 || !member(j, "leader").is_object()) {
      std::string message = error_text(j, resp->body);
      if (!unavailable(i64(j, "code"), message)) return fail("campaign " + name + ": " + message);
      last = message;
      impl_->next_member(idx);
      continue;
    }
    const json& l = member(j, "leader");
    return LeaderKey{bytes(l, "name"), bytes(l, "key"), i64(l, "rev"), i64(l, "lease")};
  }
  // As etcd's server does for a cancelled campaign, and at once: withdraw the candidacy.
  (void)erase(KeyRange::exact(name + "/" + lease_hex(lease)));
  return fail("campaign " + name + ": not leader after " + std::to_string(timeout.count()) +
              " ms: " + last);
}

Result<void> EtcdStore::proclaim(const LeaderKey& leader, const std::string& value) {
  json body{{"leader", leader_json(leader)}, {"value", b64(value)}};
  STACK_TRY_CTX(impl_->call("/v3/election/proclaim", body), "proclaim " + leader.name);
  return {};
}

Result<KeyValue> EtcdStore::leader(const std::string& name) {
  json body{{"name", b64(name)}};
  auto j = STACK_TRY_CTX(impl_->call("/v3/election/leader", body), "leader " + name);
  if (!member(j, "kv").is_object()) return fail("leader " + name + ": election: no leader");
  return kv_of(member(j, "kv"));
}

Result<void> EtcdStore::resign(const LeaderKey& leader) {
  json body{{"leader", leader_json(leader)}};
  STACK_TRY_CTX(impl_->call("/v3/election/resign", body), "resign " + leader.name);
  return {};
}

Result<std::unique_ptr<EventStream>> EtcdStore::observe(const std::string& name) {
  auto s = std::make_unique<EtcdStream>(impl_, EtcdStream::Kind::Observe,
                                        std::vector<KeyRange>{KeyRange::exact(name)}, 0);
  CLUSTER_TRY_VOID(s->open(impl_->timeout), "observe " + name);
  return std::unique_ptr<EventStream>(std::move(s));
}

}  // namespace stack::cluster
