// The syslog and journald drivers: message formats (pure), and the sinks that send them (one
// socket, or sd_journal_send). Runs on the daemon's loop thread; each send is one write to a
// local socket (loopback or unix), never a wait on a peer beyond the kernel's buffer.
#include "reconciler/log_drivers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <regex>
#include <sstream>
#include <vector>

#include <systemd/sd-journal.h>

#include "common/unique_fd.h"
#include "engine/logs.h"
#include "spec/log_options.h"

namespace stack::reconciler {
namespace {

using spec::SyslogAddress;

void replace_all(std::string& s, const std::string& what, const std::string& with) {
  for (size_t at = 0; (at = s.find(what, at)) != std::string::npos; at += with.size())
    s.replace(at, what.size(), with);
}

std::string option(const std::map<std::string, std::string>& o, const std::string& key,
                   const std::string& otherwise = "") {
  auto it = o.find(key);
  return it == o.end() ? otherwise : it->second;
}

std::vector<std::string> comma_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// "2026-11-30T15:04:05.123456789Z" -> its parts; false when it is not that shape.
struct Stamp {
  int year, month, day, hour, minute, second;
  std::string fraction;  // the digits after the dot
};
bool parse_stamp(const std::string& t, Stamp& s) {
  if (std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &s.year, &s.month, &s.day, &s.hour,
                  &s.minute, &s.second) != 6)
    return false;
  if (t.size() > 20 && t[19] == '.') {
    size_t end = t.find_first_not_of("0123456789", 20);
    s.fraction = t.substr(20, end == std::string::npos ? std::string::npos : end - 20);
  }
  return s.month >= 1 && s.month <= 12;
}

std::string rfc3339(const Stamp& s, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", s.year, s.month, s.day, s.hour,
                s.minute, s.second);
  std::string out = buf;
  if (digits > 0) {
    std::string fraction = s.fraction;
    fraction.resize(static_cast<size_t>(digits), '0');
    out += '.';
    out += fraction;
  }
  out += 'Z';
  return out;
}

// Go's time.Stamp, "Jan _2 15:04:05".
std::string stamp3164(const Stamp& s) {
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s %2d %02d:%02d:%02d", kMonths[s.month - 1], s.day, s.hour,
                s.minute, s.second);
  return buf;
}

// journald field names as docker makes them of label and variable names: upper case, every
// other character than A-Z 0-9 an underscore, no leading underscore (those are journald's).
std::string journal_key(const std::string& key) {
  std::string out;
  for (char c : key) {
    char u = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    out += (std::isalnum(static_cast<unsigned char>(u)) ? u : '_');
  }
  size_t first = out.find_first_not_of('_');
  return first == std::string::npos ? "" : out.substr(first);
}

class SyslogSink final : public LogSink {
 public:
  SyslogSink(SyslogAddress address, std::string format, int facility, std::string tag,
             const LogSource& source)
      : address_(std::move(address)), format_(std::move(format)), facility_(facility),
        tag_(std::move(tag)), hostname_(source.hostname), pid_(source.pid) {}

  Result<void> connect() {
    fd_.reset();
    if (address_.proto == "unix" || address_.proto == "unixgram") {
      sockaddr_un sun{};
      sun.sun_family = AF_UNIX;
      if (address_.path.size() >= sizeof sun.sun_path)
        return fail("syslog-address " + address_.path + ": path too long");
      std::memcpy(sun.sun_path, address_.path.data(), address_.path.size());
      // unix:// is a stream socket in docker; a datagram one (/dev/log) is taken too.
      std::vector<int> types = {SOCK_DGRAM};
      if (address_.proto == "unix") types = {SOCK_STREAM, SOCK_DGRAM};
      for (int type : types) {
        UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
        if (!fd) return fail_errno("socket");
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0) {
          fd_ = std::move(fd);
          stream_ = type == SOCK_STREAM;
          return {};
        }
        if (errno != EPROTOTYPE || type == types.back())
          return fail_errno("connect syslog socket " + address_.path);
      }
    }
    bool tcp = address_.proto == "tcp";
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family = AF_INET;
    if (auto* in = reinterpret_cast<sockaddr_in*>(&ss);
        ::inet_pton(AF_INET, address_.host.c_str(), &in->sin_addr) == 1) {
      in->sin_family = AF_INET;
      in->sin_port = htons(static_cast<uint16_t>(address_.port));
      len = sizeof *in;
    } else if (auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
               ::inet_pton(AF_INET6, address_.host.c_str(), &in6->sin6_addr) == 1) {
      in6->sin6_family = family = AF_INET6;
      in6->sin6_port = htons(static_cast<uint16_t>(address_.port));
      len = sizeof *in6;
    } else {
      return fail("syslog-address host " + address_.host + ": not an IP address");
    }
    UniqueFd fd(::socket(family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0));
    if (!fd) return fail_errno("socket");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
      return fail_errno("connect syslog " + address_.proto + "://" + address_.host + ":" +
                        std::to_string(address_.port));
    fd_ = std::move(fd);
    stream_ = tcp;
    return {};
  }

  Result<void> send(const engine::LogRecord& r) override {
    int severity = r.stream == "stderr" ? 3 : 6;  // err, info: docker's Err and Info
    std::string msg = format_syslog(format_, address_.proto, facility_ * 8 + severity, r.time,
                                    hostname_, tag_, pid_, r.text);
    // On a stream, RFC 5425's octet counting for the RFC 5424 formats, a newline otherwise.
    if (stream_)
      msg = format_.rfind("rfc5424", 0) == 0 ? std::to_string(msg.size()) + " " + msg : msg + "\n";
    // A stream peer that went away is dialled again once; the line is dropped if that fails.
    for (int attempt = 0; attempt < 2; attempt++) {
      if (!fd_) {
        if (auto c = connect(); !c) return c;
      }
      if (::send(fd_.get(), msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT) ==
          static_cast<ssize_t>(msg.size()))
        return {};
      if (!stream_) return fail_errno("send to syslog");
      fd_.reset();
    }
    return fail_errno("send to syslog");
  }

 private:
  SyslogAddress address_;
  std::string format_;
  int facility_;
  std::string tag_, hostname_;
  int pid_;
  UniqueFd fd_;
  bool stream_ = false;
};

class JournalSink final : public LogSink {
 public:
  JournalSink(std::string tag, const LogSource& source,
              const std::map<std::string, std::string>& options)
      : fields_{"CONTAINER_ID=" + source.name,        "CONTAINER_ID_FULL=" + source.name,
                "CONTAINER_NAME=" + source.name,      "CONTAINER_TAG=" + tag,
                "IMAGE_NAME=" + source.image,         "SYSLOG_IDENTIFIER=" + tag} {
    for (const auto& [key, value] : log_extra_attributes(options, source))
      if (!journal_key(key).empty()) fields_.push_back(journal_key(key) + "=" + value);
  }

  Result<void> send(const engine::LogRecord& r) override {
    std::vector<std::string> fields = fields_;
    fields.push_back("MESSAGE=" + r.text);
    fields.push_back(std::string("PRIORITY=") + (r.stream == "stderr" ? "3" : "6"));
    if (r.partial) fields.push_back("CONTAINER_PARTIAL_MESSAGE=true");
    std::vector<iovec> iov;
    for (auto& f : fields) iov.push_back({f.data(), f.size()});
    int rc = sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
    if (rc < 0) return fail("send to journald: " + std::string(std::strerror(-rc)));
    return {};
  }

 private:
  std::vector<std::string> fields_;
};

}  // namespace

std::map<std::string, std::string> log_extra_attributes(
    const std::map<std::string, std::string>& options, const LogSource& source) {
  std::map<std::string, std::string> out;
  auto pick = [&](const std::map<std::string, std::string>& from, const std::string& names,
                  const std::string& regex) {
    for (const auto& key : comma_list(names))
      if (auto it = from.find(key); it != from.end()) out[key] = it->second;
    if (regex.empty()) return;
    try {  // checked at up (log_options.cpp); a bad one picks nothing
      std::regex re(regex);
      for (const auto& [k, v] : from)
        if (std::regex_search(k, re)) out[k] = v;
    } catch (const std::regex_error&) {
    }
  };
  pick(source.labels, option(options, "labels"), option(options, "labels-regex"));
  pick(source.env, option(options, "env"), option(options, "env-regex"));
  return out;
}

std::string log_tag(const std::map<std::string, std::string>& options, const LogSource& source) {
  std::string tag = option(options, "tag", "{{.ID}}");
  std::string short_image = source.image_id.rfind("sha256:", 0) == 0
                                ? source.image_id.substr(7, 12)
                                : source.image_id.substr(0, 12);
  replace_all(tag, "{{.Name}}", source.name);
  replace_all(tag, "{{.ID}}", source.name);
  replace_all(tag, "{{.FullID}}", source.name);
  replace_all(tag, "{{.ImageName}}", source.image);
  replace_all(tag, "{{.ImageFullID}}", source.image_id);
  replace_all(tag, "{{.ImageID}}", short_image);
  replace_all(tag, "{{.DaemonName}}", "stack");
  return tag;
}

std::string format_syslog(const std::string& format, const std::string& proto, int priority,
                          const std::string& time, const std::string& hostname,
                          const std::string& tag, int pid, const std::string& message) {
  Stamp s{1970, 1, 1, 0, 0, 0, ""};
  parse_stamp(time, s);
  std::string pri(1, '<');
  pri += std::to_string(priority);
  pri += '>';
  std::string p = std::to_string(pid);
  if (format == "rfc5424" || format == "rfc5424micro")
    return pri + "1 " + rfc3339(s, format == "rfc5424micro" ? 6 : 0) + " " + hostname + " " +
           tag + " " + p + " " + tag + " - " + message;
  if (format == "rfc3164")
    return pri + stamp3164(s) + " " + hostname + " " + tag + "[" + p + "]: " + message;
  if (proto == "unix" || proto == "unixgram")
    return pri + stamp3164(s) + " " + tag + "[" + p + "]: " + message;
  return pri + rfc3339(s, 0) + " " + hostname + " " + tag + "[" + p + "]: " + message;
}

Result<std::unique_ptr<LogSink>> make_log_sink(const std::string& driver,
                                               const std::map<std::string, std::string>& options,
                                               const LogSource& source) {
  std::string tag = log_tag(options, source);
  if (driver == "journald") {
    // sd_journal_send's socket: without it every line would be lost (docker refuses too).
    struct stat st {};
    if (::stat("/run/systemd/journal/socket", &st) != 0)
      return fail("logging driver journald: no journal on this host "
                  "(/run/systemd/journal/socket does not exist)");
    return std::unique_ptr<LogSink>(new JournalSink(tag, source, options));
  }
  if (driver != "syslog") return std::unique_ptr<LogSink>();
  auto address = spec::parse_syslog_address(option(options, "syslog-address", "unix:///dev/log"));
  if (!address) return fail(address.error().wrap("logging driver syslog"));
  auto facility = spec::syslog_facility(option(options, "syslog-facility", "daemon"));
  if (!facility) return fail(facility.error().wrap("logging driver syslog"));
  auto sink = std::make_unique<SyslogSink>(*address, option(options, "syslog-format"), *facility,
                                           tag, source);
  if (auto c = sink->connect(); !c) return fail(c.error().wrap("logging driver syslog"));
  return std::unique_ptr<LogSink>(std::move(sink));
}

}  // namespace stack::reconciler
