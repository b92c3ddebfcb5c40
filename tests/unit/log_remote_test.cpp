// The gelf and fluentd drivers without a daemon: which options `up` takes (and why it refuses
// the others, and the cloud drivers), GELF documents, their compression and chunks, and the
// msgpack bytes of fluentd's entries checked against the msgpack spec's encodings. No root.
#include <doctest/doctest.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include "engine/logs.h"
#include "reconciler/fluentd.h"
#include "reconciler/gelf.h"
#include "reconciler/log_drivers.h"
#include "spec/loader.h"
#include "spec/log_options.h"
#include "spec/validate.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::reconciler;

namespace {

std::string logging_check(const std::string& logging) {
  test::TempDir dir("stack-logremote");
  test::write_text(dir / "stack.yaml",
                   "services:\n  web:\n    image: x\n    logging: " + logging + "\n");
  spec::LoadOptions opts;
  opts.working_dir = dir.path();
  auto stack = spec::load(opts);
  if (!stack) return "LOAD FAILED: " + stack.error().message;
  auto c = spec::check_supported(*stack);
  return c ? "SUPPORTED" : c.error().message;
}

std::string hex(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (!out.empty()) out += ' ';
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string inflate_any(const std::string& in) {
  z_stream z{};
  REQUIRE(inflateInit2(&z, 15 + 32) == Z_OK);
  std::string out(1 << 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&z, Z_FINISH);
  out.resize(z.total_out);
  inflateEnd(&z);
  REQUIRE(rc == Z_STREAM_END);
  return out;
}

}  // namespace

TEST_CASE("gelf, fluentd and none take docker's options, and name what they do not take") {
  CHECK(logging_check("{driver: none}") == "SUPPORTED");
  CHECK(logging_check("{driver: none, options: {max-size: 1m}}").find(
            "the none driver does not take it (it keeps no log)") != std::string::npos);
  CHECK(logging_check("{driver: gelf, options: {gelf-address: 'udp://127.0.0.1:12201', "
                      "gelf-compression-type: zlib, gelf-compression-level: '9', tag: x, "
                      "labels: a, labels-regex: '^b', env: C, env-regex: 'D.*'}}") ==
        "SUPPORTED");
  CHECK(logging_check("{driver: gelf, options: {gelf-address: 'tcp://[::1]:12201', "
                      "gelf-tcp-max-reconnect: '5', gelf-tcp-reconnect-delay: '2'}}") ==
        "SUPPORTED");
  CHECK(logging_check("{driver: gelf}").find("the gelf driver needs gelf-address") !=
        std::string::npos);
  CHECK(logging_check("{driver: gelf, options: {gelf-address: 'udp://127.0.0.1'}}").find(
            "gelf-address udp://127.0.0.1: the port is required") != std::string::npos);
  CHECK(logging_check("{driver: gelf, options: {gelf-address: 'http://127.0.0.1:1'}}").find(
            "protocol http (udp or tcp)") != std::string::npos);
  CHECK(logging_check("{driver: gelf, options: {gelf-address: 'tcp://127.0.0.1:1', "
                      "gelf-compression-type: gzip}}")
            .find("gelf-compression-type: only for a udp:// gelf-address") != std::string::npos);
  CHECK(logging_check("{driver: gelf, options: {gelf-address: 'udp://127.0.0.1:1', "
                      "gelf-tcp-max-reconnect: '2'}}")
            .find("gelf-tcp-max-reconnect: only for a tcp:// gelf-address") != std::string::npos);
  CHECK(logging_check("{driver: gelf, options: {gelf-address: 'udp://127.0.0.1:1', "
                      "gelf-compression-level: '10'}}")
            .find("gelf-compression-level 10: -1 (zlib's default) to 9") != std::string::npos);
  CHECK(logging_check("{driver: gelf, options: {gelf-address: 'udp://127.0.0.1:1', "
                      "labels-regex: '('}}")
            .find("labels-regex (: not a regular expression") != std::string::npos);
  CHECK(logging_check("{driver: fluentd}") == "SUPPORTED");
  CHECK(logging_check("{driver: fluentd, options: {fluentd-address: 'unix:///run/f.sock', "
                      "fluentd-async: 'true', fluentd-buffer-limit: 8k, fluentd-retry-wait: "
                      "1m30s, fluentd-max-retries: '10', fluentd-sub-second-precision: 'true', "
                      "tag: 'docker.{{.Name}}', env: A, labels: b}}") == "SUPPORTED");
  CHECK(logging_check("{driver: fluentd, options: {fluentd-address: 'localhost:24225'}}") ==
        "SUPPORTED");
  CHECK(logging_check("{driver: fluentd, options: {fluentd-address: 'fluent.example:24224'}}")
            .find("host fluent.example is not an IP address") != std::string::npos);
  CHECK(logging_check("{driver: fluentd, options: {fluentd-async: 'yes'}}")
            .find("fluentd-async yes: not a boolean") != std::string::npos);
  CHECK(logging_check("{driver: fluentd, options: {fluentd-retry-wait: '5'}}")
            .find("fluentd-retry-wait 5: not a duration") != std::string::npos);
  CHECK(logging_check("{driver: fluentd, options: {fluentd-request-ack: 'true'}}")
            .find("fluentd-request-ack: not an option of the fluentd driver") != std::string::npos);
}

TEST_CASE("the cloud logging drivers are refused with their reason") {
  for (const char* driver : {"awslogs", "gcplogs", "splunk", "logentries"}) {
    auto msg = logging_check(std::string("{driver: ") + driver + "}");
    CHECK_MESSAGE(msg.find(std::string("refused: services.web.logging.driver ") + driver) !=
                      std::string::npos,
                  msg);
    CHECK_MESSAGE(msg.find("stack ships no client for it; use gelf, fluentd or syslog to a "
                           "local collector") != std::string::npos,
                  msg);
  }
  CHECK(logging_check("{driver: etwlogs}").find("(Event Tracing for Windows: Windows only)") !=
        std::string::npos);
  CHECK(logging_check("{driver: nosuch}").find("not supported yet: services.web.logging.driver "
                                                "nosuch") != std::string::npos);
}

TEST_CASE("go durations, booleans and counts read as docker reads them") {
  CHECK(*spec::parse_go_duration_ms("k", "500ms") == 500);
  CHECK(*spec::parse_go_duration_ms("k", "1m30s") == 90000);
  CHECK(*spec::parse_go_duration_ms("k", "1.5s") == 1500);
  CHECK(*spec::parse_go_duration_ms("k", "2h") == 7200000);
  CHECK_FALSE(spec::parse_go_duration_ms("k", "10"));
  CHECK_FALSE(spec::parse_go_duration_ms("k", "1x"));
  CHECK(*spec::parse_go_bool("k", "T"));
  CHECK_FALSE(*spec::parse_go_bool("k", "0"));
  CHECK(*spec::parse_count("k", "8k", true) == 8192);
  CHECK(*spec::parse_count("k", "1MiB", true) == 1 << 20);
  CHECK_FALSE(spec::parse_count("k", "8k"));
  CHECK_FALSE(spec::parse_count("k", "-1"));
  auto a = spec::parse_fluentd_address("");
  CHECK((a->proto == "tcp" && a->host == "127.0.0.1" && a->port == 24224));
  a = spec::parse_fluentd_address("tcp://[::1]:9");
  CHECK((a->host == "::1" && a->port == 9));
}

TEST_CASE("msgpack encodings match the spec's forms, at each size boundary") {
  auto u = [](uint64_t n) {
    std::string s;
    msgpack::put_uint(s, n);
    return hex(s);
  };
  CHECK(u(0) == "00");
  CHECK(u(127) == "7f");  // positive fixint
  CHECK(u(128) == "cc 80");
  CHECK(u(255) == "cc ff");
  CHECK(u(256) == "cd 01 00");
  CHECK(u(65536) == "ce 00 01 00 00");
  CHECK(u(1ULL << 32) == "cf 00 00 00 01 00 00 00 00");
  auto str = [](size_t n) {
    std::string s;
    msgpack::put_str(s, std::string(n, 'a'));
    return hex(s.substr(0, s.size() - n));
  };
  CHECK(str(0) == "a0");
  CHECK(str(31) == "bf");  // fixstr
  CHECK(str(32) == "d9 20");
  CHECK(str(256) == "da 01 00");
  CHECK(str(65536) == "db 00 01 00 00");
  std::string s;
  msgpack::put_str(s, "compact");
  CHECK(hex(s) == "a7 63 6f 6d 70 61 63 74");
  s.clear();
  msgpack::put_map(s, 15);
  msgpack::put_map(s, 16);
  msgpack::put_array(s, 3);
  msgpack::put_array(s, 70000);
  CHECK(hex(s) == "8f de 00 10 93 dd 00 01 11 70");
  s.clear();
  msgpack::put_event_time(s, 0x5ba4de7c, 0x1b5a3b40);  // fixext 8, type 0, then big-endian
  CHECK(hex(s) == "d7 00 5b a4 de 7c 1b 5a 3b 40");
}

TEST_CASE("a fluentd entry is [tag, time, record] in msgpack") {
  auto m = fluentd_message("app", "2026-11-30T07:04:05.123456789Z", false,
                           {{"log", "hi"}, {"source", "stdout"}});
  // 1796022245 is 2026-11-30T07:04:05Z.
  CHECK(hex(m) == "93 a3 61 70 70 ce 6b 0d 1f e5 82 a3 6c 6f 67 a2 68 69 a6 73 6f 75 72 63 65 "
                  "a6 73 74 64 6f 75 74");
  auto sub = fluentd_message("app", "2026-11-30T07:04:05.123456789Z", true, {});
  CHECK(hex(sub) == "93 a3 61 70 70 d7 00 6b 0d 1f e5 07 5b cd 15 80");
}

TEST_CASE("gelf documents carry docker's fields, compressed and chunked as docker sends them") {
  GelfInfo info{"host1", "p-web-1", "p-web-1", "sha256:abc", "busybox", "sh -c echo",
                "tag1", "2026-11-30T07:00:00.000000000Z", {{"_team", "core"}}};
  engine::LogRecord r{"2026-11-30T07:04:05.123456789Z", "stderr", "oops", false};
  auto j = nlohmann::json::parse(gelf_message(info, r));
  CHECK(j["version"] == "1.1");
  CHECK(j["host"] == "host1");
  CHECK(j["short_message"] == "oops");
  CHECK(j["level"] == 3);
  CHECK(j["timestamp"].get<double>() == doctest::Approx(1796022245.123).epsilon(1e-12));
  CHECK(j["_container_id"] == "p-web-1");
  CHECK(j["_container_name"] == "p-web-1");
  CHECK(j["_image_id"] == "sha256:abc");
  CHECK(j["_image_name"] == "busybox");
  CHECK(j["_command"] == "sh -c echo");
  CHECK(j["_tag"] == "tag1");
  CHECK(j["_created"] == "2026-11-30T07:00:00.000000000Z");
  CHECK(j["_team"] == "core");
  std::string doc = gelf_message(info, r);
  for (const char* type : {"gzip", "zlib"}) {
    auto z = gelf_compress(doc, type, 1);
    REQUIRE(z);
    // gzip's magic 1f 8b; zlib's header 78 xx.
    CHECK(static_cast<unsigned char>((*z)[0]) == (std::string(type) == "gzip" ? 0x1f : 0x78));
    CHECK(inflate_any(*z) == doc);
  }
  CHECK(*gelf_compress(doc, "none", 1) == doc);
  // Chunks: 12 bytes of header (magic, id, seq, count), 1408 of data each.
  std::string big(3000, 'x');
  auto d = gelf_datagrams(big, 0x0102030405060708ULL);
  REQUIRE(d);
  REQUIRE(d->size() == 3);
  CHECK(hex((*d)[1].substr(0, 12)) == "1e 0f 01 02 03 04 05 06 07 08 01 03");
  CHECK((*d)[0].size() == kGelfChunkSize);
  CHECK((*d)[2].size() == 12 + 3000 - 2 * 1408);
  CHECK(gelf_datagrams(std::string(1420, 'x'), 1)->size() == 1);
  CHECK_FALSE(gelf_datagrams(std::string(129 * 1408, 'x'), 1));
}

TEST_CASE("extra attributes: labels and env by name and by regex, env winning a clash") {
  LogSource s{"n", "i", "sha256:x", "h", 1, {{"team", "core"}, {"tier", "web"}, {"X", "label"}},
              {{"X", "env"}, {"REGION", "north"}}, "", ""};
  auto a = log_extra_attributes({{"labels", "team,X,missing"}, {"labels-regex", "^ti"},
                                 {"env", "X"}},
                                s);
  CHECK(a.size() == 3);
  CHECK(a["team"] == "core");
  CHECK(a["tier"] == "web");
  CHECK(a["X"] == "env");
  CHECK(log_extra_attributes({{"env-regex", "REG"}}, s) ==
        std::map<std::string, std::string>{{"REGION", "north"}});
}
