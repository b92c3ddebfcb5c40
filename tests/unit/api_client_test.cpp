// The CLI's HTTP client (src/api/client.h, http_reader.h) without a daemon: responses read
// whole or a byte at a time, every body framing, and the client against a canned server on a
// Unix socket in a temp dir (requests as sent, streams, upgrades, refusals).
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "api/client.h"
#include "api/exec_stream.h"
#include "api/http_reader.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::api;

namespace {

ResponseReader read_all(const std::string& text, bool bytewise, bool eof) {
  ResponseReader r;
  if (bytewise) {
    for (char c : text) r.feed(std::string_view(&c, 1));
  } else {
    r.feed(text);
  }
  if (eof) r.finish();
  return r;
}

// A server that answers one connection with REPLY and hands back what the client sent.
class CannedServer {
 public:
  CannedServer(const std::filesystem::path& path, std::string reply, bool close_after = true)
      : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 4) == 0);
    thread_ = std::thread([this, reply = std::move(reply), close_after] {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      // The request: its header, then as many body bytes as Content-Length says.
      char buf[4096];
      for (;;) {
        auto end = request_.find("\r\n\r\n");
        if (end != std::string::npos) {
          auto cl = request_.find("Content-Length: ");
          size_t want = cl == std::string::npos ? 0 : std::stoul(request_.substr(cl + 16));
          if (request_.size() >= end + 4 + want) break;
        }
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        request_.append(buf, static_cast<size_t>(n));
      }
      (void)!::write(c, reply.data(), reply.size());
      if (!close_after)  // an upgraded connection: echo what comes until the client closes
        for (ssize_t n; (n = ::read(c, buf, sizeof buf)) > 0;) (void)!::write(c, buf, n);
      ::close(c);
    });
  }
  ~CannedServer() {
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  // Valid once the client has its answer.
  std::string request() {
    if (thread_.joinable()) thread_.join();
    return request_;
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::thread thread_;
  std::string request_;
};

}  // namespace

TEST_CASE("api client: a response with Content-Length, whole or a byte at a time") {
  const std::string text =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: "
      "11\r\n\r\n{\"a\":true}\n";
  for (bool bytewise : {false, true}) {
    auto r = read_all(text, bytewise, false);
    REQUIRE(r.state() == ResponseReader::State::done);
    CHECK(r.status() == 200);
    CHECK(r.header("Content-Type") == "application/json");
    CHECK(r.body() == "{\"a\":true}\n");
  }
}

TEST_CASE("api client: chunked and close-delimited bodies") {
  const std::string chunked =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n";
  for (bool bytewise : {false, true}) {
    auto r = read_all(chunked, bytewise, false);
    REQUIRE(r.state() == ResponseReader::State::done);
    CHECK(r.body() == "hello, world");
  }
  // The API's streams: no length, the body ends with the connection.
  auto s = read_all(
      "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\r\n{\"x\":1}\n{\"x\":2}\n", true,
      false);
  CHECK(s.state() == ResponseReader::State::body);
  CHECK(s.finish() == ResponseReader::State::done);
  CHECK(s.body() == "{\"x\":1}\n{\"x\":2}\n");
}

TEST_CASE("api client: a 101 ends at its header, the next bytes are the new protocol's") {
  const std::string frame("\x01\x00\x00\x00\x02hi", 7);
  auto r = read_all(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: stack-exec\r\n"
      "Connection: Upgrade\r\n\r\n" +
          frame,
      false, false);
  REQUIRE(r.state() == ResponseReader::State::done);
  CHECK(r.status() == 101);
  CHECK(r.body().empty());
  CHECK(r.rest() == frame);
}

TEST_CASE("api client: malformed or cut short responses fail with a reason") {
  struct Case {
    std::string text;
    bool eof;
    std::string reason;
  } cases[] = {
      {"SSH-2.0-OpenSSH\r\n\r\n", false, "bad status line"},
      {"HTTP/1.1 2x0 OK\r\n\r\n", false, "bad status code"},
      {"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", false, "bad header line"},
      {"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", false, "bad Content-Length"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false,
       "unsupported Transfer-Encoding"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, "bad chunk size"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", true,
       "ended inside the response body"},
      {"HTTP/1.1 200 OK\r\nContent-", true, "ended inside the response header"},
      {"HTTP/1.1 200 OK\r\nX: " + std::string(70000, 'a'), false, "over 64 KiB"},
  };
  for (const auto& c : cases) {
    auto r = read_all(c.text, false, c.eof);
    CHECK_MESSAGE(r.state() == ResponseReader::State::failed, c.text.substr(0, 40));
    CHECK_MESSAGE(r.error().find(c.reason) != std::string::npos, r.error());
  }
}

TEST_CASE("api client: call sends one HTTP/1.1 request and reads its reply") {
  test::TempDir dir("stack-api-client");
  auto sock = dir / "s.sock";
  CannedServer server(
      sock, "HTTP/1.1 404 Not Found\r\nContent-Length: 21\r\n\r\n{\"error\":\"no such\"}\n\n");
  Client client(sock);
  auto r = client.call("POST", "/v1/projects/p/stop", "{\"services\":[]}");
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(r->status == 404);
  CHECK(r->body == "{\"error\":\"no such\"}\n\n");
  auto req = server.request();
  CHECK(req.rfind("POST /v1/projects/p/stop HTTP/1.1\r\n", 0) == 0);
  CHECK(req.find("\r\nContent-Length: 15\r\n") != std::string::npos);
  CHECK(req.find("\r\nConnection: close\r\n") != std::string::npos);
  CHECK(req.substr(req.size() - 15) == "{\"services\":[]}");
}

TEST_CASE("api client: stream hands over each line as it comes, the last one without newline too") {
  test::TempDir dir("stack-api-client");
  auto sock = dir / "s.sock";
  CannedServer server(sock,
                      "HTTP/1.1 200 OK\r\n\r\n{\"progress\":1}\n\n{\"progress\":2}\n{\"ok\":true}");
  Client client(sock);
  std::vector<std::string> lines;
  auto status = client.stream("POST", "/v1/up", "{}", [&](std::string_view l) {
    lines.emplace_back(l);
    return true;
  });
  REQUIRE(status);
  CHECK(*status == 200);
  CHECK(lines == std::vector<std::string>{"{\"progress\":1}", "{\"progress\":2}", "{\"ok\":true}"});
}

TEST_CASE(
    "api client: an upgrade gives the connection and the bytes already read, a refusal its reply") {
  test::TempDir dir("stack-api-client");
  auto sock = dir / "s.sock";
  {
    CannedServer server(sock,
                        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                        "Upgrade: stack-exec\r\n\r\n" +
                            exec::encode(exec::Type::stdout_data, "hi"),
                        false);
    Client client(sock);
    Response refused;
    auto up = client.upgrade("POST", "/v1/projects/p/exec", "{}", exec::kUpgrade, refused);
    REQUIRE_MESSAGE(up, (up ? "" : up.error().message));
    REQUIRE(up->socket);
    CHECK(up->pending == exec::encode(exec::Type::stdout_data, "hi"));
    // The same connection carries frames both ways (the canned server echoes them).
    std::string frame = exec::encode(exec::Type::stdin_data, "ping");
    REQUIRE(::write(up->socket.get(), frame.data(), frame.size()) == ssize_t(frame.size()));
    char buf[64];
    ssize_t n = ::read(up->socket.get(), buf, sizeof buf);
    CHECK(std::string(buf, n > 0 ? size_t(n) : 0) == frame);
    up->socket.reset();
    auto req = server.request();
    CHECK(req.find("\r\nConnection: Upgrade\r\nUpgrade: stack-exec\r\n") != std::string::npos);
  }
  CannedServer refusing(
      sock, "HTTP/1.1 409 Conflict\r\nContent-Length: 17\r\n\r\n{\"error\":\"down\"}\n");
  Client client(sock);
  Response refused;
  auto up = client.upgrade("POST", "/v1/projects/p/exec", "{}", exec::kUpgrade, refused);
  REQUIRE(up);
  CHECK(!up->socket);
  CHECK(refused.status == 409);
  CHECK(refused.body == "{\"error\":\"down\"}\n");
}

TEST_CASE("api client: no daemon and no permission are told apart") {
  test::TempDir dir("stack-api-client");
  Client none(dir / "absent.sock");
  auto r = none.ping();
  REQUIRE(!r);
  CHECK(r.error().sys_errno == ENOENT);
  CHECK(r.error().message == "no stack daemon answers on " + (dir / "absent.sock").string());
}

TEST_CASE("exec stream: frames survive any split, bad frames are refused") {
  std::string bytes = exec::encode(exec::Type::stdout_data, "hello") +
                      exec::encode_resize(123, 45) + exec::encode(exec::Type::stdin_eof) +
                      exec::encode_exit(-2);
  exec::FrameReader r;
  std::vector<exec::Frame> frames;
  for (char c : bytes) {
    r.feed(std::string_view(&c, 1));
    for (;;) {
      auto f = r.next();
      REQUIRE(f);
      if (!*f) break;
      frames.push_back(std::move(**f));
    }
  }
  REQUIRE(frames.size() == 4);
  CHECK(frames[0].type == exec::Type::stdout_data);
  CHECK(frames[0].payload == "hello");
  CHECK(frames[1].type == exec::Type::resize);
  auto size = exec::decode_resize(frames[1].payload);
  REQUIRE(size);
  CHECK(size->first == 123);
  CHECK(size->second == 45);
  CHECK(frames[2].type == exec::Type::stdin_eof);
  CHECK(frames[2].payload.empty());
  CHECK(exec::decode_exit(frames[3].payload).value() == -2);
  CHECK(r.empty());
  // The header is big-endian: type, then the length.
  CHECK(exec::encode(exec::Type::stderr_data, "x") == std::string("\x02\x00\x00\x00\x01x", 6));

  exec::FrameReader unknown;
  unknown.feed(std::string("\x09\x00\x00\x00\x00", 5));
  CHECK(!unknown.next());
  exec::FrameReader huge;
  huge.feed(std::string("\x00\x7f\xff\xff\xff", 5));
  auto h = huge.next();
  REQUIRE(!h);
  CHECK(h.error().message.find("over the limit") != std::string::npos);
  CHECK(!exec::decode_resize("abc"));
}
