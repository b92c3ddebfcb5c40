// Updates without downtime (issue 11): a published port polled every 10 ms through an image
// change keeps answering with start-first (and does not with stop-first); an update whose new
// container fails its check is rolled back or paused, as its failure_action says; stack
// rollback returns to the previous configuration.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

// A copy of the BusyBox root with /version holding VERSION, imported as web:VERSION.
void import_version(StackEnv& env, TempDir& dir, const std::string& version) {
  auto root = dir / version;
  auto cp = run({"/bin/cp", "-a", busybox_rootfs().string(), root.string()});
  REQUIRE_MESSAGE(cp.code == 0, cp.err);
  write_text(root / "version", version + "\n");
  auto r = env.stack({"image", "import", "web:" + version, root.string()});
  REQUIRE_MESSAGE(r.code == 0, r.err);
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// One GET / on 127.0.0.1:PORT with a 1 s budget: the body, or "" on any failure.
std::string get(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    std::string req = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  if (out.find(" 200 ") == std::string::npos) return "";
  return out.substr(out.find("\r\n\r\n") + 4);
}

// Polls the port every 10 ms in the background, counting answers and failures.
class Poller {
 public:
  explicit Poller(int port)
      : thread_([this, port] {
          while (!stop_) {
            auto body = get(port);
            (body.empty() ? failed_ : ok_)++;
            if (body.find("v2") != std::string::npos) saw_v2_ = true;
            std::this_thread::sleep_for(10ms);
          }
        }) {}
  ~Poller() { finish(); }
  void finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int ok() const { return ok_; }
  int failed() const { return failed_; }
  bool saw_v2() const { return saw_v2_; }

 private:
  std::atomic<bool> stop_{false}, saw_v2_{false};
  std::atomic<int> ok_{0}, failed_{0};
  std::thread thread_;
};

std::string web_file(const std::string& project, int port, const std::string& version,
                     const std::string& update, const std::string& health = "wget -q -O /dev/null http://127.0.0.1/") {
  return "name: " + project + R"(
services:
  web:
    image: web:)" + version + R"(
    command: [sh, -c, "mkdir -p /www && cat /version > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: [")" + std::to_string(port) + R"(:80"]
    healthcheck:
      test: [CMD-SHELL, ")" + health + R"("]
      interval: 1s
      start_period: 5s
      start_interval: 50ms
      timeout: 2s
    deploy:
      update_config: {)" + update + R"(}
      rollback_config: {order: start-first}
)";
}

// Brings web:v1 up, then updates it to web:v2 under ORDER while polling; the poller's counts.
std::pair<int, int> update_under(const std::string& order) {
  StackEnv env;
  TempDir images("stack-e2e-images");
  import_version(env, images, "v1");
  import_version(env, images, "v2");
  auto p = unique_project("upd" + order.substr(0, 4));
  env.uses(p);
  int port = free_port();
  env.write(web_file(p, port, "v1", "order: " + order));
  auto up = env.stack({"up", "-d", "--wait"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  REQUIRE(get(port) == "v1\n");
  Poller poller(port);
  std::this_thread::sleep_for(100ms);  // some answers from v1 first: the poll runs
  env.write(web_file(p, port, "v2", "order: " + order));
  auto update = env.stack({"up", "-d", "--wait"});
  REQUIRE_MESSAGE(update.code == 0, update.err);
  for (int i = 0; i < 100 && !poller.saw_v2(); i++) std::this_thread::sleep_for(20ms);
  std::this_thread::sleep_for(100ms);  // and some from v2
  poller.finish();
  CHECK(poller.saw_v2());
  CHECK(get(port) == "v2\n");
  auto ps = env.ps(p);
  REQUIRE(ps.size() == 1);  // no old container left behind
  CHECK(ps[0]["name"] == p + "-web-1");
  CHECK(ps[0]["image"] == "web:v2");
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
  return {poller.ok(), poller.failed()};
}

}  // namespace

TEST_CASE("start-first: a published port keeps answering through an image change") {
  STACK_REQUIRE_ROOT();
  auto [ok, failed] = update_under("start-first");
  MESSAGE("start-first update: " << ok << " answers, " << failed << " failed requests");
  CHECK(ok >= 10);  // the poll ran through the update (31 on a quiet machine, 18 under load)
  CHECK(failed == 0);
}

TEST_CASE("stop-first: the same update leaves a gap (the comparison)") {
  STACK_REQUIRE_ROOT();
  auto [ok, failed] = update_under("stop-first");
  MESSAGE("stop-first update: " << ok << " answers, " << failed << " failed requests");
  CHECK(failed > 0);
}

TEST_CASE("an update whose new container never becomes healthy is rolled back, and stays so") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  TempDir images("stack-e2e-images");
  import_version(env, images, "v1");
  import_version(env, images, "v2");
  auto p = unique_project("updfail");
  env.uses(p);
  int port = free_port();
  env.write(web_file(p, port, "v1", "order: start-first, failure_action: rollback"));
  REQUIRE(env.stack({"up", "-d", "--wait"}).code == 0);
  int before = env.container(p, p + "-web-1")["pid"];
  // v2 with a health check that cannot pass: never served, v1 keeps the name and the port.
  env.write(web_file(p, port, "v2", "order: start-first, failure_action: rollback", "false"));
  int64_t since = StackEnv::now_ms();
  auto update = env.stack({"up", "-d"});
  CHECK(update.code == 1);
  CHECK(update.err.find("update of web failed at " + p + "-web-1") != std::string::npos);
  CHECK(update.err.find("rolled back") != std::string::npos);
  CHECK(!env.wait_event(p, since, [](auto& e) { return e["type"] == "update_failed"; }).is_null());
  CHECK(get(port) == "v1\n");
  auto ps = env.ps(p);
  REQUIRE(ps.size() == 1);
  CHECK(ps[0]["pid"] == before);
  CHECK(ps[0]["image"] == "web:v1");
  // The daemon's own reconcile does not try the failing update again while the file asks for it.
  env.start_daemon({"--resync", "0.1"});
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  CHECK(env.container(p, p + "-web-1")["pid"] == before);
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("stack rollback returns a service to what it ran before its last update") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  TempDir images("stack-e2e-images");
  import_version(env, images, "v1");
  import_version(env, images, "v2");
  auto p = unique_project("rollbk");
  env.uses(p);
  int port = free_port();
  env.write(web_file(p, port, "v1", "order: start-first"));
  REQUIRE(env.stack({"up", "-d", "--wait"}).code == 0);
  env.write(web_file(p, port, "v2", "order: start-first"));
  REQUIRE(env.stack({"up", "-d", "--wait"}).code == 0);
  REQUIRE(get(port) == "v2\n");
  Poller poller(port);
  auto back = env.stack({"rollback", "web"});
  REQUIRE_MESSAGE(back.code == 0, back.err);
  for (int i = 0; i < 200 && get(port) != "v1\n"; i++) std::this_thread::sleep_for(20ms);
  poller.finish();
  CHECK(get(port) == "v1\n");
  CHECK(poller.failed() == 0);  // rollback_config: start-first

  CHECK(env.container(p, p + "-web-1")["image"] == "web:v1");
  // An explicit up applies the file again.
  REQUIRE(env.stack({"up", "-d", "--wait"}).code == 0);
  CHECK(get(port) == "v2\n");
  CHECK(env.stack({"rollback", "nope"}).code != 0);
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("failure_action pause: a failed update stops where it failed and is not retried alone") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  TempDir images("stack-e2e-images");
  import_version(env, images, "v1");
  import_version(env, images, "v2");
  auto p = unique_project("updpause");
  env.uses(p);
  auto file = [&](const std::string& version, const std::string& health) {
    return "name: " + p + R"(
services:
  web:
    image: web:)" + version + R"(
    command: [sh, -c, "mkdir -p /www && cat /version > /www/index.html && exec httpd -f -p 80 -h /www"]
    healthcheck: {test: [CMD-SHELL, ")" + health + R"("], interval: 1s, start_period: 2s, start_interval: 50ms}
    deploy:
      replicas: 3
      update_config: {order: start-first, parallelism: 1, failure_action: pause}
)";
  };
  env.write(file("v1", "wget -q -O /dev/null http://127.0.0.1/"));
  REQUIRE(env.stack({"up", "-d", "--wait"}).code == 0);
  env.write(file("v2", "false"));
  auto plan = env.stack({"plan"}).out;
  CHECK(plan.find("~ rename " + p + "-web-1 to " + p + "-web-1-old (") != std::string::npos);
  CHECK(plan.find(", start-first)") != std::string::npos);
  auto update = env.stack({"up", "-d"});
  CHECK(update.code == 1);
  CHECK(update.err.find("(paused)") != std::string::npos);
  // The first replica failed and was undone; the other two were never touched.
  for (const auto& c : env.ps(p)) CHECK(c["image"] == "web:v1");
  CHECK(env.ps(p).size() == 3);
  env.start_daemon({"--resync", "0.1"});
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  for (const auto& c : env.ps(p)) CHECK(c["image"] == "web:v1");
  CHECK(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
