// The syslog and journald logging drivers without a daemon: which options `up` takes (and the
// errors for the others), docker's message formats and tag templates, and a syslog sink
// sending to a datagram socket in a temp dir. No root.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "common/unique_fd.h"
#include "engine/logs.h"
#include "reconciler/log_drivers.h"
#include "spec/loader.h"
#include "spec/log_options.h"
#include "spec/validate.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::reconciler;

namespace {

// check_supported's message for a service whose logging is LOGGING (flow YAML), "SUPPORTED".
std::string logging_check(const std::string& logging) {
  test::TempDir dir("stack-logdrv");
  test::write_text(dir / "stack.yaml",
                   "services:\n  web:\n    image: x\n    logging: " + logging + "\n");
  spec::LoadOptions opts;
  opts.working_dir = dir.path();
  auto stack = spec::load(opts);
  if (!stack) return "LOAD FAILED: " + stack.error().message;
  auto c = spec::check_supported(*stack);
  return c ? "SUPPORTED" : c.error().message;
}

}  // namespace

TEST_CASE("syslog and journald take docker's options, and name what they do not take") {
  CHECK(logging_check("{driver: syslog, options: {syslog-address: 'udp://127.0.0.1:5514', "
                      "syslog-facility: local3, syslog-format: rfc5424micro, tag: '{{.Name}}', "
                      "labels: a, env: B}}") == "SUPPORTED");
  CHECK(logging_check("{driver: journald, options: {tag: x, labels: a, env: B}}") == "SUPPORTED");
  CHECK(logging_check("{driver: syslog, options: {syslog-address: 'tcp://[::1]'}}") ==
        "SUPPORTED");
  CHECK(logging_check("{driver: syslog, options: {syslog-address: 'http://x'}}") ==
        "stack.yaml:4:41: services.web.logging.options: syslog-address http://x: protocol http "
        "(unix, unixgram, udp or tcp; tcp+tls is not supported)");
  CHECK(logging_check("{driver: syslog, options: {syslog-address: 'udp://logs.example:514'}}") ==
        "stack.yaml:4:41: services.web.logging.options: syslog-address udp://logs.example:514: "
        "host logs.example is not an IP address (the daemon resolves no names for its logs)");
  CHECK(logging_check("{driver: syslog, options: {syslog-facility: nope}}").find(
            "services.web.logging.options: syslog-facility nope: not a facility") !=
        std::string::npos);
  CHECK(logging_check("{driver: syslog, options: {syslog-format: rfc9999}}") ==
        "stack.yaml:4:41: services.web.logging.options: syslog-format rfc9999: rfc3164, "
        "rfc5424 or rfc5424micro");
  CHECK(logging_check("{driver: journald, options: {syslog-address: 'udp://127.0.0.1'}}") ==
        "stack.yaml:4:43: services.web.logging.options.syslog-address: not an option of the "
        "journald driver");
  CHECK(logging_check("{driver: syslog, options: {max-size: 10m}}").find(
            "services.web.logging.options.max-size: the syslog driver does not take it") !=
        std::string::npos);
}

TEST_CASE("syslog messages are formatted as docker's driver writes them") {
  const std::string t = "2026-11-30T07:04:05.123456789Z";
  CHECK(format_syslog("rfc5424", "udp", 30, t, "host", "web-1", 42, "hello") ==
        "<30>1 2026-11-30T07:04:05Z host web-1 42 web-1 - hello");
  CHECK(format_syslog("rfc5424micro", "tcp", 30, t, "host", "web-1", 42, "hello") ==
        "<30>1 2026-11-30T07:04:05.123456Z host web-1 42 web-1 - hello");
  CHECK(format_syslog("rfc3164", "udp", 27, t, "host", "web-1", 42, "oops") ==
        "<27>Nov 30 07:04:05 host web-1[42]: oops");
  CHECK(format_syslog("", "unixgram", 30, "2026-01-02T07:04:05Z", "host", "t", 1, "m") ==
        "<30>Jan  2 07:04:05 t[1]: m");
  CHECK(format_syslog("", "udp", 30, t, "host", "t", 1, "m") == "<30>2026-11-30T07:04:05Z host t[1]: m");
}

TEST_CASE("the tag template takes docker's fields, and defaults to the container's id") {
  LogSource s{"demo-web-1", "busybox:latest", "sha256:0123456789abcdef0123", "host", 1, {}, {}};
  CHECK(log_tag({}, s) == "demo-web-1");
  CHECK(log_tag({{"tag", "{{.ImageName}}/{{.Name}}/{{.ImageID}}/{{.DaemonName}}"}}, s) ==
        "busybox:latest/demo-web-1/0123456789ab/stack");
}

TEST_CASE("a syslog sink sends each record to a unixgram socket, stderr as err") {
  test::TempDir dir("stack-logdrv");
  std::string path = (dir / "log.sock").string();
  UniqueFd server(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.data(), path.size());
  REQUIRE(::bind(server.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0);
  LogSource s{"demo-web-1", "busybox", "", "host", 7, {}, {}};
  auto sink = make_log_sink("syslog",
                            {{"syslog-address", "unixgram://" + path},
                             {"syslog-facility", "local0"}, {"syslog-format", "rfc3164"}},
                            s);
  REQUIRE_MESSAGE(sink, (sink ? "" : sink.error().message));
  REQUIRE(*sink);
  engine::LogRecord out{"2026-11-30T07:04:05.5Z", "stdout", "to stdout"};
  engine::LogRecord err{"2026-11-30T07:04:06.5Z", "stderr", "to stderr"};
  REQUIRE((*sink)->send(out));
  REQUIRE((*sink)->send(err));
  char buf[512];
  ssize_t n = ::recv(server.get(), buf, sizeof buf, 0);
  CHECK(std::string(buf, n > 0 ? n : 0) == "<134>Nov 30 07:04:05 host demo-web-1[7]: to stdout");
  n = ::recv(server.get(), buf, sizeof buf, 0);
  CHECK(std::string(buf, n > 0 ? n : 0) == "<131>Nov 30 07:04:06 host demo-web-1[7]: to stderr");
  // Nothing listening: the start fails with the reason, as docker's does.
  auto none = make_log_sink("syslog", {{"syslog-address", "unixgram://" + path + ".none"}}, s);
  REQUIRE(!none);
  CHECK(none.error().message.find("logging driver syslog: connect syslog socket") == 0);
  CHECK(!make_log_sink("json-file", {}, s).value());
}
