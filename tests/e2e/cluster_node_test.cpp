// Daemons joining a cluster on a real etcd (one member on loopback, started by the test):
// `stack node ls|inspect|update`, a second daemon refused a name in use, a killed daemon's node
// going down after its lease's TTL, and a lost etcd that stops neither containers nor the API.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "e2e/stack_env.h"
#include "support/etcd_fixture.h"

using namespace stack::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// `node ls --format json` from ENV, null when the command fails.
json nodes(StackEnv& env) {
  auto r = env.stack({"node", "ls", "--format", "json"});
  if (r.code != 0) return nullptr;
  return json::parse(r.out, nullptr, false);
}

json node_in(const json& list, const std::string& name) {
  if (!list.is_array()) return nullptr;
  for (const auto& n : list)
    if (n["name"] == name) return n;
  return nullptr;
}

// Polls ENV's `node ls` until NAME's status is STATUS; returns the last entry seen.
json wait_status(StackEnv& env, const std::string& name, const std::string& status,
                 std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  json n;
  while (std::chrono::steady_clock::now() < deadline) {
    n = node_in(nodes(env), name);
    if (!n.is_null() && n["status"] == status) return n;
    std::this_thread::sleep_for(100ms);
  }
  return n;
}

std::vector<std::string> join_args(const EtcdCluster& etcd, const std::string& name) {
  return {"--cluster", etcd.endpoints()[0], "--node-name", name, "--advertise", "127.0.0.1"};
}

// KEY's value as etcdctl reads it from ETCD ("" when missing).
std::string etcd_get(const EtcdCluster& etcd, const std::string& key) {
  auto r = run({"/usr/bin/etcdctl", "--endpoints", etcd.endpoints()[0], "get", key,
                "--print-value-only"});
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r.out;
}

// One member on loopback, or why there is none (the test is then skipped).
#define STACK_REQUIRE_ETCD(var, ...)                                  \
  if (auto why = etcd_missing(); !why.empty()) return report_skip(why); \
  auto var = EtcdCluster::single(__VA_ARGS__);                         \
  REQUIRE(var->healthy())

}  // namespace

TEST_CASE("cluster: a daemon joins, node ls shows it ready, and its labels are kept") {
  STACK_REQUIRE_ROOT();
  STACK_REQUIRE_ETCD(etcd);
  StackEnv env;
  auto name = unique_project("node");
  env.start_daemon(join_args(*etcd, name));
  auto n = wait_status(env, name, "ready", 10s);
  REQUIRE_MESSAGE(n["status"] == "ready", n.dump());
  CHECK(n["address"] == "127.0.0.1");
  CHECK(n["self"] == true);
  CHECK(n["cpus"].get<int>() >= 1);
  CHECK(n["memory_bytes"].get<int64_t>() > 0);
  CHECK(n["engine_version"] == STACK_VERSION);

  auto table = env.stack({"node", "ls"});
  REQUIRE(table.code == 0);
  CHECK(table.out.rfind("NAME", 0) == 0);
  CHECK(table.out.find(name + " *") != std::string::npos);
  CHECK(table.out.find("127.0.0.1") != std::string::npos);
  CHECK(table.out.find("ready") != std::string::npos);

  auto up = env.stack({"node", "update", "--label-add", "zone=a", "--label-add", "ssd=true", name});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto rm = env.stack({"node", "update", "--label-rm", "ssd", name});
  REQUIRE_MESSAGE(rm.code == 0, rm.err);
  CHECK(node_in(nodes(env), name)["labels"] == json{{"zone", "a"}});
  CHECK(env.stack({"node", "ls"}).out.find("zone=a") != std::string::npos);
  auto inspect = env.stack({"node", "inspect", name});
  REQUIRE(inspect.code == 0);
  auto doc = json::parse(inspect.out);
  CHECK(doc[0]["labels"]["zone"] == "a");
  CHECK(doc[0]["agent"]["state"] == "ready");
  // What etcd holds, as another client reads it.
  CHECK(etcd_get(*etcd, "/stack/node-labels/" + name) == R"({"zone":"a"})");

  auto missing = env.stack({"node", "inspect", "no-such-node"});
  CHECK(missing.code == 1);
  CHECK(missing.err == "stack: no such node: no-such-node\n");
  auto bad = env.stack({"node", "update", "--label-add", "a b=c", name});
  CHECK(bad.code == 1);
  CHECK(bad.err.find("not a label key") != std::string::npos);
}

TEST_CASE("cluster: node commands on a daemon that is not in a cluster say so") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto r = env.stack({"node", "ls"});
  CHECK(r.code == 1);
  CHECK(r.err == "stack: this daemon is not in a cluster (start it with --cluster URLS)\n");
  auto help = env.stack({"node", "update", "--help"});
  CHECK(help.code == 0);
  CHECK(help.out.find("--label-add") != std::string::npos);
}

TEST_CASE("cluster: a second daemon with the same node name is refused while the first lives") {
  STACK_REQUIRE_ROOT();
  STACK_REQUIRE_ETCD(etcd);
  StackEnv first;
  auto name = unique_project("dup");
  first.start_daemon(join_args(*etcd, name));
  REQUIRE(wait_status(first, name, "ready", 10s)["status"] == "ready");
  TempDir other{"stack-e2e-dup"};
  auto r = run({std::string(STACK_BUILD_DIR) + "/stackd", "--root", (other / "root").string(),
                "--run-root", (other / "run").string(), "--cluster", etcd->endpoints()[0], "--node-name",
                name, "--advertise", "127.0.0.2"});
  CHECK(r.code == 1);
  CHECK_MESSAGE(r.err.find("stackd: --cluster: register node " + name +
                           ": the name is held by another daemon (address 127.0.0.1") !=
                    std::string::npos,
                r.err);
  CHECK(node_in(nodes(first), name)["address"] == "127.0.0.1");
}

TEST_CASE("cluster: a killed daemon's node goes down after its TTL, and comes back with it") {
  STACK_REQUIRE_ROOT();
  STACK_REQUIRE_ETCD(etcd);
  StackEnv a, b;
  auto name_a = unique_project("ka"), name_b = unique_project("kb");
  a.start_daemon(join_args(*etcd, name_a));
  b.start_daemon(join_args(*etcd, name_b));
  REQUIRE(wait_status(b, name_a, "ready", 10s)["status"] == "ready");
  REQUIRE(a.stack({"node", "update", "--label-add", "role=a", name_a}).code == 0);
  int pid = a.api_get("/v1/version")["pid"].get<int>();
  auto killed = std::chrono::steady_clock::now();
  REQUIRE(::kill(pid, SIGKILL) == 0);
  // The lease (10 s) expires without keepalives: down, still listed by its labels.
  auto down = wait_status(b, name_a, "down", 20s);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed);
  REQUIRE_MESSAGE(down["status"] == "down", down.dump());
  CHECK(down["labels"] == json{{"role", "a"}});
  MESSAGE("down after " << took.count() << " ms");
  CHECK(took >= 6s);  // not before the lease could have expired (TTL 10 s, renewed every 3.3 s)
  a.start_daemon(join_args(*etcd, name_a));
  CHECK(wait_status(b, name_a, "ready", 10s)["status"] == "ready");
}

TEST_CASE("cluster: with etcd gone containers run and the API answers, and with etcd back the node is ready") {
  STACK_REQUIRE_ROOT();
  STACK_REQUIRE_ETCD(etcd);
  StackEnv env;
  auto name = unique_project("lost");
  env.start_daemon(join_args(*etcd, name));
  REQUIRE(wait_status(env, name, "ready", 10s)["status"] == "ready");
  auto p = unique_project("lost");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  a:\n    image: busybox\n    command: [sleep, '300']\n");
  REQUIRE(env.stack({"up", "-d"}).code == 0);
  auto c = env.wait_for(p, p + "-a-1", [](auto& c) { return c["state"] == "running"; });
  REQUIRE(c["state"] == "running");
  int pid = c["pid"].get<int>();

  etcd->kill(0);
  auto t0 = std::chrono::steady_clock::now();
  auto ps = env.stack({"ps", "--format", "json"});
  CHECK(ps.code == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  CHECK(env.container(p, p + "-a-1")["state"] == "running");
  CHECK(::kill(pid, 0) == 0);
  auto ls = env.stack({"node", "ls"});
  CHECK(ls.code == 1);  // the store is unreachable: said, not hung
  CHECK_MESSAGE(!ls.err.empty(), ls.err);
  // The agent noticed (its keepalive failed) and keeps retrying; the container is untouched.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  json version;
  while (std::chrono::steady_clock::now() < deadline) {
    version = env.api_get("/v1/version");
    if (version["cluster"]["state"] == "unreachable") break;
    std::this_thread::sleep_for(100ms);
  }
  CHECK_MESSAGE(version["cluster"]["state"] == "unreachable", version.dump());
  CHECK(version["cluster"]["node"] == name);
  CHECK(env.stack({"ps"}).code == 0);
  CHECK(env.container(p, p + "-a-1")["state"] == "running");
  CHECK(::kill(pid, 0) == 0);

  REQUIRE(etcd->restart(0));
  auto n = wait_status(env, name, "ready", 20s);
  CHECK_MESSAGE(n["status"] == "ready", n.dump());
  CHECK(env.container(p, p + "-a-1")["pid"] == pid);  // the same container, never restarted
}

TEST_CASE("cluster: a daemon joins an etcd that wants TLS client certificates") {
  STACK_REQUIRE_ROOT();
  STACK_REQUIRE_ETCD(etcd, true);
  const auto& pki = etcd->pki();
  StackEnv env;
  auto name = unique_project("tls");
  auto args = join_args(*etcd, name);
  args.insert(args.end(), {"--cluster-ca", pki.ca, "--cluster-cert", pki.client_cert,
                           "--cluster-key", pki.client_key});
  env.start_daemon(args);
  auto n = wait_status(env, name, "ready", 10s);
  CHECK_MESSAGE(n["status"] == "ready", n.dump());

  // Without the client certificate etcd refuses the connection: the daemon still serves, and
  // says why its node is not ready.
  env.start_daemon({"--cluster", etcd->endpoints()[0], "--node-name", name + "x", "--advertise",
                    "127.0.0.1", "--cluster-ca", pki.ca});
  auto v = env.api_get("/v1/version");
  CHECK(v["cluster"]["state"] == "unreachable");
  CHECK_MESSAGE(!v["cluster"]["error"].get<std::string>().empty(), v.dump());
}

TEST_CASE("cluster: bad cluster flags stop the daemon before it touches anything") {
  TempDir dir{"stack-e2e-clflags"};
  auto stackd = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {std::string(STACK_BUILD_DIR) + "/stackd", "--root",
                                     (dir / "root").string(), "--run-root", (dir / "run").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };
  auto r = stackd({"--node-name", "n1"});
  CHECK(r.code == 2);
  CHECK(r.err == "stackd: --node-name, --advertise, --ingress-subnet and the --cluster-* files "
                 "need --cluster URLS\n");
  r = stackd({"--ingress-subnet", "10.1.0.0/16"});
  CHECK(r.code == 2);
  CHECK(r.err.find("need --cluster URLS") != std::string::npos);
  r = stackd({"--cluster", "http://127.0.0.1:2379", "--ingress-subnet", "10.1.0.0/30"});
  CHECK(r.code != 0);
  CHECK_MESSAGE(r.err.find("not an IPv4 subnet A.B.C.D/N with N from 8 to 28") != std::string::npos,
                r.err);
  r = stackd({"--cluster", "10.0.0.1:2379"});
  CHECK(r.code == 2);
  CHECK(r.err == "stackd: --cluster: not an etcd client URL such as http://10.0.0.5:2379: "
                 "\"10.0.0.1:2379\"\n");
  r = stackd({"--cluster", "http://127.0.0.1:2379", "--cluster-cert", "/x.pem"});
  CHECK(r.code == 2);
  CHECK(r.err == "stackd: --cluster-cert and --cluster-key go together\n");
  r = stackd({"--cluster", "http://127.0.0.1:2379", "--node-name", "-bad"});
  CHECK(r.code == 2);
  CHECK(r.err.find("not a node name") != std::string::npos);
  CHECK(!std::filesystem::exists(dir / "root"));
  CHECK(!std::filesystem::exists(dir / "run"));
}
