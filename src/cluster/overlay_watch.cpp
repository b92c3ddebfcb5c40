// OverlayWatch's thread: list what is new, open one stream over every network from the oldest
// revision one of them still needs, wait on it with no timeout, and start over when the set of
// networks changes or the stream is lost.
#include "cluster/overlay_watch.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/log.h"

namespace stack::cluster {

using std::chrono::milliseconds;

OverlayWatch::OverlayWatch(Store& store, Callbacks callbacks, milliseconds backoff)
    : store_(store), callbacks_(std::move(callbacks)), backoff_(backoff) {}

OverlayWatch::~OverlayWatch() { stop(); }

void OverlayWatch::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void OverlayWatch::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (stream_) stream_->cancel();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OverlayWatch::watch(const std::string& network) {
  {
    std::lock_guard lock(mu_);
    pending_[network] = true;
    if (stream_) stream_->cancel();  // reopened over the new set
  }
  wake_.notify_all();
}

void OverlayWatch::unwatch(const std::string& network) {
  {
    std::lock_guard lock(mu_);
    pending_[network] = false;
    if (stream_) stream_->cancel();
  }
  wake_.notify_all();
}

void OverlayWatch::wait(milliseconds d) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, d, [this] { return stopping_ || !pending_.empty(); });
}

// The stream run() waits on, cancellable by watch/unwatch/stop from now on (null: none). False
// when one of them came first: the stream is not waited on.
bool OverlayWatch::hold(EventStream* stream) {
  std::lock_guard lock(mu_);
  const bool go = !stopping_ && pending_.empty();
  stream_ = go ? stream : nullptr;
  return go;
}

void OverlayWatch::deliver(const std::vector<Event>& events) {
  std::map<std::string, std::vector<EndpointChange>> changes;
  std::map<std::string, Revision> last;
  for (const auto& e : events) {
    auto net = std::find_if(from_.begin(), from_.end(), [&](const auto& f) {
      return e.kv.key.starts_with(keys::overlay_endpoints(f.first));
    });
    // Another network's, or what this one had already (a stream reopened from an older
    // revision for another network's sake).
    if (net == from_.end() || e.kv.mod_revision < net->second) continue;
    last[net->first] = std::max(last[net->first], e.kv.mod_revision);
    if (auto c = endpoint_change(net->first, e)) changes[net->first].push_back(std::move(*c));
  }
  // After the whole batch: the events of one revision (one transaction) come together.
  for (const auto& [network, revision] : last) from_[network] = revision + 1;
  for (const auto& [network, list] : changes) callbacks_.changed(network, list);
}

void OverlayWatch::run() {
  auto log = log::get("cluster");
  std::set<std::string> to_list, warned;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      for (const auto& [network, relist] : pending_) {
        from_.erase(network);
        if (relist) to_list.insert(network);
        else to_list.erase(network);
      }
      pending_.clear();
    }
    bool failed = false;
    for (auto it = to_list.begin(); it != to_list.end();) {
      auto listing = list_endpoints(store_, *it);
      if (!listing) {
        if (warned.insert(*it).second)
          log->warn("overlay {}: cannot list its endpoints, retrying: {}", *it,
                    listing.error().message);
        failed = true;
        ++it;
        continue;
      }
      warned.erase(*it);
      callbacks_.listed(*it, listing->endpoints);
      from_[*it] = listing->revision + 1;
      it = to_list.erase(it);
    }
    // The only timed waits: a back-off while the store does not answer.
    if (failed) {
      wait(backoff_);
      continue;
    }
    if (from_.empty()) {
      wait(kNoTimeout);
      continue;
    }
    std::vector<KeyRange> ranges;
    Revision start = from_.begin()->second;
    for (const auto& [network, revision] : from_) {
      ranges.push_back(KeyRange::with_prefix(keys::overlay_endpoints(network)));
      start = std::min(start, revision);
    }
    auto relist_all = [&] {
      for (const auto& [network, revision] : from_) to_list.insert(network);
      from_.clear();
    };
    auto stream = store_.watch_ranges(ranges, start);
    if (!stream) {
      log->warn("overlay endpoints: cannot watch, listing again: {}", stream.error().message);
      relist_all();
      wait(backoff_);
      continue;
    }
    streams_++;
    if (!hold(stream->get())) continue;
    bool lost = false;
    for (;;) {
      auto got = (*stream)->next(kNoTimeout);
      wakeups_++;
      if (got) {
        deliver(*got);
        continue;
      }
      std::lock_guard lock(mu_);
      // Cancelled by watch/unwatch/stop: nothing is lost, the new stream resumes from from_.
      if (stopping_ || !pending_.empty()) break;
      // Lost (the store, a compacted revision): listed again from scratch, which replaces
      // what was programmed.
      log->warn("overlay endpoints: watch lost, listing again: {}", got.error().message);
      lost = true;
      break;
    }
    hold(nullptr);
    if (lost) {
      relist_all();
      wait(backoff_);
    }
  }
}

}  // namespace stack::cluster
