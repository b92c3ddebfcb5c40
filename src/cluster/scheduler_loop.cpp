// The leader's pass: one read transaction guarded by the leader key gives a consistent snapshot
// (one revision) of nodes, labels, projects and assignments; the changes go out in guarded
// transactions of at most kOpsPerTxn operations (etcd refuses more than 128 by default). A slot's
// key and its per-node index keys go in the same transaction; the index is rebuilt from the
// assignments on every pass, so keys a `down` or an older version left are repaired here.
#include "cluster/scheduler_loop.h"

#include <spdlog/spdlog.h>

#include <set>

#include "cluster/node_record.h"
#include "cluster/project_record.h"
#include "common/log.h"

namespace stack::cluster {

using std::chrono::milliseconds;

namespace {

constexpr size_t kOpsPerTxn = 100;
constexpr std::string_view kNodesPrefix = "/stack/nodes/";
constexpr std::string_view kLabelsPrefix = "/stack/node-labels/";
// What a pass reads, and so what the leader watches.
constexpr std::string_view kInputPrefixes[] = {kNodesPrefix, kLabelsPrefix, kProjectsPrefix,
                                               kAssignPrefix, kNodeAssignPrefix};

Compare still_leader(const LeaderKey& l) {
  return Compare::create_revision(l.key, Compare::Op::Equal, l.create_revision);
}

SchedulerInput input_of(const TxnResult& read) {
  SchedulerInput in;
  std::map<std::string, Labels> labels;
  for (const auto& kv : read.results[1].kvs)
    if (auto l = decode_labels(kv.value, kv.key)) labels[kv.key.substr(kLabelsPrefix.size())] = *l;
  std::set<std::string> live;
  for (const auto& kv : read.results[0].kvs) {
    auto rec = decode_node(kv.value, kv.key);
    if (!rec) continue;  // a record another version wrote badly places nothing there
    Node n;
    n.name = kv.key.substr(kNodesPrefix.size());
    n.labels = labels.count(n.name) ? labels[n.name] : rec->labels;
    n.capacity.nano_cpus = int64_t{rec->cpus} * 1'000'000'000;
    n.capacity.memory_bytes = rec->memory_bytes;
    live.insert(n.name);
    in.nodes.push_back(std::move(n));
  }
  // A labelled node without a live record is down: its slots move.
  for (const auto& [name, l] : labels) {
    if (live.count(name)) continue;
    Node n;
    n.name = name;
    n.labels = l;
    n.ready = false;
    in.nodes.push_back(std::move(n));
  }
  for (const auto& kv : read.results[2].kvs) {
    auto p = decode_project(kv.value, kv.key);
    if (!p) {
      log::get("cluster")->warn("scheduler: skipping {}", p.error().message);
      continue;
    }
    for (auto& s : p->placements) in.services.push_back(std::move(s));
  }
  for (const auto& kv : read.results[3].kvs) {
    SlotKey k;
    if (parse_assign_key(kv.key, k)) in.current[service_key(k.project, k.service)][k.slot] = kv.value;
  }
  return in;
}

}  // namespace

Result<PassResult> schedule_pass(Store& store, const LeaderKey& leader) {
  PassResult out;
  auto read = store.txn({still_leader(leader)},
                        {TxnOp::get(KeyRange::with_prefix(std::string(kNodesPrefix))),
                         TxnOp::get(KeyRange::with_prefix(std::string(kLabelsPrefix))),
                         TxnOp::get(KeyRange::with_prefix(std::string(kProjectsPrefix))),
                         TxnOp::get(KeyRange::with_prefix(std::string(kAssignPrefix))),
                         TxnOp::get(KeyRange::with_prefix(std::string(kNodeAssignPrefix)))},
                        {});
  if (!read) return fail(read.error().wrap("scheduler: read the cluster"));
  out.revision = out.read_revision = read->revision;
  if (!read->succeeded) {
    out.leader = false;
    return out;
  }
  SchedulerInput in = input_of(*read);
  out.schedule = schedule(in);
  // The operations by slot ("project/service/slot"): the slot's key and its index keys.
  std::map<std::string, std::vector<TxnOp>> by_slot;
  auto slot_id = [](const std::string& service, int slot) {
    return service + "/" + std::to_string(slot);
  };
  for (const auto& c : changes(in.current, out.schedule.assignments)) {
    auto slash = c.service.find('/');
    std::string key = keys::assign(c.service.substr(0, slash), c.service.substr(slash + 1), c.slot);
    by_slot[slot_id(c.service, c.slot)].push_back(
        c.node.empty() ? TxnOp::erase(KeyRange::exact(key)) : TxnOp::put(key, c.node));
  }
  std::set<std::string> want;  // the index the assignments make
  for (const auto& [service, slots] : out.schedule.assignments) {
    auto slash = service.find('/');
    for (const auto& [slot, node] : slots)
      want.insert(keys::node_assign(node, service.substr(0, slash), service.substr(slash + 1), slot));
  }
  std::set<std::string> have;
  for (const auto& kv : read->results[4].kvs) {
    std::string node;
    SlotKey k;
    bool ours = parse_node_assign_key(kv.key, node, k);
    have.insert(kv.key);
    if (!ours || !want.count(kv.key))
      by_slot[ours ? slot_id(service_key(k.project, k.service), k.slot) : kv.key].push_back(
          TxnOp::erase(KeyRange::exact(kv.key)));
  }
  for (const auto& key : want) {
    if (have.count(key)) continue;
    std::string node;
    SlotKey k;
    (void)parse_node_assign_key(key, node, k);
    by_slot[slot_id(service_key(k.project, k.service), k.slot)].push_back(TxnOp::put(key, node));
  }
  std::vector<TxnOp> ops;
  auto flush = [&]() -> Result<bool> {
    if (ops.empty()) return true;
    auto w = store.txn({still_leader(leader)}, ops, {});
    if (!w) return fail(w.error().wrap("scheduler: write assignments"));
    out.revision = w->revision;
    if (w->succeeded) out.writes += ops.size();
    ops.clear();
    return w->succeeded;
  };
  for (auto& [_, group] : by_slot) {
    if (ops.size() + group.size() > kOpsPerTxn) {  // a slot's keys never span two txns
      auto ok = flush();
      if (!ok) return fail(ok.error());
      if (!*ok) {
        out.leader = false;
        return out;
      }
    }
    for (auto& op : group) ops.push_back(std::move(op));
  }
  auto ok = flush();
  if (!ok) return fail(ok.error());
  if (!*ok) out.leader = false;
  return out;
}

SchedulerLoop::SchedulerLoop(std::shared_ptr<Store> store, SchedulerLoopOptions options)
    : store_(std::move(store)), options_(std::move(options)) {}

SchedulerLoop::~SchedulerLoop() { stop(); }

void SchedulerLoop::start() { thread_.start([this] { run(); }); }

void SchedulerLoop::stop() { thread_.stop(); }

Result<std::vector<Event>> SchedulerLoop::next(EventStream& stream, milliseconds timeout) {
  if (!thread_.hold(&stream)) return fail("scheduler: stopping");
  auto got = stream.next(timeout);
  thread_.hold(nullptr);
  if (!thread_.stopping()) wakeups_++;
  return got;
}

void SchedulerLoop::run() {
  auto log = log::get("cluster");
  std::string last_error;
  while (!thread_.stopping()) {
    LeaseId lease = options_.lease ? options_.lease() : 0;
    if (lease == 0) {
      thread_.wait(options_.backoff);
      continue;
    }
    campaigns_++;
    auto key = store_->campaign(std::string(keys::kSchedulerElection), options_.node, lease,
                                options_.campaign_timeout);
    if (!key) {
      // A timeout is the normal case of a follower: it waits for the leader to go. Anything
      // else is worth a line, once.
      if (key.error().message.find("not leader after") != std::string::npos) {
        follow();
        continue;
      }
      if (key.error().message != last_error)
        log->warn("scheduler election: {}", key.error().message);
      last_error = key.error().message;
      thread_.wait(options_.backoff);
      continue;
    }
    last_error.clear();
    log->info("scheduler: this node leads (key {})", key->key);
    leading_ = true;
    lead(*key);
    leading_ = false;
    log->info("scheduler: this node no longer leads");
    if (!thread_.stopping()) (void)store_->resign(*key);
  }
}

// The leader is the key with the lowest create_revision and stays so until it is deleted: its
// deletion is the only thing worth campaigning again for (another candidate's coming and going
// is not). No leader, or a store that does not answer (etcd's campaign times out then too):
// back to the campaign after the back-off.
void SchedulerLoop::follow() {
  auto leader = store_->leader(std::string(keys::kSchedulerElection));
  if (!leader) {
    thread_.wait(options_.backoff);
    return;
  }
  auto stream = store_->watch(KeyRange::exact(leader->key), leader->mod_revision + 1);
  if (!stream) {
    thread_.wait(options_.backoff);
    return;
  }
  for (;;) {
    auto events = next(**stream);
    if (!events) return;
    for (const auto& e : *events)
      if (e.type == Event::Type::Delete) return;
  }
}

void SchedulerLoop::lead(const LeaderKey& key) {
  auto log = log::get("cluster");
  std::string last_unplaced;
  bool resync = false;  // this pass comes from options_.resync, not from an event
  while (!thread_.stopping()) {
    auto pass = schedule_pass(*store_, key);
    passes_++;
    if (!pass) {
      log->warn("{}", pass.error().message);
      return;  // campaign again: the leader key may be gone with the store
    }
    if (!pass->leader) return;
    if (pass->writes > 0)
      log->log(resync ? spdlog::level::warn : spdlog::level::info,
               "scheduler: placed={} moved={} removed={} kept={} writes={}{}",
               pass->schedule.placed, pass->schedule.moved, pass->schedule.removed,
               pass->schedule.kept, pass->writes,
               resync ? " (by the periodic pass: a change no watch event announced)" : "");
    std::string unplaced;
    for (const auto& u : pass->schedule.unplaced)
      unplaced += u.service + ": " + std::to_string(u.missing) + " waiting, " + u.reason + "; ";
    if (unplaced != last_unplaced && !unplaced.empty()) log->warn("scheduler: {}", unplaced);
    last_unplaced = unplaced;
    // The next change after the snapshot, ours included (the pass after our own writes finds
    // nothing to do); from after our writes, a project put between our read and our writes
    // would wait for an unrelated change. Our leader key is watched too: its deletion (our
    // node's lease gone, say, after the node registered again) makes the next pass find that
    // we no longer lead, with no one asking the store every second.
    std::vector<KeyRange> ranges = {KeyRange::exact(key.key)};
    for (std::string_view p : kInputPrefixes) ranges.push_back(KeyRange::with_prefix(std::string(p)));
    auto stream = store_->watch_ranges(ranges, pass->read_revision + 1);
    if (!stream) {
      log->warn("scheduler: watch: {}", stream.error().message);
      return;
    }
    // Any event: every range watched is something the pass reads. None for options_.resync:
    // a pass all the same.
    const auto until = std::chrono::steady_clock::now() + options_.resync;
    auto events = next(**stream, options_.resync);
    while (events && events->empty() && std::chrono::steady_clock::now() < until)
      events = next(**stream, std::chrono::duration_cast<milliseconds>(
                                  until - std::chrono::steady_clock::now()));
    if (!events) {
      if (!thread_.stopping()) log->warn("scheduler: watch: {}", events.error().message);
      return;
    }
    resync = events->empty();
  }
}

}  // namespace stack::cluster
