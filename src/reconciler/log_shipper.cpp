// Dual logging to syslog, journald, gelf and fluentd: a LogFollower per container on the loop
// (its inotify descriptor awaited by Asio), each new record sent through the driver's sink. Lines a
// container writes while the daemon is down reach only the local copy (the follower starts at
// the log's end when a container is adopted).
#include "reconciler/log_shipper.h"

#include <unistd.h>

#include "common/log.h"
#include "engine/logs.h"
#include "model/runtime_record.h"
#include "reconciler/async.h"
#include "reconciler/log_drivers.h"
#include "reconciler/log_stream.h"

#include <cstdio>
#include <ctime>

#include <spdlog/spdlog.h>

namespace stack::reconciler {

struct LogShipper::Shipment {
  Shipment(asio::io_context& io, engine::LogFollower f, std::unique_ptr<LogSink> s)
      : follower(std::move(f)), wake(io), sink(std::move(s)) {}
  engine::LogFollower follower;
  asio::posix::stream_descriptor wake;  // a dup of the follower's inotify descriptor
  std::unique_ptr<LogSink> sink;
  std::shared_ptr<LogStream> stream;  // tcp gelf, fluentd: the connection behind the sink
  bool must_connect = false;          // connected() dials it before the lines flow
  std::string name, driver;  // for the log; follows renames
  uint64_t dropped = 0;
};

namespace {

// (A parameter, not a capture: see async.h.)
awaitable<void> ship(std::shared_ptr<LogShipper::Shipment> s);

}  // namespace

LogShipper::LogShipper(asio::io_context& io) : io_(io) {}
LogShipper::~LogShipper() { stop_all(); }

namespace {

// Unix milliseconds as RFC 3339 with nanoseconds, UTC.
std::string rfc3339_ms(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03d000000Z", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace

Result<void> LogShipper::follow(const std::string& name, const std::filesystem::path& dir,
                                const model::RuntimeRecord& rt, int64_t created_ms, bool check) {
  const std::string& driver = rt.log_driver;
  bool remote = driver == "gelf" || driver == "fluentd";
  if (driver != "syslog" && driver != "journald" && !remote) return {};
  if (shipments_.count(name)) return {};
  LogSource source{name, rt.image, rt.image_id, "", static_cast<int>(::getpid()),
                   rt.labels, {}, "", ""};
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) source.hostname = host;
  for (const auto& kv : rt.spec.process.env)
    if (auto eq = kv.find('='); eq != std::string::npos)
      source.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  for (const auto& a : rt.spec.process.argv)
    source.command += (source.command.empty() ? "" : " ") + a;
  source.created = rfc3339_ms(created_ms);
  std::unique_ptr<LogSink> sink;
  RemoteSink r;
  if (remote) {
    auto made = make_remote_sink(io_, driver, rt.log_options, source);
    if (!made) return fail(made.error());
    r = std::move(*made);
    sink = std::move(r.sink);
  } else {
    auto made = make_log_sink(driver, rt.log_options, source);
    if (!made) return fail(made.error());
    sink = std::move(*made);
  }
  // Before the engine's first start the directory is not there yet: made as the engine makes
  // it (its parents, with the daemon's umask), so the follower sees the log file appear.
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return fail("follow the log of " + name + ": create " + dir.string() + ": " + ec.message());
  auto follower = engine::LogFollower::open(dir, false);
  if (!follower) return fail(follower.error().wrap("follow the log of " + name));
  int wake = ::dup(follower->fd());
  if (wake < 0) return fail_errno("dup");
  auto s = std::make_shared<Shipment>(io_, std::move(*follower), std::move(sink));
  s->wake.assign(wake);
  s->name = name;
  s->stream = r.stream;
  s->driver = driver;
  s->must_connect = check && r.must_connect;
  if (s->stream && !s->must_connect) start_stream(s->stream, name);
  shipments_[name] = s;
  asio::co_spawn(io_, ship(std::move(s)), asio::detached);
  return {};
}

awaitable<Result<void>> LogShipper::connected(const std::string& name) {
  auto it = shipments_.find(name);
  if (it == shipments_.end() || !it->second->stream || !it->second->must_connect)
    co_return Result<void>{};
  auto s = it->second;
  auto dialled = co_await first_connect(s->stream, std::chrono::seconds(5));
  if (!dialled) co_return fail(dialled.error().wrap("logging driver " + s->driver));
  s->must_connect = false;
  start_stream(s->stream, s->name);
  co_return Result<void>{};
}

void LogShipper::rename(const std::string& from, const std::string& to) {
  auto node = shipments_.extract(from);
  if (node.empty()) return;
  stop(to);
  node.mapped()->name = to;
  node.key() = to;
  shipments_.insert(std::move(node));
}

void LogShipper::stop(const std::string& name) {
  auto it = shipments_.find(name);
  if (it == shipments_.end()) return;
  boost::system::error_code ignored;
  it->second->wake.close(ignored);  // ship() wakes with an error and ends
  if (it->second->stream) close_stream(*it->second->stream);
  shipments_.erase(it);
}

void LogShipper::stop_all() {
  while (!shipments_.empty()) stop(shipments_.begin()->first);
}

namespace {

awaitable<void> ship(std::shared_ptr<LogShipper::Shipment> s) {
  for (;;) {
    auto [ec] = co_await s->wake.async_wait(asio::posix::stream_descriptor::wait_read, no_throw);
    if (ec || !s->wake.is_open()) break;
    auto records = s->follower.read_new();
    if (!records) {
      log::get("reconciler")->warn("log driver name={}: {}", s->name, records.error().message);
      continue;
    }
    for (const auto& r : *records) {
      auto sent = s->sink->send(r);
      // Said on the first line lost and every 1,000th after, not for each.
      if (!sent && s->dropped++ % 1000 == 0)
        log::get("reconciler")->warn("log driver name={} dropped={}: {}", s->name, s->dropped,
                                     sent.error().message);
    }
  }
}

}  // namespace

}  // namespace stack::reconciler
