// /etc/stack/daemon.json as the daemon reads it (STACK_DAEMON_CONFIG names another file): its
// options apply where no flag is given, a flag given wins, and a bad file stops the daemon with
// the file and key named before it touches anything.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;
namespace fs = std::filesystem;

namespace {

// STACK_DAEMON_CONFIG=PATH for this process and the daemons it starts, until destroyed.
struct ConfigEnv {
  explicit ConfigEnv(const fs::path& path) { ::setenv("STACK_DAEMON_CONFIG", path.c_str(), 1); }
  ~ConfigEnv() { ::unsetenv("STACK_DAEMON_CONFIG"); }
};

}  // namespace

TEST_CASE("daemon.json: the file's options reach the daemon, and a flag wins over the file") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto stacks = env.project_dir() / "stacks.d";
  auto wrong_root = env.project_dir() / "root-from-the-file";
  auto run_root = env.root().parent_path() / "run";
  fs::create_directories(stacks);
  write_text(env.project_dir() / "daemon.json",
             "{\"root\": \"" + wrong_root.string() + "\", \"stacks-dir\": \"" + stacks.string() +
                 "\", \"log-level\": \"debug\", \"resync\": 0.5}");
  ConfigEnv config(env.project_dir() / "daemon.json");
  // The log of the daemons started from here on (the image import's came before).
  auto log_since = [&, from = fs::file_size(run_root / "daemon.log")] {
    return read_text(run_root / "daemon.log").substr(from);
  };
  // --root and --run-root are given (StackEnv's), and --log-level: those win.
  env.start_daemon({"--log-level", "warn"});

  auto p = unique_project("cfg");
  env.uses(p);
  write_text(stacks / (p + ".yaml"),
             "name: " + p + "\nservices:\n  a:\n    image: busybox\n    command: [sleep, '300']\n");
  auto c = env.wait_for(p, p + "-a-1", [](auto& c) { return c["state"] == "running"; });
  CHECK_MESSAGE(c["state"] == "running", "the file's stacks-dir is the one the daemon watches");
  CHECK_MESSAGE(!fs::exists(wrong_root), "--root won over the file's root");
  CHECK_MESSAGE(log_since().find("ready pid=") == std::string::npos,
                "--log-level warn won over the file's debug: " << log_since());
  env.start_daemon({});  // no --log-level: the file's debug
  CHECK_MESSAGE(log_since().find("request GET /v1/version") != std::string::npos,
                "the file's log-level debug: " << log_since());

  fs::remove(stacks / (p + ".yaml"));
  env.wait_for(p, p + "-a-1", [](auto& c) { return c.is_null(); });
}

TEST_CASE("daemon.json: a bad file stops the daemon before it starts, naming file and key") {
  TempDir dir{"stack-e2e-cfg"};
  write_text(dir / "daemon.json", "{\n  \"resync\": \"5s\"\n}\n");
  // Not root needed: the file is checked first. The roots are the test's own, never touched.
  auto r = run({std::string(STACK_BUILD_DIR) + "/stackd", "--root", (dir / "root").string(),
                "--run-root", (dir / "run").string()},
               {"STACK_DAEMON_CONFIG=" + (dir / "daemon.json").string()});
  CHECK(r.code == 2);
  CHECK(r.err == "stackd: " + (dir / "daemon.json").string() +
                     ": \"resync\": expected a number of seconds from 0.01 to 86400, got \"5s\"\n");
  CHECK(!fs::exists(dir / "root"));
  CHECK(!fs::exists(dir / "run"));

  write_text(dir / "daemon.json", "{\n  \"resync\": 5,\n}\n");
  r = run({std::string(STACK_BUILD_DIR) + "/stack", "ps"},
          {"STACK_DAEMON_CONFIG=" + (dir / "daemon.json").string()});
  CHECK(r.code == 2);
  CHECK(r.err.rfind("stack: " + (dir / "daemon.json").string() + ":3:1: syntax error", 0) == 0);
}

TEST_CASE("daemon.json: log-max-size and log-max-file rotate the logs of services that set none") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  write_text(env.project_dir() / "daemon.json", R"({"log-max-size": "1k", "log-max-file": 2})");
  ConfigEnv config(env.project_dir() / "daemon.json");
  env.start_daemon({});
  auto p = unique_project("logdefault");
  env.uses(p);
  const std::string chatty =
      "    command: [sh, -c, 'for i in $$(seq 100); do echo line-$$i-xxxxxxxxxxxxxxxxxxxxxxxx; done;"
      " echo done; exec sleep 300']\n";
  env.write("name: " + p + "\nservices:\n  dflt:\n    image: busybox\n" + chatty +
            "  own:\n    image: busybox\n" + chatty +
            "    logging:\n      options: {max-size: 1m}\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto dir = [&](const std::string& c) { return env.root() / "containers" / (p + "-" + c + "-1"); };
  auto wrote_all = [&](const std::string& c) {
    for (int i = 0; i < 200; i++) {
      if (read_text(dir(c) / "container.log").find(" done") != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
  };
  REQUIRE(wrote_all("dflt"));
  REQUIRE(wrote_all("own"));
  // The daemon's default: 1 KiB files, two kept (about 7 KiB were written).
  CHECK(fs::exists(dir("dflt") / "container.log.1"));
  CHECK_FALSE(fs::exists(dir("dflt") / "container.log.2"));
  CHECK(fs::file_size(dir("dflt") / "container.log.1") <= 1024 + 128);
  // A service that sets its own keeps it.
  CHECK_FALSE(fs::exists(dir("own") / "container.log.1"));
  CHECK(env.stack({"down"}).code == 0);
}

TEST_CASE("daemon.json: registries-config names the registries file the daemon's pulls read") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  // The tests' own file comes through the environment, which wins over daemon.json: set aside
  // here (and put back), so that only the daemon.json key names a file.
  std::string tests_file = std::getenv("STACK_REGISTRIES_CONFIG");
  ::unsetenv("STACK_REGISTRIES_CONFIG");
  struct Restore {
    std::string value;
    ~Restore() { ::setenv("STACK_REGISTRIES_CONFIG", value.c_str(), 1); }
  } restore{tests_file};
  auto registries = env.project_dir() / "registries-from-daemon-json.json";
  // A loopback registry blocked by name: were the key ignored, the pull would go to 127.0.0.1:1
  // (refused), never off this machine.
  write_text(registries, R"({"blocked": ["127.0.0.1:1"]})");
  write_text(env.project_dir() / "daemon.json",
             "{\"registries-config\": \"" + registries.string() + "\"}");
  ConfigEnv config(env.project_dir() / "daemon.json");
  env.start_daemon({});
  auto p = unique_project("regcfg");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  s:\n    image: 127.0.0.1:1/nothing:1\n");
  auto up = env.stack({"up", "-d"});
  CHECK(up.code == 1);
  CHECK_MESSAGE(up.err.find("registry 127.0.0.1:1 is blocked by " + registries.string()) !=
                    std::string::npos,
                up.err);
}
