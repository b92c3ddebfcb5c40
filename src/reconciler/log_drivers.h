// The syslog and journald logging drivers: where one container's log lines go besides its own
// log files (dual logging, as docker's: `stack logs` keeps reading the local copy). The message
// formats are pure functions; a LogSink owns one connection (a socket, or the journal).
// No Asio, no loop: LogShipper (log_shipper.h) feeds a sink from the container's log follower.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/result.h"

namespace stack::engine {
struct LogRecord;
}

namespace stack::reconciler {

// What a driver's messages say of their container (docker's tag template fields).
struct LogSource {
  std::string name;        // the container's name, also its id in stack
  std::string image;       // as written in the stack file
  std::string image_id;    // sha256:...
  std::string hostname;    // the host's
  int pid = 0;             // the daemon's (docker's syslog messages carry dockerd's)
  std::map<std::string, std::string> labels, env;  // the container's, for labels= and env=
  std::string command;     // the argv joined by spaces (gelf's _command)
  std::string created;     // RFC 3339 with nanoseconds (gelf's _created)
};

// docker's extra attributes: the labels named in "labels" (a comma list) or matching
// "labels-regex", then the variables named in "env" or matching "env-regex" (env wins a
// clash of names). Regexes search, as Go's MatchString.
[[nodiscard]] std::map<std::string, std::string> log_extra_attributes(
    const std::map<std::string, std::string>& options, const LogSource& source);

// The tag of OPTIONS ("tag", default "{{.ID}}") with {{.Name}}, {{.ID}}, {{.FullID}},
// {{.ImageName}}, {{.ImageID}}, {{.ImageFullID}} and {{.DaemonName}} replaced.
[[nodiscard]] std::string log_tag(const std::map<std::string, std::string>& options,
                                  const LogSource& source);

// One syslog message as docker's driver writes it (the formats of its srslog library):
//   rfc5424      <PRI>1 2026-11-30T15:04:05Z HOST TAG PID TAG - MSG
//   rfc5424micro <PRI>1 2026-11-30T15:04:05.123456Z HOST TAG PID TAG - MSG
//   rfc3164      <PRI>Nov 30 15:04:05 HOST TAG[PID]: MSG
//   ""           <PRI>Nov 30 15:04:05 TAG[PID]: MSG on a unix socket, else
//                <PRI>2026-11-30T15:04:05Z HOST TAG[PID]: MSG
// TIME is the record's RFC 3339 time (UTC, nanoseconds).
[[nodiscard]] std::string format_syslog(const std::string& format, const std::string& proto,
                                        int priority, const std::string& time,
                                        const std::string& hostname, const std::string& tag,
                                        int pid, const std::string& message);

class LogSink {
 public:
  virtual ~LogSink() = default;
  // Sends one record; an error when it could not (the line is then dropped).
  [[nodiscard]] virtual Result<void> send(const engine::LogRecord& record) = 0;
};

// The sink of DRIVER ("syslog" or "journald") with OPTIONS (as written under logging.options)
// for SOURCE; connected now, so an unreachable syslog server or a host without a journal fails
// the container's start as docker's does. Null for json-file and local (nothing to send).
[[nodiscard]] Result<std::unique_ptr<LogSink>> make_log_sink(
    const std::string& driver, const std::map<std::string, std::string>& options,
    const LogSource& source);

}  // namespace stack::reconciler
