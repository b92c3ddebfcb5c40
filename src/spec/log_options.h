// A service's `logging`: which drivers stack runs (json-file and local files; syslog, journald,
// gelf and fluentd besides them; none) and the options each takes, as docker's drivers take
// them. The address and value parsers are shared with the drivers themselves (reconciler).
// Pure: no socket is opened here.
#pragma once

#include <string>

#include "common/result.h"

namespace stack::spec {

class Diagnostics;
struct Service;

// A syslog-address: unix:// (a stream socket, or a datagram one), unixgram://,
// udp://HOST[:PORT], tcp://HOST[:PORT] (port 514 when left out; HOST a literal address).
struct SyslogAddress {
  std::string proto;  // unix | unixgram | udp | tcp
  std::string path;   // unix, unixgram
  std::string host;   // udp, tcp
  int port = 514;
};
[[nodiscard]] Result<SyslogAddress> parse_syslog_address(const std::string& text);
// The facility's number ("daemon" is 3); an error naming the known ones.
[[nodiscard]] Result<int> syslog_facility(const std::string& name);

// A gelf-address: udp://HOST:PORT or tcp://HOST:PORT (the port is required, as docker's;
// HOST a literal address or localhost).
struct GelfAddress {
  std::string proto;  // udp | tcp
  std::string host;
  int port = 0;
};
[[nodiscard]] Result<GelfAddress> parse_gelf_address(const std::string& text);

// A fluentd-address: HOST[:PORT], tcp://HOST[:PORT] or unix:///PATH; empty is docker's
// default, tcp 127.0.0.1:24224.
struct FluentdAddress {
  std::string proto = "tcp";  // tcp | unix
  std::string host = "127.0.0.1";
  int port = 24224;
  std::string path;  // unix
};
[[nodiscard]] Result<FluentdAddress> parse_fluentd_address(const std::string& text);

// Go's strconv.ParseBool (1, t, true, TRUE, True, 0, f, false, ...), as docker reads options.
[[nodiscard]] Result<bool> parse_go_bool(const std::string& key, const std::string& text);
// Go's time.ParseDuration ("500ms", "1m30s"; units ns us ms s m h) in milliseconds.
[[nodiscard]] Result<long long> parse_go_duration_ms(const std::string& key,
                                                     const std::string& text);
// A non-negative integer (a count: fluentd-buffer-limit also takes k, m and g).
[[nodiscard]] Result<long long> parse_count(const std::string& key, const std::string& text,
                                            bool units = false);

// Errors for S's logging: a driver stack does not run, an option its driver does not take, a
// value it cannot use (each at the key's position).
void check_log_options(const Service& s, Diagnostics& diag);

}  // namespace stack::spec
