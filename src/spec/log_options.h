// A service's `logging`: which drivers stack runs (json-file and local files; syslog and
// journald besides them) and the options each takes, as docker's drivers take them. The
// syslog address and facility parsers are shared with the driver itself (reconciler).
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

// Errors for S's logging: a driver stack does not run, an option its driver does not take, a
// value it cannot use (each at the key's position).
void check_log_options(const Service& s, Diagnostics& diag);

}  // namespace stack::spec
