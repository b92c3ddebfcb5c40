// One read transaction (two gets) gives projects and this node's index at the same revision: a
// slot never shows without its project. The two watches start at the revision after the read,
// so nothing between the read and the watches is missed.
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

Result<std::pair<LocalView, Revision>> read_local_view(Store& store, const std::string& node) {
  auto read = store.txn({},
                        {TxnOp::get(KeyRange::with_prefix(std::string(kProjectsPrefix))),
                         TxnOp::get(KeyRange::with_prefix(keys::node_assigns(node)))},
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
    std::string owner;
    if (!parse_node_assign_key(kv.key, owner, k) || owner != node) continue;
    auto it = view.find(k.project);
    if (it != view.end()) it->second.slots[k.service].insert(k.slot);
  }
  return std::pair{std::move(view), read->revision};
}

Result<std::vector<std::tuple<std::string, int, std::string>>> read_project_slots(
    Store& store, const std::string& project) {
  auto r = store.range(KeyRange::with_prefix(assign_prefix(project)));
  if (!r) return fail(r.error().wrap("read the assignments of " + project));
  std::vector<std::tuple<std::string, int, std::string>> out;
  for (const auto& kv : r->kvs) {
    SlotKey k;
    if (parse_assign_key(kv.key, k)) out.emplace_back(k.service, k.slot, kv.value);
  }
  return out;
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

void AssignmentWatch::run() {
  auto log = log::get("cluster");
  std::optional<LocalView> last;
  std::string last_error;
  while (!stopping_) {
    auto read = read_local_view(*store_, node_);
    if (!read) {
      if (read.error().message != last_error)
        log->warn("{} (keeping what runs)", read.error().message);
      last_error = read.error().message;
      // The first view after the store is back is handed on even if unchanged: what this node
      // did meanwhile (a down that could not reach the store) is settled against it.
      last.reset();
      wait(backoff_);
      continue;
    }
    last_error.clear();
    if (!last || !same_view(*last, read->first)) {
      last = read->first;
      views_++;
      on_change_(std::move(read->first));
    }
    auto mine = store_->watch(KeyRange::with_prefix(keys::node_assigns(node_)), read->second + 1);
    auto projects =
        store_->watch(KeyRange::with_prefix(std::string(kProjectsPrefix)), read->second + 1);
    if (!mine || !projects) {
      wait(backoff_);
      continue;
    }
    // Each stream in turn, a short wait each: a change on either is seen within ~100 ms.
    bool changed = false;
    while (!changed && !stopping_) {
      auto a = (*mine)->next(milliseconds(100));
      if (!a) break;  // read again (and back off there if the store is gone)
      auto b = (*projects)->next(a->empty() ? milliseconds(100) : milliseconds(0));
      if (!b) break;
      events_ += a->size() + b->size();
      changed = !a->empty() || !b->empty();
    }
  }
}

}  // namespace stack::cluster
