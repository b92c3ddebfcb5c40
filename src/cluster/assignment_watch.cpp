// One read transaction (two gets) gives projects and this node's index at the same revision: a
// slot never shows without its project. The watch of both starts at the revision after the
// read, so nothing between the read and the watch is missed.
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

void AssignmentWatch::start() { thread_.start([this] { run(); }); }

void AssignmentWatch::stop() { thread_.stop(); }

void AssignmentWatch::run() {
  auto log = log::get("cluster");
  std::optional<LocalView> last;
  std::string last_error;
  while (!thread_.stopping()) {
    auto read = read_local_view(*store_, node_);
    if (!read) {
      if (read.error().message != last_error)
        log->warn("{} (keeping what runs)", read.error().message);
      last_error = read.error().message;
      // The first view after the store is back is handed on even if unchanged: what this node
      // did meanwhile (a down that could not reach the store) is settled against it.
      last.reset();
      thread_.wait(backoff_);
      continue;
    }
    last_error.clear();
    if (!last || !same_view(*last, read->first)) {
      last = read->first;
      views_++;
      on_change_(std::move(read->first));
    }
    auto stream = store_->watch_ranges({KeyRange::with_prefix(keys::node_assigns(node_)),
                                        KeyRange::with_prefix(std::string(kProjectsPrefix))},
                                       read->second + 1);
    if (!stream) {
      thread_.wait(backoff_);
      continue;
    }
    if (!thread_.hold(stream->get())) break;
    // One wait on both prefixes, with no timeout: a change on either wakes it at once.
    for (;;) {
      auto got = (*stream)->next(kNoTimeout);
      if (thread_.stopping()) break;
      wakeups_++;
      if (!got) break;  // read again (and back off there if the store is gone)
      events_ += got->size();
      if (!got->empty()) break;
    }
    thread_.hold(nullptr);
  }
}

}  // namespace stack::cluster
