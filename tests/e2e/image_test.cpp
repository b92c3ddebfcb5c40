// Images end to end through the stack binary: a multi-layer image from an index pulled from a
// registry on loopback and run, a second pull that transfers nothing, `stack pull`, `up` pulling
// what is missing (the PullImage step, pull_policy never), an image of
// 128 layers, the image's HEALTHCHECK as the service's default, the image commands with
// --format json, login, and an image re-imported under a running container. Root.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <thread>

#include "e2e/stack_env.h"
#include "integration/registry_fixture.h"

using namespace stack::test;
namespace fs = std::filesystem;

namespace {

#define REQUIRE_IMAGE_TOOLS()                                                   \
  do {                                                                          \
    STACK_REQUIRE_ROOT();                                                       \
    if (!registry_tools_present()) {                                            \
      report_skip("needs docker-registry, skopeo and umoci (install-deps.sh)"); \
      return;                                                                   \
    }                                                                           \
  } while (0)

nlohmann::json json_of(const RunResult& r) {
  INFO(r.err);
  REQUIRE(r.code == 0);
  return nlohmann::json::parse(r.out);
}

// `stack` with STDIN, for what StackEnv::stack cannot give (a password on stdin).
RunResult stack_with_input(StackEnv& env, const std::vector<std::string>& args,
                           const std::vector<std::string>& vars, const std::string& input) {
  std::vector<std::string> argv = {std::string(STACK_BUILD_DIR) + "/stack", "--root",
                                   env.root().string(), "--run-root",
                                   (env.root().parent_path() / "run").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, vars, input);
}

}  // namespace

TEST_CASE("stack image pull then up runs a multi-layer image from an index") {
  REQUIRE_IMAGE_TOOLS();
  StackEnv env;
  TempDir tmp("stack-e2e-pull");
  Registry reg;
  write_text(tmp / "app/app/hello", "hello from the second layer\n");
  Layout l(tmp / "layout", "1");
  l.insert(busybox_rootfs(), "/")
      .insert(tmp / "app/app", "/app")
      .whiteout("/etc/nsswitch.conf")
      .config({"--config.cmd", "sleep", "--config.cmd", "300"})
      .make_index();
  reg.push(l.dir(), "1", "team/app:1", true);
  const std::string ref = reg.host() + "/team/app:1";

  auto pulled = env.stack({"image", "pull", ref});
  REQUIRE_MESSAGE(pulled.code == 0, pulled.err);
  CHECK(pulled.out == ref + "\n");
  CHECK(pulled.err.find("Pull complete") != std::string::npos);  // a pipe: plain lines
  CHECK(pulled.err.find("\033[") == std::string::npos);
  auto inspected = json_of(env.stack({"image", "inspect", ref}));
  REQUIRE(inspected.size() == 1);
  CHECK(inspected[0]["layers"].size() == 3);
  CHECK(inspected[0]["architecture"] == "amd64");
  CHECK(inspected[0]["repo_digests"][0] == reg.host() + "/team/app@" + l.digest());

  auto p = unique_project("pull");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  app:\n    image: " + ref + "\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(env.stack({"exec", "app", "cat", "/app/hello"}).out == "hello from the second layer\n");
  CHECK(env.stack({"exec", "app", "test", "-e", "/etc/nsswitch.conf"}).code == 1);  // whited out
  CHECK(env.stack({"exec", "app", "test", "-e", "/etc/passwd"}).code == 0);

  // `stack pull` of the project: asks the registry, transfers no layer.
  int blobs = reg.count("\"GET /v2/team/app/blobs/");
  auto again = env.stack({"pull"});
  REQUIRE_MESSAGE(again.code == 0, again.err);
  CHECK(again.err.find("Already exists") != std::string::npos);
  CHECK(reg.count("\"GET /v2/team/app/blobs/") == blobs);
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("up pulls an image only in the registry, a second up pulls nothing, never fails clearly") {
  REQUIRE_IMAGE_TOOLS();
  StackEnv env;
  TempDir tmp("stack-e2e-uppull");
  Registry reg;
  write_text(tmp / "app/app/hello", "pulled by up\n");
  Layout l(tmp / "layout", "1");
  l.insert(busybox_rootfs(), "/")
      .insert(tmp / "app/app", "/app")
      .config({"--config.cmd", "sleep", "--config.cmd", "300"});
  reg.push(l.dir(), "1", "team/up:1");
  const std::string ref = reg.host() + "/team/up:1";

  auto p = unique_project("uppull");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  app:\n    image: " + ref + "\n");
  auto planned = env.stack({"plan"});
  REQUIRE_MESSAGE(planned.code == 0, planned.err);
  CHECK(planned.out.find("+ pull " + ref + " (missing)\n") == 0);
  CHECK(reg.count("\"GET /v2/team/up/blobs/") == 0);  // planning pulls nothing

  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(up.err.find("Image " + ref + " Pulled") != std::string::npos);
  CHECK(up.err.find("Pull complete") != std::string::npos);  // a pipe: one line per layer status
  CHECK(up.err.find("\033[") == std::string::npos);
  CHECK(reg.count("\"GET /v2/team/up/blobs/") > 0);
  CHECK(env.stack({"exec", "app", "cat", "/app/hello"}).out == "pulled by up\n");

  // The image is here now: a second up asks the registry nothing.
  int requests = reg.count("\"GET /v2/");
  auto again = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(again.code == 0, again.err);
  CHECK(again.err.find("Pull") == std::string::npos);
  CHECK(reg.count("\"GET /v2/") == requests);
  // --pull always asks (and transfers no layer: they are all here).
  int blobs = reg.count("\"GET /v2/team/up/blobs/");
  auto always = env.stack({"up", "-d", "--pull", "always"});
  REQUIRE_MESSAGE(always.code == 0, always.err);
  CHECK(always.err.find("Image " + ref + " Pulled") != std::string::npos);
  CHECK(reg.count("\"GET /v2/team/up/blobs/") == blobs);
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());

  // pull_policy never and the image not here: refused before anything is made.
  auto q = unique_project("upnever");
  env.uses(q);
  const std::string missing = reg.host() + "/team/absent:1";
  env.write("name: " + q + "\nservices:\n  web:\n    image: " + missing +
            "\n    pull_policy: never\n");
  auto never = env.stack({"up", "-d"});
  INFO(never.err);
  CHECK(never.code == 1);
  CHECK(never.err.find("service \"web\"") != std::string::npos);
  CHECK(never.err.find("image \"" + missing + "\"") != std::string::npos);
  CHECK(never.err.find("pull_policy is never") != std::string::npos);
  CHECK(env.leftovers(q).empty());

  // A pull the registry refuses: the up fails with the registry's word, no container made.
  env.write("name: " + q + "\nservices:\n  web:\n    image: " + missing + "\n");
  auto refused = env.stack({"up", "-d"});
  CHECK(refused.code == 1);
  INFO(refused.err);
  CHECK(refused.err.find("pull " + missing) != std::string::npos);
  CHECK(env.stack({"ps", "-a", "-q"}).out.empty());
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(q).empty());
}

TEST_CASE("an image of 128 layers runs") {
  REQUIRE_IMAGE_TOOLS();
  StackEnv env;
  TempDir tmp("stack-e2e-128");
  Layout l(tmp / "layout", "1");
  l.insert(busybox_rootfs(), "/");
  for (int i = 1; i < 128; i++) {
    const std::string n = std::to_string(i);
    fs::path dir = tmp / "l";
    dir += n;
    fs::path file = dir / "f";
    file += n;
    write_text(file, n);
    l.insert(dir, "/layers");
  }
  l.config({"--config.cmd", "sleep", "--config.cmd", "300"});
  auto imported = env.stack({"image", "import", "deep:128", l.dir().string()});
  REQUIRE_MESSAGE(imported.code == 0, imported.err);
  CHECK(json_of(env.stack({"image", "inspect", "deep:128"}))[0]["layers"].size() == 128);
  // Their paths alone are far more than the page mount(2) options fit in.
  CHECK(128 * (env.root() / "images/layers" / std::string(64, 'x')).string().size() > 4096);

  auto p = unique_project("deep");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  a:\n    image: deep:128\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(env.stack({"exec", "a", "sh", "-c", "ls /layers | wc -l"}).out == "127\n");
  CHECK(env.stack({"exec", "a", "cat", "/layers/f1", "/layers/f127"}).out == "1127");
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("the image's HEALTHCHECK is the service's default") {
  REQUIRE_IMAGE_TOOLS();
  StackEnv env;
  TempDir tmp("stack-e2e-health");
  Layout l(tmp / "layout", "1");
  l.insert(busybox_rootfs(), "/")
      .config({"--config.cmd", "sh", "--config.cmd", "-c", "--config.cmd",
               "touch /tmp/ready; exec sleep 300", "--config.exposedports", "8080/tcp",
               "--config.volume", "/data"})
      .edit_config([](nlohmann::json& c) {
        c["config"]["Healthcheck"] = {{"Test", {"CMD-SHELL", "test -e /tmp/ready"}},
                                      {"Interval", 100'000'000},
                                      {"Retries", 2}};
      });
  REQUIRE(env.stack({"image", "import", "checked:1", l.dir().string()}).code == 0);
  auto inspected = json_of(env.stack({"image", "inspect", "checked:1"}))[0];
  CHECK(inspected["config"]["ExposedPorts"] == nlohmann::json::array({"8080/tcp"}));
  CHECK(inspected["config"]["Volumes"] == nlohmann::json::array({"/data"}));
  CHECK(inspected["config"]["Healthcheck"]["Test"][1] == "test -e /tmp/ready");

  auto p = unique_project("hc");
  env.uses(p);
  env.write("name: " + p +
            "\nservices:\n  checked:\n    image: checked:1\n"
            "  off:\n    image: checked:1\n    healthcheck:\n      disable: true\n");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  auto c = env.wait_for(p, p + "-checked-1",
                        [](const nlohmann::json& c) { return c["health"] == "healthy"; });
  CHECK(c["health"] == "healthy");
  CHECK(env.container(p, p + "-off-1")["health"] == "");
  // The image's VOLUME /data is an anonymous volume: a mount of its own, in the container's
  // directory, not the writable layer.
  auto mounts = env.stack({"exec", "checked", "cat", "/proc/self/mountinfo"}).out;
  CHECK_MESSAGE(mounts.find(" /data ") != std::string::npos, mounts);
  CHECK(env.stack({"exec", "checked", "sh", "-c", "echo kept > /data/f"}).code == 0);
  bool in_volume = false;
  for (const auto& e : fs::recursive_directory_iterator(env.root() / "containers" / (p + "-checked-1") / "volumes"))
    in_volume = in_volume || e.path().filename() == "f";
  CHECK(in_volume);
  CHECK(env.stack({"down"}).code == 0);
}

TEST_CASE("image ls, inspect, tag, rm and prune") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto tagged = json_of(env.stack({"image", "tag", "--format", "json", "busybox", "mybox:2"}));
  CHECK(tagged["reference"] == "mybox:2");
  auto list = json_of(env.stack({"image", "ls", "--format", "json"}));
  REQUIRE(list.size() == 2);
  CHECK(list[0]["reference"] == "busybox:latest");
  CHECK(list[1]["reference"] == "mybox:2");
  CHECK(list[0]["id"] == list[1]["id"]);
  CHECK(list[0]["tags"] == nlohmann::json::array({"busybox:latest", "mybox:2"}));
  auto table = env.stack({"image", "ls"});
  CHECK(table.out.rfind("REPOSITORY", 0) == 0);
  CHECK(table.out.find("\nmybox ") != std::string::npos);
  auto one = json_of(env.stack({"image", "inspect", "mybox:2"}))[0];
  for (const char* key : {"id", "digest", "size", "created", "layers", "tags", "config"})
    CHECK_MESSAGE(one.contains(key), key);
  CHECK(one["config"]["Env"][0].get<std::string>().rfind("PATH=", 0) == 0);
  // By a short id too, as docker.
  CHECK(json_of(env.stack({"image", "inspect",
                           one["id"].get<std::string>().substr(7, 12)}))[0]["id"] == one["id"]);

  auto p = unique_project("imgs");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  a:\n    image: mybox:2\n    command: [sleep, '300']\n");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  auto untag = json_of(env.stack({"image", "rm", "--format", "json", "busybox"}));
  CHECK(untag[0]["untagged"] == nlohmann::json::array({"busybox:latest"}));  // mybox:2 keeps it
  CHECK(untag[0]["deleted"].empty());
  auto refused = env.stack({"image", "rm", "mybox:2"});
  CHECK(refused.code == 1);
  CHECK(refused.err.find("is used by container " + p + "-a-1") != std::string::npos);
  auto forced = env.stack({"image", "rm", "-f", "mybox:2"});
  CHECK(forced.code == 0);
  CHECK(forced.out == "Untagged: mybox:2\n");
  auto untagged = json_of(env.stack({"image", "ls", "--format", "json"}));
  REQUIRE(untagged.size() == 1);
  CHECK(untagged[0]["repository"] == "<none>");
  CHECK(json_of(env.stack({"image", "prune", "--format", "json"}))["deleted"].empty());  // in use
  CHECK(env.stack({"exec", "a", "true"}).code == 0);
  REQUIRE(env.stack({"down"}).code == 0);
  auto pruned = env.stack({"image", "prune"});
  CHECK(pruned.out.find("Deleted: " + one["id"].get<std::string>()) != std::string::npos);
  CHECK(json_of(env.stack({"image", "ls", "--format", "json"})).empty());
  CHECK(fs::is_empty(env.root() / "images/layers"));
}

TEST_CASE("the image commands have --help") {
  StackEnv env;
  for (std::vector<std::string> cmd : {std::vector<std::string>{"image", "pull"},
                                       {"image", "inspect"},
                                       {"image", "tag"},
                                       {"image", "prune"},
                                       {"image", "save"},
                                       {"image", "load"},
                                       {"pull"},
                                       {"login"},
                                       {"logout"}}) {
    cmd.push_back("--help");
    auto r = env.stack(cmd);
    CHECK_MESSAGE(r.code == 0, cmd[0]);
    CHECK(r.out.find("Usage:") != std::string::npos);
  }
}

TEST_CASE("an image re-imported under a running container keeps the container's layers") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("reimp");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  a:\n    image: busybox\n    command: [sleep, '300']\n");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  TempDir tmp("stack-e2e-reimport");
  write_text(tmp / "rootfs/new-file", "new\n");
  auto imported = env.stack({"image", "import", "busybox:latest", (tmp / "rootfs").string()});
  REQUIRE_MESSAGE(imported.code == 0, imported.err);
  // The container still has its files, and starts again from them.
  CHECK(env.stack({"exec", "a", "/bin/busybox", "true"}).code == 0);
  REQUIRE(env.stack({"restart", "a"}).code == 0);
  CHECK(env.stack({"exec", "a", "test", "-e", "/bin/sh"}).code == 0);
  CHECK(env.stack({"down"}).code == 0);
}

TEST_CASE("stack login writes the auth file a pull then uses") {
  REQUIRE_IMAGE_TOOLS();
  StackEnv env;
  TempDir tmp("stack-e2e-login");
  Registry reg;
  Layout l(tmp / "layout", "1");
  l.insert(busybox_rootfs(), "/");
  reg.push(l.dir(), "1", "private/app:1");
  Proxy proxy(reg.port());
  proxy.gate("alice", "s3cret");
  const std::string auth = "REGISTRY_AUTH_FILE=" + (tmp / "auth/config.json").string();

  auto wrong = stack_with_input(
      env, {"login", "--username", "alice", "--password-stdin", proxy.host()}, {auth}, "nope\n");
  CHECK(wrong.code == 1);
  CHECK(wrong.err.find("unauthorized") != std::string::npos);
  CHECK(!fs::exists(tmp / "auth/config.json"));
  auto denied = env.stack({"image", "pull", proxy.host() + "/private/app:1"}, {auth});
  CHECK(denied.code == 1);

  auto login = stack_with_input(
      env, {"login", "--username", "alice", "--password-stdin", proxy.host()}, {auth}, "s3cret\n");
  REQUIRE_MESSAGE(login.code == 0, login.err);
  CHECK(login.out == "Login Succeeded\n");
  struct stat st {};
  REQUIRE(::stat((tmp / "auth/config.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto file = nlohmann::json::parse(read_text(tmp / "auth/config.json"));
  CHECK(file["auths"][proxy.host()]["auth"] == "YWxpY2U6czNjcmV0");

  auto pulled = env.stack({"image", "pull", proxy.host() + "/private/app:1"}, {auth});
  CHECK_MESSAGE(pulled.code == 0, pulled.err);
  CHECK(env.stack({"logout", proxy.host()}, {auth}).code == 0);
  CHECK(nlohmann::json::parse(read_text(tmp / "auth/config.json"))["auths"].empty());
}
