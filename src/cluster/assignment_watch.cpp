// One read transaction (two gets) gives projects and assignments at the same revision: a slot
// never shows without its project. Every node reads every assignment: a per-node index
// (/stack/node-assign/<node>/...) would cut the events each node gets, not done yet.
#include "cluster/assignment_watch.h"

#include <spdlog/spdlog.h>

#include <optional>

#include "common/log.h"

namespace stack::cluster {

using std::chrono::milliseconds;

bool same_view(const LocalView& a, const LocalView& b) {
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib)
    if (ia->first != ib->first || ia->second.project.hash != ib->second.project.hash ||
        ia->second.slots != ib->second.slots)
      return false;
  return true;
}

Result<std::pair<LocalView, Revision>> read_local_view(Store& store, const std::string& node,
                                                       SlotTable* all) {
  auto read = store.txn({},
                        {TxnOp::get(KeyRange::with_prefix(std::string(kProjectsPrefix))),
                         TxnOp::get(KeyRange::with_prefix(std::string(kAssignPrefix)))},
                        {});
  if (!read) return fail(read.error().wrap("read this node's assignments"));
  LocalView view;
  for (const auto& kv : read->results[0].kvs) {
    auto p = decode_project(kv.value, kv.key);
    if (!p) {
      log::get("cluster")->warn("skipping {}", p.error().message);
      continue;
    }
    std::string name = p->name;
    view[name].project = std::move(*p);
  }
  for (const auto& kv : read->results[1].kvs) {
    SlotKey k;
    if (!parse_assign_key(kv.key, k)) continue;
    if (all) (*all)[k.project].emplace_back(k.service, k.slot, kv.value);
    if (kv.value != node) continue;
    auto it = view.find(k.project);
    if (it != view.end()) it->second.slots[k.service].insert(k.slot);
  }
  return std::pair{std::move(view), read->revision};
}

AssignmentWatch::AssignmentWatch(std::shared_ptr<Store> store, std::string node, Callback on_change,
                                 milliseconds backoff)
    : store_(std::move(store)), node_(std::move(node)), on_change_(std::move(on_change)),
      backoff_(backoff) {}

AssignmentWatch::~AssignmentWatch() { stop(); }

void AssignmentWatch::start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void AssignmentWatch::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

bool AssignmentWatch::wait(milliseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (!stopping_ && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::min(d, milliseconds(50)));
  return !stopping_;
}

std::vector<std::tuple<std::string, int, std::string>> AssignmentWatch::slots_of(
    const std::string& project) const {
  std::lock_guard lk(mu_);
  auto it = all_.find(project);
  return it != all_.end() ? it->second : std::vector<std::tuple<std::string, int, std::string>>{};
}

void AssignmentWatch::run() {
  auto log = log::get("cluster");
  std::optional<LocalView> last;
  std::string last_error;
  while (!stopping_) {
    SlotTable all;
    auto read = read_local_view(*store_, node_, &all);
    if (!read) {
      if (read.error().message != last_error)
        log->warn("{} (keeping what runs)", read.error().message);
      last_error = read.error().message;
      wait(backoff_);
      continue;
    }
    last_error.clear();
    {
      std::lock_guard lk(mu_);
      all_ = std::move(all);
    }
    if (!last || !same_view(*last, read->first)) {
      last = read->first;
      views_++;
      on_change_(std::move(read->first));
    }
    auto stream = store_->watch(KeyRange::with_prefix("/stack/"), read->second + 1);
    if (!stream) {
      wait(backoff_);
      continue;
    }
    bool changed = false;
    while (!changed && !stopping_) {
      auto events = (*stream)->next(milliseconds(1000));
      if (!events) break;  // read again (and back off there if the store is gone)
      for (const auto& e : *events)
        changed |= e.kv.key.compare(0, kProjectsPrefix.size(), kProjectsPrefix) == 0 ||
                   e.kv.key.compare(0, kAssignPrefix.size(), kAssignPrefix) == 0;
    }
  }
}

}  // namespace stack::cluster
