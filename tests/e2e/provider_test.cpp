// Provider services (compose's `provider:`) through the stack binary: a provider the test
// writes (sh) is run by `up` as compose runs it, its setenv lines reach the dependent
// container's environment as <SERVICE>_<KEY>, a reconcile does not run it again, `down` runs
// its down; a provider that fails fails `up` with its message and leaves nothing.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "e2e/stack_env.h"

using namespace stack::test;

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A provider named NAME in DIR: appends its argv to DIR/calls, then prints BODY's lines.
void write_provider(const std::filesystem::path& dir, const std::string& name, const std::string& body) {
  std::filesystem::create_directories(dir);
  auto path = dir / name;
  write_text(path, "#!/bin/sh\necho \"$*\" >> \"" + (dir / "calls").string() + "\"\n" + body);
  ::chmod(path.c_str(), 0755);
}

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) n++;
  return n;
}

// The CLI sends its environment with `up`, and the provider is looked up on its PATH: the
// test's own PATH gets DIR first while it lives (an extra PATH= entry would come second, and
// the first one wins).
struct PathGuard {
  std::string saved = std::getenv("PATH") ? std::getenv("PATH") : "";
  explicit PathGuard(const std::filesystem::path& dir) {
    ::setenv("PATH", (dir.string() + ":" + saved).c_str(), 1);
  }
  ~PathGuard() { ::setenv("PATH", saved.c_str(), 1); }
};

}  // namespace

TEST_CASE("a provider's setenv reaches its dependent, and down runs its down") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("prov");
  env.uses(p);
  auto bin = env.project_dir() / "bin";
  write_provider(bin, "stkcloud",
                 "case \"$3\" in up)\n"
                 "  echo '{\"type\":\"info\",\"message\":\"creating database\"}'\n"
                 "  echo '{\"type\":\"debug\",\"message\":\"debug line\"}'\n"
                 "  echo '{\"type\":\"setenv\",\"message\":\"URL=db.example:5432/app\"}'\n"
                 "  echo '{\"type\":\"setenv\",\"message\":\"password=s3cr3t\"}'\n"
                 "  echo '{\"type\":\"rawsetenv\",\"message\":\"RAW_TOKEN=tok\"}';;\n"
                 "down) echo '{\"type\":\"info\",\"message\":\"released\"}';;\n"
                 "esac\n");
  env.write("name: " + p + "\nservices:\n  database:\n    provider:\n      type: stkcloud\n"
            "      options: {size: 2, tag: [a, b]}\n"
            "  app:\n    image: busybox\n    depends_on: [database]\n"
            "    command: [sh, -c, 'env > /tmp/env; exec sleep 300']\n");
  PathGuard path(bin);
  std::vector<std::string> path_env;
  auto up = env.stack({"up", "-d"}, path_env);
  REQUIRE_MESSAGE(up.code == 0, (up.out + up.err));
  CHECK_MESSAGE((up.out + up.err).find("creating database") != std::string::npos, (up.out + up.err));
  CHECK(read_file(bin / "calls") ==
        "compose --project-name=" + p + " up --size=2 --tag=a --tag=b database\n");
  auto envs = env.stack({"exec", "app", "cat", "/tmp/env"});
  REQUIRE_MESSAGE(envs.code == 0, envs.err);
  CHECK_MESSAGE(envs.out.find("DATABASE_URL=db.example:5432/app\n") != std::string::npos, envs.out);
  CHECK_MESSAGE(envs.out.find("DATABASE_password=s3cr3t\n") != std::string::npos, envs.out);
  CHECK_MESSAGE(envs.out.find("RAW_TOKEN=tok\n") != std::string::npos, envs.out);
  // Not a container: ps shows only app, as compose's ps.
  auto ps = env.ps(p);
  REQUIRE(ps.size() == 1);
  CHECK(ps[0]["name"] == p + "-app-1");
  // The daemon's passes never run a provider (nor make app again: its environment holds).
  auto from = env.reconciles();
  env.start_daemon({"--resync", "0.1"});
  CHECK(env.wait_reconciles(env.reconciles(), 3));
  (void)from;
  CHECK(count_of(read_file(bin / "calls"), " up ") == 1);
  auto again = env.container(p, p + "-app-1");
  CHECK(again["started_at"] == ps[0]["started_at"]);
  CHECK(read_file(env.run_root() / "daemon.log").find("s3cr3t") == std::string::npos);
  auto down = env.stack({"down"}, path_env);
  REQUIRE_MESSAGE(down.code == 0, (down.out + down.err));
  CHECK(count_of(read_file(bin / "calls"), "compose --project-name=" + p +
                                               " down --size=2 --tag=a --tag=b database\n") == 1);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("a provider that fails fails up with its message and leaves nothing") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("provfail");
  env.uses(p);
  auto bin = env.project_dir() / "bin";
  write_provider(bin, "stkbad",
                 "echo '{\"type\":\"info\",\"message\":\"trying\"}'\n"
                 "echo '{\"type\":\"error\",\"message\":\"quota exceeded for project\"}'\n"
                 "sleep 60\n");
  write_provider(bin, "stkexit", "echo 'disk full' >&2\nexit 3\n");
  PathGuard path(bin);
  std::vector<std::string> path_env;
  for (const std::string type : {"stkbad", "stkexit", "stk-missing"}) {
    CAPTURE(type);
    env.write("name: " + p + "\nservices:\n  database:\n    provider: {type: " + type + "}\n"
              "  app:\n    image: busybox\n    depends_on: [database]\n"
              "    command: [sleep, '300']\n");
    auto up = env.stack({"up", "-d"}, path_env);
    CHECK(up.code != 0);
    std::string said = up.out + up.err;
    if (type == "stkbad")
      CHECK_MESSAGE(said.find("quota exceeded for project") != std::string::npos, said);
    if (type == "stkexit")
      CHECK_MESSAGE(said.find("exit status 3: disk full") != std::string::npos, said);
    if (type == "stk-missing")
      CHECK_MESSAGE(said.find("executable file not found") != std::string::npos, said);
    CHECK(env.ps(p).empty());
    CHECK(env.leftovers(p).empty());
  }
}
