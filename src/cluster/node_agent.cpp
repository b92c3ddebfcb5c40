// The agent's two threads and its lease loop. Order of a registration: grant a lease, then
// write the record under it in one transaction (nodes.cpp); a lease granted for a refused or
// failed registration is revoked at once, so nothing of it lingers for the TTL.
#include "cluster/node_agent.h"

#include <fcntl.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "cluster/nodes.h"
#include "common/files.h"
#include "common/log.h"
#include "common/unique_fd.h"

namespace stack::cluster {

using std::chrono::milliseconds;

struct NodeAgent::Threads {
  mutable std::mutex mu;
  std::condition_variable wake;
  bool stopping = false;
  Status status;
  milliseconds delay{0};  // the current backoff
  std::thread lease, queries;
  std::deque<std::function<void()>> work;
  std::function<void(LeaseId)> registered;
};

NodeAgent::NodeAgent(std::shared_ptr<Store> store, AgentOptions options)
    : store_(std::move(store)), options_(std::move(options)), threads_(std::make_unique<Threads>()) {}

NodeAgent::~NodeAgent() { stop(false); }

milliseconds NodeAgent::backoff(State state, const Error& why) {
  auto& t = *threads_;
  std::lock_guard lk(t.mu);
  bool changed = t.status.state != state || t.status.error != why.message;
  t.status.state = state;
  t.status.error = why.message;
  t.delay = t.delay.count() == 0 ? options_.backoff_min : std::min(t.delay * 2, options_.backoff_max);
  if (changed) {
    if (state == State::Refused) log::get("cluster")->error("{}", why.message);
    else log::get("cluster")->warn("cluster store unreachable, retrying: {}", why.message);
  }
  return t.delay;
}

Result<void> NodeAgent::join() {
  step();
  auto s = status();
  if (s.state == State::Refused) return fail(s.error, EEXIST);
  return {};
}

milliseconds NodeAgent::step() {
  auto& t = *threads_;
  const milliseconds period = std::chrono::duration_cast<milliseconds>(options_.ttl) / 3;
  LeaseId lease = status().lease;
  auto log = log::get("cluster");
  if (lease != 0) {
    if (store_->keepalive(lease)) {
      std::lock_guard lk(t.mu);
      if (t.status.state != State::Ready) log->info("node ready again name={}", name());
      t.status.state = State::Ready;
      t.status.error.clear();
      t.delay = milliseconds(0);
      return period;
    }
    // The lease is gone (expired while we could not reach the store, or revoked), or the store
    // is unreachable: only a read tells which.
    auto kv = store_->range(KeyRange::exact(keys::node(name())));
    if (!kv) return backoff(State::Unreachable, kv.error().wrap("keep the lease of " + name()));
    if (!kv->kvs.empty() && kv->kvs.front().lease == lease)
      return backoff(State::Unreachable, Error{"keepalive of lease " + std::to_string(lease) +
                                               " failed"});
    log->warn("lost the lease of node {}; registering again", name());
    std::lock_guard lk(t.mu);
    t.status.lease = 0;
    t.status.state = State::Joining;
    return milliseconds(0);
  }
  auto granted = store_->grant(options_.ttl.count());
  if (!granted) return backoff(State::Unreachable, granted.error().wrap("join the cluster"));
  auto rec = register_node(*store_, options_.record, granted->id);
  if (!rec) {
    (void)store_->revoke(granted->id);
    return backoff(rec.error().sys_errno == EEXIST ? State::Refused : State::Unreachable,
                   rec.error());
  }
  std::function<void(LeaseId)> listener;
  {
    std::lock_guard lk(t.mu);
    t.status = {State::Ready, "", granted->id};
    t.delay = milliseconds(0);
    listener = t.registered;
  }
  log->info("node registered name={} address={} lease={:x} ttl={}s", name(),
            options_.record.address, granted->id, granted->ttl_seconds);
  if (listener) listener(granted->id);
  return std::chrono::duration_cast<milliseconds>(std::chrono::seconds(granted->ttl_seconds)) / 3;
}

NodeAgent::Status NodeAgent::status() const {
  std::lock_guard lk(threads_->mu);
  return threads_->status;
}

void NodeAgent::start() {
  auto& t = *threads_;
  if (t.lease.joinable()) return;
  t.lease = std::thread([this, &t] {
    std::unique_lock lk(t.mu);
    while (!t.stopping) {
      lk.unlock();
      auto d = step();
      lk.lock();
      t.wake.wait_for(lk, d, [&] { return t.stopping; });
    }
  });
  t.queries = std::thread([&t] {
    std::unique_lock lk(t.mu);
    for (;;) {
      t.wake.wait(lk, [&] { return t.stopping || !t.work.empty(); });
      if (t.work.empty()) return;  // stopping, and nothing left to answer
      auto w = std::move(t.work.front());
      t.work.pop_front();
      lk.unlock();
      w();
      lk.lock();
    }
  });
}

void NodeAgent::submit(std::function<void()> work) {
  {
    std::lock_guard lk(threads_->mu);
    threads_->work.push_back(std::move(work));
  }
  threads_->wake.notify_all();
}

void NodeAgent::on_registered(std::function<void(LeaseId)> listener) {
  std::lock_guard lk(threads_->mu);
  threads_->registered = std::move(listener);
}

void NodeAgent::stop(bool leave) {
  auto& t = *threads_;
  {
    std::lock_guard lk(t.mu);
    t.stopping = true;
  }
  t.wake.notify_all();
  if (t.lease.joinable()) t.lease.join();
  if (t.queries.joinable()) t.queries.join();
  LeaseId lease = status().lease;
  if (leave && lease != 0) {
    if (auto r = store_->revoke(lease); !r)
      log::get("cluster")->warn("leave the cluster: {}", r.error().message);
    std::lock_guard lk(t.mu);
    t.status.lease = 0;
  }
}

Result<std::string> ensure_daemon_id(const std::string& path) {
  if (auto text = read_file(path, 256, "the daemon id"); text) {
    std::string id = text->substr(0, text->find('\n'));
    if (id.size() == 32) return id;
  }
  std::random_device rd;
  std::string id;
  for (int i = 0; i < 4; i++) {
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
    id += buf;
  }
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("write the daemon id " + path);
  std::string line = id + "\n";
  if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    return fail_errno("write the daemon id " + path);
  return id;
}

Capacity observe_capacity() {
  Capacity c;
  cpu_set_t set;
  CPU_ZERO(&set);
  c.cpus = ::sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                        : static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  struct sysinfo si {};
  if (::sysinfo(&si) == 0) c.memory_bytes = static_cast<std::int64_t>(si.totalram) * si.mem_unit;
  return c;
}

std::string iso_utc(std::int64_t epoch_seconds) {
  time_t s = static_cast<time_t>(epoch_seconds);
  struct tm tm {};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace stack::cluster
