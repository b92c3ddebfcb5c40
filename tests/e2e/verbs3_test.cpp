// Compose verbs, part 3 (issue 15): `scale`, `create`, `rm` and the override record the
// daemon's passes respect until the next `up`, and `up`'s --scale, --no-start, --no-recreate,
// --force-recreate, --always-recreate-deps, --no-deps, --attach and --no-attach.
#include <doctest/doctest.h>

#include <algorithm>
#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;

namespace {

// PROJECT's containers, name -> state, as `ps -a` lists them.
std::map<std::string, std::string> states(StackEnv& env, const std::string& project) {
  std::map<std::string, std::string> out;
  for (const auto& c : env.ps(project)) out[c["name"]] = c["state"];
  return out;
}

int pid_of(StackEnv& env, const std::string& project, const std::string& name) {
  auto c = env.container(project, name);
  return c.is_null() ? 0 : c["pid"].get<int>();
}

const char* kTwoServices =
    "services:\n"
    "  db:\n    image: busybox\n    command: [sleep, '300']\n"
    "  web:\n    image: busybox\n    command: [sleep, '300']\n    depends_on: [db]\n";

}  // namespace

TEST_CASE("scale sets a service's replicas, the daemon's resyncs keep them, the next up resets them") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("scale");
  env.uses(p);
  env.write(kTwoServices);
  env.start_daemon({"--resync", "0.1"});
  REQUIRE(env.stack({"-p", p, "up", "-d"}).code == 0);

  auto r = env.stack({"-p", p, "scale", "web=3"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  std::map<std::string, std::string> three = {{p + "-db-1", "running"},
                                              {p + "-web-1", "running"},
                                              {p + "-web-2", "running"},
                                              {p + "-web-3", "running"}};
  CHECK(states(env, p) == three);
  // The daemon's passes re-plan from the file (one replica): they keep the scale.
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  CHECK(states(env, p) == three);

  REQUIRE(env.stack({"-p", p, "scale", "web=1"}).code == 0);
  CHECK(states(env, p).size() == 2);
  // `up --scale` is kept the same way; a plain `up` returns to the file's count.
  REQUIRE(env.stack({"-p", p, "up", "-d", "--scale", "web=2"}).code == 0);
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  CHECK(states(env, p).count(p + "-web-2") == 1);
  REQUIRE(env.stack({"-p", p, "scale", "web=3"}).code == 0);
  REQUIRE(env.stack({"-p", p, "up", "-d"}).code == 0);
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  CHECK(states(env, p) == std::map<std::string, std::string>{{p + "-db-1", "running"},
                                                             {p + "-web-1", "running"}});

  // Bad counts are usage errors that change nothing; an unknown service is named.
  CHECK(env.stack({"-p", p, "scale", "web"}).code == 2);
  CHECK(env.stack({"-p", p, "scale", "web=-1"}).code == 2);
  CHECK(env.stack({"-p", p, "up", "-d", "--scale", "web=x"}).code == 2);
  auto bad = env.stack({"-p", p, "scale", "nosuch=2"});
  CHECK(bad.code == 1);
  CHECK(bad.err.find("no such service in project " + p + ": nosuch") != std::string::npos);
  CHECK(states(env, p).size() == 2);
  REQUIRE(env.stack({"-p", p, "down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("rm removes stopped containers only, -s stops first, and no resync makes them again") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("rm");
  env.uses(p);
  env.write(kTwoServices);
  env.start_daemon({"--resync", "0.1"});
  REQUIRE(env.stack({"-p", p, "up", "-d"}).code == 0);

  auto r = env.stack({"-p", p, "rm", "-f", "web"});  // running: left, as compose does
  CHECK(r.code == 0);
  CHECK(r.err.find("No stopped containers") != std::string::npos);
  CHECK(states(env, p).count(p + "-web-1") == 1);

  REQUIRE(env.stack({"-p", p, "stop", "web"}).code == 0);
  r = env.stack({"-p", p, "rm", "-f", "web"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.err.find(p + "-web-1") != std::string::npos);
  CHECK(states(env, p) == std::map<std::string, std::string>{{p + "-db-1", "running"}});
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  CHECK(states(env, p) == std::map<std::string, std::string>{{p + "-db-1", "running"}});

  r = env.stack({"-p", p, "rm", "-s", "-f", "-v"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(states(env, p).empty());
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  CHECK(states(env, p).empty());

  // The next up makes them again.
  REQUIRE(env.stack({"-p", p, "up", "-d"}).code == 0);
  CHECK(states(env, p).size() == 2);
  REQUIRE(env.stack({"-p", p, "down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("create and up --no-start make containers the daemon leaves created until start") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("create");
  env.uses(p);
  env.write(kTwoServices);
  env.start_daemon({"--resync", "0.1"});

  auto r = env.stack({"-p", p, "create"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  std::map<std::string, std::string> created = {{p + "-db-1", "created"},
                                                {p + "-web-1", "created"}};
  CHECK(states(env, p) == created);
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  CHECK(states(env, p) == created);

  REQUIRE(env.stack({"-p", p, "start"}).code == 0);
  std::map<std::string, std::string> running = {{p + "-db-1", "running"},
                                                {p + "-web-1", "running"}};
  CHECK(states(env, p) == running);
  // Started: the daemon keeps them up again (a killed one is started anew).
  REQUIRE(env.wait_reconciles(env.reconciles(), 2));
  CHECK(states(env, p) == running);
  REQUIRE(env.stack({"-p", p, "down"}).code == 0);

  r = env.stack({"-p", p, "up", "--no-start"});  // attached, but nothing to attach to
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(states(env, p) == created);
  CHECK(env.stack({"-p", p, "up", "--no-start", "--wait"}).code == 2);
  REQUIRE(env.stack({"-p", p, "up", "-d"}).code == 0);
  CHECK(states(env, p) == running);
  REQUIRE(env.stack({"-p", p, "down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("up --no-recreate, --force-recreate, --always-recreate-deps and --no-deps") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("recreate");
  env.uses(p);
  env.write(kTwoServices);
  env.start_daemon({"--resync", "0.1"});
  // --no-deps: web alone, and the daemon's passes do not bring db up behind it.
  REQUIRE(env.stack({"-p", p, "up", "-d", "--no-deps", "web"}).code == 0);
  CHECK(states(env, p) == std::map<std::string, std::string>{{p + "-web-1", "running"}});
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  CHECK(states(env, p) == std::map<std::string, std::string>{{p + "-web-1", "running"}});
  REQUIRE(env.stack({"-p", p, "up", "-d"}).code == 0);
  int web = pid_of(env, p, p + "-web-1"), db = pid_of(env, p, p + "-db-1");
  REQUIRE(web > 0);
  REQUIRE(db > 0);

  // web changed (by a second file, which no watch sees): --no-recreate keeps it as it runs,
  // and so do the daemon's passes until the next up.
  env.write("services:\n  web:\n    environment: [CHANGED=1]\n", "changed.yaml");
  std::vector<std::string> files = {"-p", p, "-f", "stack.yaml", "-f", "changed.yaml"};
  auto with = [&](std::vector<std::string> more) {
    auto args = files;
    args.insert(args.end(), more.begin(), more.end());
    return env.stack(args);
  };
  REQUIRE(with({"up", "-d", "--no-recreate"}).code == 0);
  CHECK(pid_of(env, p, p + "-web-1") == web);
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  CHECK(pid_of(env, p, p + "-web-1") == web);
  CHECK(with({"up", "-d", "--no-recreate", "--force-recreate"}).code == 2);
  CHECK(with({"up", "-d", "--no-recreate", "--always-recreate-deps"}).code == 2);
  REQUIRE(with({"up", "-d"}).code == 0);
  int web2 = pid_of(env, p, p + "-web-1");
  CHECK(web2 != web);
  CHECK(pid_of(env, p, p + "-db-1") == db);

  // --always-recreate-deps: db (web's dependency) is made anew though unchanged; web is kept.
  REQUIRE(with({"up", "-d", "--always-recreate-deps", "web"}).code == 0);
  CHECK(pid_of(env, p, p + "-web-1") == web2);
  int db2 = pid_of(env, p, p + "-db-1");
  CHECK(db2 > 0);
  CHECK(db2 != db);
  // --force-recreate: every one anew.
  REQUIRE(with({"up", "-d", "--force-recreate"}).code == 0);
  CHECK(pid_of(env, p, p + "-web-1") != web2);
  CHECK(pid_of(env, p, p + "-db-1") != db2);
  REQUIRE(env.stack({"-p", p, "down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("up --attach and --no-attach choose whose output the attached up shows") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("attach");
  env.uses(p);
  env.write("services:\n"
            "  a:\n    image: busybox\n    command: [echo, from-a]\n    restart: 'no'\n"
            "  b:\n    image: busybox\n    command: [echo, from-b]\n    restart: 'no'\n");
  auto r = env.stack({"-p", p, "up", "--attach", "a"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("from-a") != std::string::npos);
  CHECK(r.out.find("from-b") == std::string::npos);
  r = env.stack({"-p", p, "up", "--force-recreate", "--no-attach", "a"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("from-a") == std::string::npos);
  CHECK(r.out.find("from-b") != std::string::npos);
  REQUIRE(env.stack({"-p", p, "down"}).code == 0);
}

TEST_CASE("the new verbs have --help, and the manual page's COMMANDS come from the command table") {
  StackEnv env;
  for (const char* verb : {"create", "rm", "scale", "run"}) {
    auto r = env.stack({verb, "--help"});
    CHECK_MESSAGE(r.code == 0, verb);
    CHECK(r.out.find("Usage") != std::string::npos);
  }
  auto man = env.stack({"help", "--man"});
  REQUIRE(man.code == 0);
  CHECK(man.out.rfind(".SH COMMANDS\n", 0) == 0);
  CHECK(man.out.find(".SS \"run\"\n.B stack run [OPTIONS] service") != std::string::npos);
  CHECK(man.out.find(".B \\-\\-service\\-ports\n") != std::string::npos);
  CHECK(man.out.find(".SS \"image ls\"") != std::string::npos);
  // Installed: the hand-written page, then the generated section (packaging/CMakeLists.txt).
  auto page = run({"/bin/sh", "-c", "gzip -dc '" + std::string(STACK_BUILD_DIR) +
                                        "/packaging/stack.1.gz'"});
  REQUIRE(page.code == 0);
  CHECK(page.out.rfind(".TH STACK 1", 0) == 0);
  CHECK(page.out.find(".SS \"scale\"") != std::string::npos);
}

TEST_CASE("exec --privileged can do what a plain exec cannot, inside the container only") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("privexec");
  env.uses(p);
  env.write("services:\n  app:\n    image: busybox\n    command: [sleep, '300']\n");
  REQUIRE(env.stack({"-p", p, "up", "-d"}).code == 0);
  auto host = run({"/bin/hostname"}).out;
  // sethostname(2) needs CAP_SYS_ADMIN, which Docker's default set lacks.
  auto plain = env.stack({"-p", p, "exec", "-T", "app", "hostname", "stkpriv"});
  CHECK(plain.code != 0);
  auto caps = env.stack({"-p", p, "exec", "-T", "app", "grep", "CapEff", "/proc/self/status"});
  CHECK(caps.out.find("00000000a80425fb") != std::string::npos);
  auto priv = env.stack({"-p", p, "exec", "-T", "--privileged", "app", "sh", "-c",
                         "hostname stkpriv && hostname && grep Seccomp: /proc/self/status"});
  REQUIRE_MESSAGE(priv.code == 0, priv.err);
  CHECK(priv.out.find("stkpriv") != std::string::npos);
  CHECK(priv.out.find("Seccomp:\t0") != std::string::npos);
  CHECK(run({"/bin/hostname"}).out == host);  // its own UTS namespace only
  REQUIRE(env.stack({"-p", p, "down"}).code == 0);
}

TEST_CASE("run: a one-off container after its dependencies, its output, its exit code, --rm") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("run");
  env.uses(p);
  env.write("services:\n"
            "  db:\n    image: busybox\n    command: [sleep, '300']\n"
            "  app:\n    image: busybox\n    command: [echo, from-the-file]\n"
            "    environment: [FROM_FILE=yes]\n    depends_on: [db]\n");
  env.start_daemon({"--resync", "0.1"});

  // The command after the service is the container's, options and "$" included.
  auto r = env.stack({"-p", p, "run", "--rm", "-e", "GREETING=hi$HOME", "-u", "1000:1000", "-w",
                      "/tmp", "app", "sh", "-c",
                      "echo $GREETING $FROM_FILE $(id -u) $(pwd); echo to-stderr >&2; exit 3"});
  CHECK_MESSAGE(r.code == 3, r.err);
  CHECK(r.out.find("hi$HOME yes 1000 /tmp\n") != std::string::npos);
  CHECK(r.out.find("to-stderr") == std::string::npos);
  CHECK(r.err.find("to-stderr") != std::string::npos);
  // db was started first and stays; --rm left no run container; app's own was never made.
  auto after = states(env, p);
  CHECK(after == std::map<std::string, std::string>{{p + "-db-1", "running"}});
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  CHECK(states(env, p) == after);

  // Without --rm: named as compose names it, with its labels; the service's command by default.
  r = env.stack({"-p", p, "run", "-l", "purpose=test", "app"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out == "from-the-file\n");
  nlohmann::json one_off;
  for (const auto& c : env.ps(p))
    if (c["name"].get<std::string>().rfind(p + "-app-run-", 0) == 0) one_off = c;
  REQUIRE(!one_off.is_null());
  CHECK(one_off["name"].get<std::string>().size() == (p + "-app-run-").size() + 12);
  CHECK(one_off["state"] == "exited");
  CHECK(one_off["labels"]["purpose"] == "test");
  CHECK(one_off["labels"]["com.docker.compose.oneoff"] == "True");

  // --entrypoint, --name, -d and a bind with -v.
  auto dir = env.project_dir() / "runvol";
  std::filesystem::create_directories(dir);
  r = env.stack({"-p", p, "run", "-d", "--name", p + "-job", "-v", dir.string() + ":/data",
                 "--entrypoint", "sh -c", "app", "echo written > /data/out; sleep 300"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out == p + "-job\n");
  CHECK(env.wait_for(p, p + "-job", [](const auto& c) { return c["state"] == "running"; })["state"] ==
        "running");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!std::filesystem::exists(dir / "out") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(std::filesystem::exists(dir / "out"));
  CHECK(env.stack({"-p", p, "run", "-d", "--name", p + "-job", "app", "true"}).code == 1);
  auto bad = env.stack({"-p", p, "run", "--name", "../escape", "app", "true"});
  CHECK(bad.code == 1);
  CHECK(bad.err.find("a container name is") != std::string::npos);
  // --no-deps on a fresh project starts nothing else.
  auto q = unique_project("runnodeps");
  env.uses(q);
  r = env.stack({"-p", q, "run", "--rm", "--no-deps", "app", "true"});
  CHECK_MESSAGE(r.code == 0, r.err);
  CHECK_MESSAGE(states(env, q).empty(), env.ps(q).dump());
  REQUIRE(env.wait_reconciles(env.reconciles(), 3));
  CHECK(states(env, q).empty());

  // down takes the run containers too, and leaves nothing.
  REQUIRE(env.stack({"-p", p, "down"}).code == 0);
  CHECK(env.ps(p).empty());
  CHECK(env.leftovers(p).empty());
  REQUIRE(env.stack({"-p", q, "down"}).code == 0);
  CHECK(env.leftovers(q).empty());
}

TEST_CASE("run publishes only -p ports unless --service-ports") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("runports");
  env.uses(p);
  env.write("services:\n  web:\n    image: busybox\n    command: [sleep, '300']\n"
            "    ports: ['127.0.0.1:28731:80']\n");
  // What a TCP client on loopback reads from PORT within a few tries ("" when nothing answers).
  auto read_port = [](int port, const std::string& want) {
    std::string got;
    for (int i = 0; i < 30 && got.find(want) == std::string::npos; i++) {
      got = run({"/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port) +
                                        " && timeout 2 cat <&3"}).out;
      if (got.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return got;
  };
  // The service's own port is not published by a run...
  auto r = env.stack({"-p", p, "run", "-d", "web", "sh", "-c", "echo from-plain | nc -l -p 80"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(read_port(28731, "from-plain").find("from-plain") == std::string::npos);
  // ...unless --service-ports; -p publishes its own.
  r = env.stack({"-p", p, "run", "-d", "--service-ports", "-p", "127.0.0.1:28732:8080", "web",
                 "sh", "-c", "echo hello-svc | nc -l -p 80 & echo hello-run | nc -l -p 8080"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(read_port(28731, "hello-svc").find("hello-svc") != std::string::npos);
  CHECK(read_port(28732, "hello-run").find("hello-run") != std::string::npos);
  REQUIRE(env.stack({"-p", p, "down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}


TEST_CASE("ps --no-trunc and --orphans=false, ls --filter name=") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("psflags");
  env.uses(p);
  env.write("services:\n"
            "  a:\n    image: busybox\n    command: [sh, -c, 'sleep 300; echo a-long-command-line']\n"
            "  b:\n    image: busybox\n    command: [sleep, '300']\n");
  REQUIRE(env.stack({"-p", p, "up", "-d"}).code == 0);
  auto cut = env.stack({"-p", p, "ps"});
  CHECK(cut.out.find("a-long-command-line") == std::string::npos);
  CHECK(env.stack({"-p", p, "ps", "--no-trunc"}).out.find("a-long-command-line") != std::string::npos);

  // b leaves the file: its container is an orphan, listed unless --orphans=false.
  env.write("services:\n"
            "  a:\n    image: busybox\n    command: [sh, -c, 'sleep 300; echo a-long-command-line']\n");
  CHECK(env.stack({"-p", p, "ps", "--services"}).out == "a\nb\n");
  CHECK(env.stack({"-p", p, "ps", "--services", "--orphans=false"}).out == "a\n");

  auto ls = env.stack({"ls", "--format", "json", "--filter", "name=" + p.substr(2)});
  REQUIRE(ls.code == 0);
  auto listed = nlohmann::json::parse(ls.out);
  CHECK(std::any_of(listed.begin(), listed.end(), [&](const auto& x) { return x["Name"] == p; }));
  CHECK(nlohmann::json::parse(env.stack({"ls", "--format", "json", "--filter",
                                         "name=no-such-project-at-all"}).out).empty());
  CHECK(env.stack({"ls", "--filter", "status=running"}).code == 2);
  REQUIRE(env.stack({"-p", p, "down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
