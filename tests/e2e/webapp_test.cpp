// The example application (examples/webapp) end to end: its Debian base made by
// scripts/make-webapp-base.sh (cached), its three images built by `stack build`, up, a row
// written through nginx's published port, the database restarted, the row read back, down -v.
// Skipped with the reason when the base cannot be made here (no debootstrap, no mirror).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const char* kBase = "stack-examples/debian-webapp:bookworm";

// A TCP port of 127.0.0.1 that nothing listens on right now.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// curl's body, with the HTTP status appended on a last line of its own.
RunResult http(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

std::string status_of(const RunResult& r) { return r.out.substr(r.out.rfind('\n') + 1); }

// The cached base tarball, or empty after reporting why it cannot be made here.
std::string base_tarball() {
  auto r = run({std::string(STACK_SOURCE_DIR) + "/scripts/make-webapp-base.sh"});
  if (r.code == 77) {
    report_skip("the webapp base image cannot be made here: " + r.err);
    return {};
  }
  REQUIRE_MESSAGE(r.code == 0, "make-webapp-base.sh failed: " << r.err);
  return r.out.substr(0, r.out.find('\n'));
}

// Up (after `stack build` when BUILD), a row POSTed through the published port, `restart db`,
// the row read back, down -v: the run of the example the test and the README describe.
void exercise(StackEnv& env, const std::string& file, bool build) {
  auto p = unique_project("webapp");
  env.uses(p);
  int port = free_port();
  REQUIRE(port > 0);
  std::vector<std::string> penv = {"WEBAPP_PORT=" + std::to_string(port)};
  auto in = [&](std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"-f", file, "-p", p});
    return env.stack(args, penv);
  };

  if (build) {
    auto built = in({"build"});
    REQUIRE_MESSAGE(built.code == 0, built.out << built.err);
  }
  auto up = in({"up", "-d", "--wait"});
  REQUIRE_MESSAGE(up.code == 0, up.out << up.err << env.stack({"logs", "-p", p}).out);
  auto ps = env.ps(p);
  REQUIRE(ps.size() == 3);
  for (const auto& c : ps) CHECK_MESSAGE(c["health"] == "healthy", c.dump());

  // PostgreSQL's server processes run as postgres, not root, under stack's init.
  auto who = in({"exec", "db", "sh", "-c",
                 "for d in /proc/[0-9]*; do [ \"$(cat $d/comm)\" = postgres ] && stat -c %U $d; "
                 "done | sort -u"});
  CHECK(who.out == "postgres\n");

  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/entries";
  std::string text = "row from " + p;
  auto posted = http({"--data-binary", text, url});
  REQUIRE_MESSAGE(status_of(posted) == "201", posted.out << posted.err);
  CHECK(posted.out.find(text) != std::string::npos);

  auto db_before = env.container(p, p + "-db-1");
  auto restarted = in({"restart", "db"});
  REQUIRE_MESSAGE(restarted.code == 0, restarted.err);
  auto db_after = env.wait_for(p, p + "-db-1", [&](const nlohmann::json& c) {
    return c["state"] == "running" && c["started_at"] != db_before["started_at"];
  });
  CHECK(db_after["started_at"] != db_before["started_at"]);

  // The app connects per request: once the database answers again, the row is there.
  RunResult got;
  for (auto until = std::chrono::steady_clock::now() + 60s;
       std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(200ms)) {
    got = http({url});
    if (status_of(got) == "200") break;
  }
  REQUIRE_MESSAGE(status_of(got) == "200", got.out << got.err);
  CHECK(got.out.find(text) != std::string::npos);

  auto down = in({"down", "-v"});
  CHECK_MESSAGE(down.code == 0, down.err);
  CHECK(env.leftovers(p).empty());
  // -v: the database's volume went too.
  CHECK(env.stack({"volume", "ls"}).out.find(p + "_pgdata") == std::string::npos);
  CHECK_FALSE(fs::exists(env.root() / "volumes" / (p + "_pgdata")));
  CHECK(http({url}).code != 0);  // nothing listens on the published port any more
}

}  // namespace

TEST_CASE("webapp example: stack build, up, a row written through nginx survives a db restart") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  // Until `stack build` is merged the CLI has no build command, and the images cannot be made.
  auto has_build = env.stack({"help", "build"});
  if (has_build.code != 0) {
    report_skip("this stack has no `stack build` command yet: " + has_build.err);
    return;
  }
  auto tarball = base_tarball();
  if (tarball.empty()) return;
  auto imported = env.stack({"image", "import", kBase, tarball});
  REQUIRE_MESSAGE(imported.code == 0, imported.err);

  // A copy of the example, so that nothing is written into the source tree.
  fs::path dir = env.project_dir() / "webapp";
  fs::copy(fs::path(STACK_SOURCE_DIR) / "examples/webapp", dir, fs::copy_options::recursive);
  exercise(env, (dir / "stack.yaml").string(), true);
}
