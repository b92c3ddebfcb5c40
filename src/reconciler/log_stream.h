// The gelf and fluentd drivers' sinks: GELF datagrams sent at once (UDP), and the byte streams
// (GELF over TCP, fluentd's forward over TCP or a unix socket) queued and written by a
// coroutine on the daemon's loop, dialled again after a failure as docker's drivers do. The
// loop never waits on a collector. Private to the reconciler (log_shipper.cpp); the message
// formats are gelf.h's and fluentd.h's.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "reconciler/async.h"
#include "reconciler/log_drivers.h"

namespace stack::reconciler {

class LogStream;

// A driver's sink, and the stream behind it when it has one.
struct RemoteSink {
  std::unique_ptr<LogSink> sink;
  std::shared_ptr<LogStream> stream;  // null for UDP
  // tcp gelf, fluentd without fluentd-async: the start fails when the first dial does.
  bool must_connect = false;
};

// The sink of DRIVER ("gelf" or "fluentd") with OPTIONS for SOURCE. Nothing is dialled yet.
[[nodiscard]] Result<RemoteSink> make_remote_sink(asio::io_context& io, const std::string& driver,
                                                  const std::map<std::string, std::string>& options,
                                                  const LogSource& source);

// One dial of S's collector within TIMEOUT; an error naming its address.
[[nodiscard]] awaitable<Result<void>> first_connect(std::shared_ptr<LogStream> s,
                                                    std::chrono::milliseconds timeout);
// Starts S's writer: queued messages go out in order from now on. NAME is for the daemon's log.
void start_stream(const std::shared_ptr<LogStream>& s, const std::string& name);
// Ends S's writer and its connection; what is still queued is dropped.
void close_stream(LogStream& s);

}  // namespace stack::reconciler
