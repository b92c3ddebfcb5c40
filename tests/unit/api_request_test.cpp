// The API's request reading as pure functions (src/api/request.h): bytes in any pieces, the
// limits and their statuses, target decoding, and which methods a path answers to.
#include <doctest/doctest.h>

#include "api/request.h"

using namespace stack::api;

namespace {

RequestReader::State feed_bytewise(RequestReader& r, const std::string& text) {
  for (char c : text)
    if (r.feed(std::string_view(&c, 1)) != RequestReader::State::need_more) break;
  return r.state();
}

}  // namespace

TEST_CASE("api request: read whole or a byte at a time, the same request") {
  const std::string text =
      "POST /v1/up HTTP/1.1\r\nHost: stack\r\nContent-Length: 13\r\n\r\n{\"files\": []}";
  for (bool bytewise : {false, true}) {
    RequestReader r;
    auto state = bytewise ? feed_bytewise(r, text) : r.feed(text);
    REQUIRE(state == RequestReader::State::done);
    Request req = r.take();
    CHECK(req.method == "POST");
    CHECK(req.target == "/v1/up");
    CHECK(req.body == "{\"files\": []}");
  }
  // What follows a complete request is ignored: one request per connection.
  RequestReader r;
  CHECK(r.feed("GET /v1/version HTTP/1.1\r\n\r\nGET /v1/x HTTP/1.1\r\n\r\n") ==
        RequestReader::State::done);
  CHECK(r.take().target == "/v1/version");
}

TEST_CASE("api request: malformed, oversized and cut short requests fail with their status") {
  struct Case {
    std::string text;
    int status;
  };
  const Case cases[] = {
      {"this is not HTTP\r\n\r\n", 400},
      {"GET /v1/version HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"GET /v1/version HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"GET /v1/version HTTP/1.1\r\nX: " + std::string(kMaxHeaderBytes, 'x') + "\r\n\r\n", 431},
      {"POST /v1/up HTTP/1.1\r\nContent-Length: " + std::to_string(kMaxBodyBytes + 1) + "\r\n\r\n",
       413},
      {"POST /v1/up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n" +
           std::string(0x100001, 'x'),
       413},
  };
  for (const Case& c : cases) {
    RequestReader r;
    CAPTURE(c.text.substr(0, 50));
    REQUIRE(r.feed(c.text) == RequestReader::State::failed);
    CHECK(r.error().status == c.status);
    CHECK(!r.error().message.empty());
  }
  // A header that never ends is refused once it passes the limit, not kept for ever.
  RequestReader endless;
  std::string line = "X-Long: " + std::string(1000, 'y');
  RequestReader::State s = endless.feed("GET / HTTP/1.1\r\n");
  for (int i = 0; i < 100 && s == RequestReader::State::need_more; ++i) s = endless.feed(line);
  CHECK(s == RequestReader::State::failed);
  CHECK(endless.error().status == 431);
  // The client closes half-way.
  RequestReader cut;
  cut.feed("POST /v1/up HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"a\"");
  CHECK(cut.finish() == RequestReader::State::failed);
  CHECK(cut.error().status == 400);
}

TEST_CASE("api request: targets decode, and bad escapes or NULs are errors") {
  auto t = parse_target("/v1/projects/my%20app/logs?tail=10&service=a&service=b+c&follow");
  REQUIRE(t);
  CHECK(t->path == std::vector<std::string>{"v1", "projects", "my app", "logs"});
  CHECK(t->integer("tail", -1).value() == 10);
  CHECK(t->integer("absent", -1).value() == -1);
  CHECK(t->all("service") == std::vector<std::string>{"a", "b c"});
  CHECK(t->flag("follow"));
  CHECK_FALSE(parse_target("/v1/%zz"));
  CHECK_FALSE(parse_target("/v1/%4"));
  CHECK_FALSE(parse_target("/v1/%"));
  CHECK_FALSE(parse_target("/v1/projects/a%00b/logs"));
  CHECK_FALSE(parse_target("/v1/x?k=%0"));
  auto bad_int = parse_target("/v1/x?tail=lots");
  REQUIRE(bad_int);
  CHECK_FALSE(bad_int->integer("tail", 0));
  CHECK_FALSE(parse_target("/v1/x?tail=99999999999999999999")->integer("tail", 0));
}

TEST_CASE("api request: methods by path, for 404 and 405") {
  auto methods = [](std::string target) {
    return allow_header(allowed_methods(parse_target(target)->path));
  };
  CHECK(methods("/v1/version") == "GET");
  CHECK(methods("/v1/up") == "POST");
  CHECK(methods("/v1/images") == "GET");
  CHECK(methods("/v1/images/busybox:latest") == "DELETE");
  CHECK(methods("/v1/projects/p/down") == "POST");
  CHECK(methods("/v1/projects/p/logs") == "GET");
  CHECK(methods("/v1/projects/p/unknown") == "");
  CHECK(methods("/v2/version") == "");
  CHECK(methods("/") == "");
}
