// `logging` checked against what each driver takes (docker's names); the address and value
// parsers the drivers share. Pure.
#include "spec/log_options.h"

#include <arpa/inet.h>

#include <algorithm>
#include <regex>
#include <set>

#include "spec/diagnostics.h"
#include "spec/stack.h"

namespace stack::spec {
namespace {

// The options of each driver stack runs, besides max-size and max-file (json-file, local).
const std::set<std::string>& options_of(const std::string& driver) {
  static const std::set<std::string> none;
  static const std::set<std::string> syslog = {
      "syslog-address", "syslog-facility", "syslog-format", "tag",
      "labels",         "labels-regex",    "env",           "env-regex"};
  static const std::set<std::string> journald = {"tag", "labels", "labels-regex", "env",
                                                 "env-regex"};
  static const std::set<std::string> gelf = {
      "gelf-address", "gelf-compression-type", "gelf-compression-level",
      "gelf-tcp-max-reconnect", "gelf-tcp-reconnect-delay", "tag", "labels", "labels-regex",
      "env", "env-regex"};
  static const std::set<std::string> fluentd = {
      "fluentd-address", "fluentd-async", "fluentd-buffer-limit", "fluentd-retry-wait",
      "fluentd-max-retries", "fluentd-sub-second-precision", "tag", "labels", "labels-regex",
      "env", "env-regex"};
  return driver == "syslog"     ? syslog
         : driver == "journald" ? journald
         : driver == "gelf"     ? gelf
         : driver == "fluentd"  ? fluentd
                                : none;
}

bool literal_host(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// HOST[:PORT] or [V6]:PORT; PORT left empty when absent. False on a stray bracket.
bool split_host_port(const std::string& rest, std::string& host, std::string& port) {
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return false;
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return false;
      port = rest.substr(close + 2);
    }
    return true;
  }
  auto colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(':') == colon) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  } else {
    host = rest;
  }
  return true;
}

bool valid_port(const std::string& port) {
  return !port.empty() && port.size() <= 5 &&
         port.find_first_not_of("0123456789") == std::string::npos && std::stoi(port) >= 1 &&
         std::stoi(port) <= 65535;
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

Result<GelfAddress> parse_gelf_address(const std::string& text) {
  GelfAddress a;
  auto scheme = text.find("://");
  if (scheme == std::string::npos)
    return fail("gelf-address " + text + ": expected udp://HOST:PORT or tcp://HOST:PORT");
  a.proto = text.substr(0, scheme);
  if (a.proto != "udp" && a.proto != "tcp")
    return fail("gelf-address " + text + ": protocol " + a.proto + " (udp or tcp)");
  std::string port;
  if (!split_host_port(text.substr(scheme + 3), a.host, port))
    return fail("gelf-address " + text + ": expected udp://HOST:PORT or tcp://HOST:PORT");
  if (a.host == "localhost") a.host = "127.0.0.1";
  if (!literal_host(a.host))
    return fail("gelf-address " + text + ": host " + a.host +
                " is not an IP address (the daemon resolves no names for its logs)");
  if (!valid_port(port))
    return fail("gelf-address " + text + (port.empty() ? ": the port is required"
                                                        : ": invalid port " + port));
  a.port = std::stoi(port);
  return a;
}

Result<FluentdAddress> parse_fluentd_address(const std::string& text) {
  FluentdAddress a;
  if (text.empty()) return a;
  std::string rest = text;
  if (auto scheme = text.find("://"); scheme != std::string::npos) {
    a.proto = text.substr(0, scheme);
    rest = text.substr(scheme + 3);
    if (a.proto == "unix") {
      if (rest.empty() || rest.front() != '/')
        return fail("fluentd-address " + text + ": the socket must be an absolute path");
      a.path = rest;
      return a;
    }
    if (a.proto != "tcp")
      return fail("fluentd-address " + text + ": protocol " + a.proto + " (tcp or unix)");
  }
  std::string port;
  if (!split_host_port(rest, a.host, port))
    return fail("fluentd-address " + text + ": expected HOST[:PORT], tcp://HOST[:PORT] or "
                "unix:///PATH");
  if (a.host == "localhost" || a.host.empty()) a.host = "127.0.0.1";
  if (!literal_host(a.host))
    return fail("fluentd-address " + text + ": host " + a.host +
                " is not an IP address (the daemon resolves no names for its logs)");
  if (!port.empty()) {
    if (!valid_port(port)) return fail("fluentd-address " + text + ": invalid port " + port);
    a.port = std::stoi(port);
  }
  return a;
}

Result<bool> parse_go_bool(const std::string& key, const std::string& text) {
  for (const char* t : {"1", "t", "T", "true", "TRUE", "True"})
    if (text == t) return true;
  for (const char* f : {"0", "f", "F", "false", "FALSE", "False"})
    if (text == f) return false;
  return fail(key + " " + text + ": not a boolean (true or false)");
}

Result<long long> parse_go_duration_ms(const std::string& key, const std::string& text) {
  // Milliseconds of each unit, longest names first so "ms" is not read as "m".
  static const std::pair<const char*, double> kUnits[] = {
      {"ns", 1e-6}, {"us", 1e-3}, {"µs", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 6e4}, {"h", 3.6e6}};
  double total = 0;
  size_t i = 0;
  if (text.empty() || text == "0") return 0LL;
  while (i < text.size()) {
    size_t end = text.find_first_not_of("0123456789.", i);
    if (end == i || end == std::string::npos)
      return fail(key + " " + text + ": not a duration (such as 500ms, 1s or 1m30s)");
    std::string digits = text.substr(i, end - i);
    if (digits.find_first_of("0123456789") == std::string::npos ||
        std::count(digits.begin(), digits.end(), '.') > 1)
      return fail(key + " " + text + ": not a duration (such as 500ms, 1s or 1m30s)");
    double number = std::stod(digits);
    bool found = false;
    for (const auto& [unit, ms] : kUnits) {
      std::string u = unit;
      if (text.compare(end, u.size(), u) == 0 &&
          (u != "m" || text.compare(end, 2, "ms") != 0)) {
        total += number * ms;
        i = end + u.size();
        found = true;
        break;
      }
    }
    if (!found) return fail(key + " " + text + ": not a duration (such as 500ms, 1s or 1m30s)");
  }
  return static_cast<long long>(total);
}

Result<long long> parse_count(const std::string& key, const std::string& text, bool units) {
  size_t end = text.find_first_not_of("0123456789");
  long long mult = 1;
  if (units && end != std::string::npos && end > 0) {
    std::string suffix = text.substr(end);
    for (char& c : suffix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (suffix == "k" || suffix == "kb" || suffix == "kib") mult = 1LL << 10;
    else if (suffix == "m" || suffix == "mb" || suffix == "mib") mult = 1LL << 20;
    else if (suffix == "g" || suffix == "gb" || suffix == "gib") mult = 1LL << 30;
    else if (suffix == "b") mult = 1;
    else mult = 0;
  } else if (end != std::string::npos) {
    mult = 0;
  }
  size_t digits = end == std::string::npos ? text.size() : end;
  if (digits == 0 || mult == 0 || digits > 12)
    return fail(key + " " + text + ": not a number" + (units ? " (k, m and g are taken)" : ""));
  return std::stoll(text.substr(0, end)) * mult;
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
  if (driver != "json-file" && driver != "local" && driver != "syslog" && driver != "journald" &&
      driver != "gelf" && driver != "fluentd" && driver != "none") {
    diag.error(pos_of(base + ".driver"),
               "not supported yet: " + base + ".driver " + driver +
                   " (json-file, local, syslog, journald, gelf, fluentd and none are)");
    return;
  }
  bool files = driver == "json-file" || driver == "local";
  for (const char* key : {"max-size", "max-file"}) {
    bool set = std::string(key) == "max-size" ? s.logging.max_size_set : s.logging.max_files_set;
    if (set && !files)
      diag.error(pos_of(base + ".options." + key),
                 base + ".options." + key + ": the " + driver + " driver does not take it " +
                     (driver == "none" ? "(it keeps no log)"
                                       : "(the local copy is capped by the daemon's "
                                         "log-max-size and log-max-file)"));
  }
  const auto& o = s.logging.options;
  auto given = [&](const char* key) { return o.count(key) != 0; };
  if (driver == "gelf" && !given("gelf-address"))
    diag.error(pos_of(base + ".driver"), base + ".options: the gelf driver needs gelf-address "
                                                "(udp://HOST:PORT or tcp://HOST:PORT)");
  std::string gelf_proto;
  if (given("gelf-address"))
    if (auto a = parse_gelf_address(o.at("gelf-address"))) gelf_proto = a->proto;
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
    } else if (key == "labels-regex" || key == "env-regex") {
      try {
        std::regex re(value);
      } catch (const std::regex_error& e) {
        ok = fail(key + " " + value + ": not a regular expression (" + e.what() + ")");
      }
    } else if (key == "gelf-address") {
      if (auto a = parse_gelf_address(value); !a) ok = fail(a.error());
    } else if (key == "gelf-compression-type" || key == "gelf-compression-level") {
      // As docker: compression is a UDP thing (GELF over TCP is plain JSON).
      if (gelf_proto == "tcp")
        ok = fail(key + ": only for a udp:// gelf-address (GELF over TCP is not compressed)");
      else if (key == "gelf-compression-type" && value != "gzip" && value != "zlib" &&
               value != "none")
        ok = fail(key + " " + value + ": gzip, zlib or none");
      else if (key == "gelf-compression-level" && value != "-1" &&
               (value.size() != 1 || value[0] < '0' || value[0] > '9'))
        ok = fail(key + " " + value + ": -1 (zlib's default) to 9");
    } else if (key == "gelf-tcp-max-reconnect" || key == "gelf-tcp-reconnect-delay") {
      if (gelf_proto == "udp") ok = fail(key + ": only for a tcp:// gelf-address");
      else if (auto n = parse_count(key, value); !n) ok = fail(n.error());
    } else if (key == "fluentd-address") {
      if (auto a = parse_fluentd_address(value); !a) ok = fail(a.error());
    } else if (key == "fluentd-async" || key == "fluentd-sub-second-precision") {
      if (auto b = parse_go_bool(key, value); !b) ok = fail(b.error());
    } else if (key == "fluentd-retry-wait") {
      if (auto d = parse_go_duration_ms(key, value); !d) ok = fail(d.error());
    } else if (key == "fluentd-max-retries") {
      if (auto n = parse_count(key, value); !n) ok = fail(n.error());
    } else if (key == "fluentd-buffer-limit") {
      if (auto n = parse_count(key, value, true); !n) ok = fail(n.error());
      else if (*n < 1) ok = fail(key + " " + value + ": at least 1");
    }
    if (!ok) diag.error(pos, base + ".options: " + ok.error().message);
  }
}

}  // namespace stack::spec
