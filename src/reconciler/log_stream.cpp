// gelf (UDP datagrams, TCP stream) and fluentd (forward over TCP or a unix socket) sinks. A
// stream's messages wait in a bounded queue; one coroutine per stream dials (non-blocking
// connect awaited on the loop), writes them in order with MSG_NOSIGNAL, and on a failure dials
// again: gelf-tcp-max-reconnect times gelf-tcp-reconnect-delay apart (docker's 3 × 1 s), or
// fluentd-max-retries times from fluentd-retry-wait growing by 1.5 to 60 s (fluent-logger's).
// When every dial failed the queued messages are dropped and said once in the daemon's log.
#include "reconciler/log_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <functional>
#include <random>

#include "common/log.h"
#include "common/unique_fd.h"
#include "engine/logs.h"
#include "reconciler/fluentd.h"
#include "reconciler/gelf.h"
#include "spec/log_options.h"

#include <spdlog/spdlog.h>

namespace stack::reconciler {

struct StreamPolicy {
  size_t max_queued = 1 << 20;   // messages waiting for the collector; more are dropped
  size_t max_bytes = 64 << 20;   // and their bytes, whatever the count
  long long max_retries = 3;     // dials after a failure before the queue is dropped
  std::chrono::milliseconds retry_wait{1000};
  bool backoff = false;  // the wait grows by 1.5 per dial, to 60 s
};

class LogStream {
 public:
  LogStream(asio::io_context& io, std::string proto, std::string host, int port,
            std::string path, StreamPolicy policy)
      : io_(io), proto_(std::move(proto)), host_(std::move(host)), port_(port),
        path_(std::move(path)), policy_(policy), wake_(io.get_executor()) {}

  std::string address() const {
    if (proto_ == "unix") return "unix://" + path_;
    bool v6 = host_.find(':') != std::string::npos;
    return proto_ + "://" + (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
  }

  bool push(std::string message) {
    if (closed_ || queue_.size() >= policy_.max_queued ||
        bytes_ + message.size() > policy_.max_bytes)
      return false;
    bytes_ += message.size();
    queue_.push_back(std::move(message));
    wake_.notify();
    return true;
  }

  void close() {
    closed_ = true;
    if (sock_) {
      boost::system::error_code ignored;
      sock_->close(ignored);
    }
    sock_.reset();
    queue_.clear();
    bytes_ = 0;
    wake_.notify();
  }

  asio::io_context& io_;
  std::string proto_, host_;
  int port_;
  std::string path_;
  StreamPolicy policy_;
  Notifier wake_;
  std::deque<std::string> queue_;
  size_t bytes_ = 0;
  std::shared_ptr<asio::posix::stream_descriptor> sock_;
  bool closed_ = false;
  bool started_ = false;
  std::string name_;
};

namespace {

std::string option(const std::map<std::string, std::string>& o, const std::string& key,
                   const std::string& otherwise = "") {
  auto it = o.find(key);
  return it == o.end() || it->second.empty() ? otherwise : it->second;
}

// HOST:PORT as a socket address; false when HOST is not a literal address.
bool inet_address(const std::string& host, int port, sockaddr_storage& ss, socklen_t& len) {
  ss = {};
  if (auto* in = reinterpret_cast<sockaddr_in*>(&ss);
      ::inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *in;
    return true;
  }
  if (auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
      ::inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof *in6;
    return true;
  }
  return false;
}

awaitable<Result<void>> dial(std::shared_ptr<LogStream> s, std::chrono::milliseconds timeout) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_UNIX;
  if (s->proto_ == "unix") {
    auto* sun = reinterpret_cast<sockaddr_un*>(&ss);
    sun->sun_family = AF_UNIX;
    if (s->path_.size() >= sizeof sun->sun_path)
      co_return fail("connect " + s->address() + ": path too long");
    std::memcpy(sun->sun_path, s->path_.data(), s->path_.size());
    len = sizeof *sun;
  } else {
    if (!inet_address(s->host_, s->port_, ss, len))
      co_return fail("connect " + s->address() + ": not an IP address");
    family = ss.ss_family;
  }
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) co_return fail_errno("socket");
  int raw = fd.get();
  bool pending = false;
  if (::connect(raw, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) co_return fail_errno("connect " + s->address());
    pending = true;
  }
  auto sock = std::make_shared<asio::posix::stream_descriptor>(s->io_, fd.release());
  if (pending) {
    // The timer's handler may run after this frame is gone: it owns what it touches.
    auto timed_out = std::make_shared<bool>(false);
    asio::steady_timer timer(s->io_, timeout);
    timer.async_wait([sock, timed_out](boost::system::error_code ec) {
      if (!ec) {
        *timed_out = true;
        sock->cancel();
      }
    });
    co_await sock->async_wait(asio::posix::stream_descriptor::wait_write, no_throw);
    timer.cancel();
    if (*timed_out)
      co_return fail("connect " + s->address() + ": no answer within " +
                     std::to_string(timeout.count() / 1000) + " s");
    int err = 0;
    socklen_t l = sizeof err;
    if (::getsockopt(raw, SOL_SOCKET, SO_ERROR, &err, &l) != 0) err = errno;
    if (err != 0) co_return fail_errno("connect " + s->address(), err);
  }
  if (s->closed_) co_return fail("closed");
  s->sock_ = std::move(sock);
  co_return Result<void>{};
}

// MESSAGE written whole on S's socket; false (the socket dropped) on an error.
awaitable<bool> write_all(std::shared_ptr<LogStream> s, const std::string& message) {
  size_t off = 0;
  while (off < message.size()) {
    auto sock = s->sock_;
    if (!sock) co_return false;
    ssize_t n = ::send(sock->native_handle(), message.data() + off, message.size() - off,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      auto [ec] = co_await sock->async_wait(asio::posix::stream_descriptor::wait_write, no_throw);
      if (!ec) continue;
    }
    s->sock_.reset();
    co_return false;
  }
  co_return true;
}

awaitable<void> write_loop(std::shared_ptr<LogStream> s) {
  auto logger = log::get("reconciler");
  uint64_t dropped = 0;
  while (!s->closed_) {
    if (s->queue_.empty()) {
      co_await s->wake_.wait();
      continue;
    }
    if (!s->sock_) {
      auto wait = s->policy_.retry_wait;
      std::string error;
      for (long long attempt = 0; !s->closed_ && attempt <= s->policy_.max_retries; attempt++) {
        if (attempt > 0) {
          co_await sleep_for(wait);
          if (s->policy_.backoff)
            wait = std::min<std::chrono::milliseconds>(
                std::chrono::milliseconds(wait.count() * 3 / 2), std::chrono::seconds(60));
        }
        if (s->closed_) break;
        auto r = co_await dial(s, std::chrono::seconds(5));
        if (r) break;
        error = r.error().message;
      }
      if (s->closed_) break;
      if (!s->sock_) {
        // Said on the first loss and every 1,000th message lost after.
        if (dropped / 1000 != (dropped + s->queue_.size()) / 1000 || dropped == 0)
          logger->warn("log driver name={} dropped={}: {}", s->name_,
                       dropped + s->queue_.size(), error);
        dropped += s->queue_.size();
        s->queue_.clear();
        s->bytes_ = 0;
        continue;
      }
    }
    std::string message = s->queue_.front();
    if (!co_await write_all(s, message)) continue;  // sent again once dialled again
    if (s->closed_ || s->queue_.empty()) continue;
    s->bytes_ -= s->queue_.front().size();
    s->queue_.pop_front();
  }
}

class GelfUdpSink final : public LogSink {
 public:
  GelfUdpSink(GelfInfo info, std::string compression, int level)
      : info_(std::move(info)), compression_(std::move(compression)), level_(level),
        ids_(std::random_device{}()) {}

  Result<void> connect(const spec::GelfAddress& a) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (!inet_address(a.host, a.port, ss, len)) return fail("gelf-address: not an IP address");
    UniqueFd fd(::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return fail_errno("socket");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
      return fail_errno("connect udp://" + a.host + ":" + std::to_string(a.port));
    fd_ = std::move(fd);
    return {};
  }

  Result<void> send(const engine::LogRecord& r) override {
    auto payload = gelf_compress(gelf_message(info_, r), compression_, level_);
    if (!payload) return fail(payload.error());
    auto datagrams = gelf_datagrams(*payload, ids_());
    if (!datagrams) return fail(datagrams.error());
    for (const auto& d : *datagrams)
      if (::send(fd_.get(), d.data(), d.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        return fail_errno("send to gelf");
    return {};
  }

 private:
  GelfInfo info_;
  std::string compression_;
  int level_;
  std::mt19937_64 ids_;
  UniqueFd fd_;
};

// A sink whose messages go through a LogStream: ENCODE makes the bytes of one record.
class StreamSink final : public LogSink {
 public:
  StreamSink(std::shared_ptr<LogStream> stream,
             std::function<std::string(const engine::LogRecord&)> encode)
      : stream_(std::move(stream)), encode_(std::move(encode)) {}
  Result<void> send(const engine::LogRecord& r) override {
    if (!stream_->push(encode_(r)))
      return fail("the queue for " + stream_->address() + " is full: the line is dropped");
    return {};
  }

 private:
  std::shared_ptr<LogStream> stream_;
  std::function<std::string(const engine::LogRecord&)> encode_;
};

Result<RemoteSink> gelf_sink(asio::io_context& io, const std::map<std::string, std::string>& o,
                             const LogSource& source) {
  auto address = spec::parse_gelf_address(option(o, "gelf-address"));
  if (!address) return fail(address.error());
  GelfInfo info{source.hostname, source.name,    source.name, source.image_id,
                source.image,    source.command, log_tag(o, source), source.created, {}};
  for (const auto& [k, v] : log_extra_attributes(o, source))
    info.extra[k.rfind('_', 0) == 0 ? k : "_" + k] = v;
  RemoteSink out;
  if (address->proto == "udp") {
    // Checked at up (-1 to 9); docker's default is best speed.
    int level = static_cast<int>(
        std::strtol(option(o, "gelf-compression-level", "1").c_str(), nullptr, 10));
    auto sink = std::make_unique<GelfUdpSink>(
        std::move(info), option(o, "gelf-compression-type", "gzip"), level);
    if (auto c = sink->connect(*address); !c) return fail(c.error());
    out.sink = std::move(sink);
    return out;
  }
  StreamPolicy policy;
  auto retries =
      spec::parse_count("gelf-tcp-max-reconnect", option(o, "gelf-tcp-max-reconnect", "3"));
  auto delay =
      spec::parse_count("gelf-tcp-reconnect-delay", option(o, "gelf-tcp-reconnect-delay", "1"));
  if (!retries) return fail(retries.error());
  if (!delay) return fail(delay.error());
  policy.max_retries = *retries;
  policy.retry_wait = std::chrono::seconds(*delay);
  out.stream = std::make_shared<LogStream>(io, "tcp", address->host, address->port, "", policy);
  out.must_connect = true;
  // GELF over TCP: each document ends with a NUL, uncompressed.
  auto encode = [info = std::move(info)](const engine::LogRecord& r) {
    std::string m = gelf_message(info, r);
    m += '\0';
    return m;
  };
  out.sink = std::make_unique<StreamSink>(out.stream, std::move(encode));
  return out;
}

Result<RemoteSink> fluentd_sink(asio::io_context& io, const std::map<std::string, std::string>& o,
                                const LogSource& source) {
  auto address = spec::parse_fluentd_address(option(o, "fluentd-address"));
  if (!address) return fail(address.error());
  auto async = spec::parse_go_bool("fluentd-async", option(o, "fluentd-async", "false"));
  auto subsecond = spec::parse_go_bool("fluentd-sub-second-precision",
                                       option(o, "fluentd-sub-second-precision", "false"));
  auto wait =
      spec::parse_go_duration_ms("fluentd-retry-wait", option(o, "fluentd-retry-wait", "1s"));
  auto retries = spec::parse_count("fluentd-max-retries",
                                   option(o, "fluentd-max-retries", "2147483647"));
  auto limit = spec::parse_count("fluentd-buffer-limit",
                                 option(o, "fluentd-buffer-limit", "1048576"), true);
  for (const auto* e : {&async, &subsecond})
    if (!*e) return fail(e->error());
  if (!wait) return fail(wait.error());
  if (!retries) return fail(retries.error());
  if (!limit) return fail(limit.error());
  StreamPolicy policy;
  policy.max_retries = *retries;
  policy.retry_wait = std::chrono::milliseconds(*wait);
  policy.backoff = true;
  policy.max_queued = static_cast<size_t>(std::max<long long>(*limit, 1));
  RemoteSink out;
  out.stream = std::make_shared<LogStream>(io, address->proto, address->host, address->port,
                                           address->path, policy);
  out.must_connect = !*async;
  // docker's record: container_name as docker's own name, with its leading slash.
  std::map<std::string, std::string> base = log_extra_attributes(o, source);
  base["container_id"] = source.name;
  base["container_name"] = "/" + source.name;
  auto encode = [tag = log_tag(o, source), base = std::move(base),
                 sub = *subsecond](const engine::LogRecord& r) {
    auto record = base;
    record["source"] = r.stream;
    record["log"] = r.text;
    if (r.partial) record["partial_message"] = "true";
    return fluentd_message(tag, r.time, sub, record);
  };
  out.sink = std::make_unique<StreamSink>(out.stream, std::move(encode));
  return out;
}

}  // namespace

Result<RemoteSink> make_remote_sink(asio::io_context& io, const std::string& driver,
                                    const std::map<std::string, std::string>& options,
                                    const LogSource& source) {
  auto sink = driver == "gelf" ? gelf_sink(io, options, source) : fluentd_sink(io, options, source);
  if (!sink) return fail(sink.error().wrap("logging driver " + driver));
  return sink;
}

awaitable<Result<void>> first_connect(std::shared_ptr<LogStream> s,
                                      std::chrono::milliseconds timeout) {
  auto r = co_await dial(s, timeout);
  co_return r;
}

void start_stream(const std::shared_ptr<LogStream>& s, const std::string& name) {
  if (s->started_) return;
  s->started_ = true;
  s->name_ = name;
  asio::co_spawn(s->io_, write_loop(s), asio::detached);
}

void close_stream(LogStream& s) { s.close(); }

}  // namespace stack::reconciler
