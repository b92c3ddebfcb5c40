// The API as a hostile or broken local client would use it (issue 9 "The API", issue 10 item
// 10): malformed HTTP, a bad percent-escape, bad JSON, unknown paths and methods, oversized
// headers and bodies each get a JSON error and never take the daemon down; a client sending a
// byte a second and 200 connections sending nothing are cut off while `ps` answers promptly.
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

int connect_to(const fs::path& sock) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

void send_all(int fd, const std::string& data) {
  for (size_t off = 0; off < data.size();) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may close early: what it answered is what counts
    off += static_cast<size_t>(n);
  }
}

// Everything the server sends until it closes, or TIMEOUT passes ("<open>" appended then).
std::string read_until_closed(int fd, std::chrono::milliseconds timeout) {
  std::string out;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return out + "<open>";
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// One request, raw: the whole response, the connection closed by the server.
std::string exchange(const fs::path& sock, const std::string& request) {
  int fd = connect_to(sock);
  send_all(fd, request);
  std::string out = read_until_closed(fd, std::chrono::seconds(10));
  ::close(fd);
  return out;
}

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::atoi(response.c_str() + 9);
}

std::string body_of(const std::string& response) {
  auto at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

bool json_error(const std::string& response) {
  auto j = nlohmann::json::parse(body_of(response), nullptr, false);
  return j.is_object() && j.contains("error") && j["error"].is_string();
}

int daemon_pid(const fs::path& sock) {
  auto r = exchange(sock, "GET /v1/version HTTP/1.1\r\nHost: stack\r\n\r\n");
  auto j = nlohmann::json::parse(body_of(r), nullptr, false);
  return j.is_object() ? j.value("pid", 0) : 0;
}

}  // namespace

TEST_CASE("malformed requests get a JSON error and never take the daemon down") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  const fs::path sock = env.root().parent_path() / "run/stack.sock";
  const int pid = daemon_pid(sock);
  REQUIRE(pid > 0);

  struct Case {
    std::string request;
    int status;
  };
  const std::string big_header = "X-Filler: " + std::string(64 * 1024, 'x') + "\r\n";
  const Case cases[] = {
      {"GET /v1/%zz HTTP/1.1\r\nHost: stack\r\n\r\n", 400},  // a bad percent-escape
      {"GET /v1/projects/p/port?index=%4 HTTP/1.1\r\nHost: s\r\n\r\n", 400},
      {"GET /v1/projects/p/logs?tail=lots HTTP/1.1\r\nHost: s\r\n\r\n", 400},
      {"this is not HTTP\r\n\r\n", 400},
      {"GET /v1/version HTTP/1.1\r\nHost: s\r\nContent-Length: -3\r\n\r\n", 400},
      {"POST /v1/up HTTP/1.1\r\nHost: s\r\nContent-Length: 9\r\n\r\n{\"files\":", 400},
      {"POST /v1/up HTTP/1.1\r\nHost: s\r\nContent-Length: 13\r\n\r\n{\"files\": 42}", 400},
      {"GET /v2/anything HTTP/1.1\r\nHost: s\r\n\r\n", 404},
      {"GET /v1/nothing-here HTTP/1.1\r\nHost: s\r\n\r\n", 404},
      {"DELETE /v1/version HTTP/1.1\r\nHost: s\r\n\r\n", 405},
      {"GET /v1/up HTTP/1.1\r\nHost: s\r\n\r\n", 405},
      {"GET /v1/version HTTP/1.1\r\nHost: s\r\n" + big_header + "\r\n", 431},
      {"POST /v1/up HTTP/1.1\r\nHost: s\r\nContent-Length: 2097152\r\n\r\n{}", 413},
  };
  for (const Case& c : cases) {
    auto r = exchange(sock, c.request);
    CAPTURE(c.request.substr(0, 60));
    CAPTURE(r.substr(0, 300));
    CHECK(status_of(r) == c.status);
    CHECK(json_error(r));
  }
  auto wrong = exchange(sock, "PUT /v1/images HTTP/1.1\r\nHost: s\r\n\r\n");
  CHECK(wrong.find("Allow: GET") != std::string::npos);
  // Chunked, past the body limit: refused as it arrives, not after.
  int fd = connect_to(sock);
  send_all(fd, "POST /v1/up HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string chunk = "100000\r\n" + std::string(0x100000, ' ') + "\r\n";
  send_all(fd, chunk);
  send_all(fd, chunk);
  auto r = read_until_closed(fd, std::chrono::seconds(10));
  ::close(fd);
  CHECK(status_of(r) == 413);

  CHECK(daemon_pid(sock) == pid);  // the same daemon answers: nothing crashed it
}

TEST_CASE("a client sending a byte a second and 200 silent ones are cut off, ps still answers") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  const fs::path sock = env.root().parent_path() / "run/stack.sock";
  const int pid = daemon_pid(sock);
  REQUIRE(pid > 0);

  std::vector<int> silent;
  for (int i = 0; i < 200; ++i) silent.push_back(connect_to(sock));
  int slow = connect_to(sock);
  std::atomic<bool> slow_cut{false};
  std::thread trickle([&] {
    const std::string request = "GET /v1/containers?all=1 HTTP/1.1\r\nHost: stack\r\n\r\n";
    for (char c : request) {
      if (::send(slow, &c, 1, MSG_NOSIGNAL) != 1) {
        slow_cut = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  });

  // While they hang on, the CLI is served at once.
  for (int i = 0; i < 3; ++i) {
    auto t0 = Clock::now();
    auto ps = env.stack({"ps", "-a", "-p", "nothing"});
    CHECK(ps.code == 0);
    CHECK(Clock::now() - t0 < std::chrono::seconds(2));
  }

  // The request deadline (5 s) cuts every one of them off.
  auto deadline = Clock::now() + std::chrono::seconds(12);
  int closed = 0;
  for (int fd : silent) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (read_until_closed(fd, std::max(left, std::chrono::milliseconds(1))).find("<open>") ==
        std::string::npos)
      ++closed;
  }
  CHECK(closed == 200);
  trickle.join();
  CHECK(slow_cut);
  for (int fd : silent) ::close(fd);
  ::close(slow);
  CHECK(daemon_pid(sock) == pid);
}
