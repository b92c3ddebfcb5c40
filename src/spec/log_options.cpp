// `logging` checked against what each driver takes (docker's names); the syslog address and
// facility parsers. Pure.
#include "spec/log_options.h"

#include <arpa/inet.h>

#include <algorithm>
#include <set>

#include "spec/diagnostics.h"
#include "spec/stack.h"

namespace stack::spec {
namespace {

// The options of each driver stack runs, besides max-size and max-file (json-file, local).
const std::set<std::string>& options_of(const std::string& driver) {
  static const std::set<std::string> none;
  static const std::set<std::string> syslog = {"syslog-address", "syslog-facility",
                                               "syslog-format",  "tag", "labels", "env"};
  static const std::set<std::string> journald = {"tag", "labels", "env"};
  return driver == "syslog" ? syslog : driver == "journald" ? journald : none;
}

}  // namespace

Result<SyslogAddress> parse_syslog_address(const std::string& text) {
  SyslogAddress a;
  auto scheme = text.find("://");
  if (scheme == std::string::npos)
    return fail("syslog-address " + text + ": expected unix://, unixgram://, udp:// or tcp://");
  a.proto = text.substr(0, scheme);
  std::string rest = text.substr(scheme + 3);
  if (a.proto == "unix" || a.proto == "unixgram") {
    if (rest.empty() || rest.front() != '/')
      return fail("syslog-address " + text + ": the socket must be an absolute path");
    a.path = rest;
    return a;
  }
  if (a.proto != "udp" && a.proto != "tcp")
    return fail("syslog-address " + text + ": protocol " + a.proto +
                " (unix, unixgram, udp or tcp; tcp+tls is not supported)");
  std::string port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return fail("syslog-address " + text + ": unclosed [");
    a.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return fail("syslog-address " + text + ": text after ]");
      port = rest.substr(close + 2);
    }
  } else if (auto colon = rest.find(':'); colon != std::string::npos) {
    a.host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  } else {
    a.host = rest;
  }
  unsigned char buf[16];
  if (::inet_pton(AF_INET, a.host.c_str(), buf) != 1 &&
      ::inet_pton(AF_INET6, a.host.c_str(), buf) != 1)
    return fail("syslog-address " + text + ": host " + a.host +
                " is not an IP address (the daemon resolves no names for its logs)");
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) < 1 || std::stoi(port) > 65535)
      return fail("syslog-address " + text + ": invalid port " + port);
    a.port = std::stoi(port);
  }
  return a;
}

Result<int> syslog_facility(const std::string& name) {
  static const char* const kNames[] = {"kern", "user",   "mail",     "daemon",   "auth",
                                       "syslog", "lpr",  "news",     "uucp",     "cron",
                                       "authpriv", "ftp", "ntp",     "security", "console",
                                       "solaris-cron"};
  for (int i = 0; i < 16; i++)
    if (name == kNames[i]) return i;
  for (int i = 0; i < 8; i++)
    if (name == "local" + std::to_string(i)) return 16 + i;
  return fail("syslog-facility " + name +
              ": not a facility (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, "
              "authpriv, ftp, ntp, security, console, solaris-cron, local0 to local7)");
}

void check_log_options(const Service& s, Diagnostics& diag) {
  const std::string& driver = s.logging.driver;
  std::string base = "services." + s.name + ".logging";
  auto pos_of = [&](const std::string& path) {
    for (const KeyUse& k : s.keys)
      if (k.path == path) return k.pos;
    return s.pos;
  };
  if (driver != "json-file" && driver != "local" && driver != "syslog" && driver != "journald") {
    diag.error(pos_of(base + ".driver"),
               "not supported yet: " + base + ".driver " + driver +
                   " (json-file, local, syslog and journald are)");
    return;
  }
  bool files = driver == "json-file" || driver == "local";
  for (const char* key : {"max-size", "max-file"}) {
    bool set = std::string(key) == "max-size" ? s.logging.max_size_set : s.logging.max_files_set;
    if (set && !files)
      diag.error(pos_of(base + ".options." + key),
                 base + ".options." + key + ": the " + driver +
                     " driver does not take it (the local copy is capped by the daemon's "
                     "log-max-size and log-max-file)");
  }
  for (const auto& [key, value] : s.logging.options) {
    SourcePos pos = pos_of(base + ".options." + key);
    if (!options_of(driver).count(key)) {
      diag.error(pos, files ? "not supported yet: " + base + ".options." + key
                            : base + ".options." + key + ": not an option of the " + driver +
                                  " driver");
      continue;
    }
    Result<void> ok;
    if (key == "syslog-address") {
      if (auto a = parse_syslog_address(value); !a) ok = fail(a.error());
    } else if (key == "syslog-facility") {
      if (auto f = syslog_facility(value); !f) ok = fail(f.error());
    } else if (key == "syslog-format" && value != "" && value != "rfc3164" &&
               value != "rfc5424" && value != "rfc5424micro") {
      ok = fail("syslog-format " + value + ": rfc3164, rfc5424 or rfc5424micro");
    }
    if (!ok) diag.error(pos, base + ".options: " + ok.error().message);
  }
}

}  // namespace stack::spec
