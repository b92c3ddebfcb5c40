// Chaos: the daemon is killed with SIGKILL at a random moment of `up`, `down` and updates of a
// 20-service stack; a new daemon must converge with no duplicate and nothing leaked (containers,
// processes, cgroups, bridges, addresses, state rows). STACK_CHAOS_ITERATIONS sets the count
// (CI runs a few; the benchmark mode runs hundreds), STACK_CHAOS_SEED replays a run.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "e2e/stack_env.h"

using namespace stack::test;
using namespace std::chrono_literals;

namespace {

// 20 services on two networks: a database, nine services that depend on it, five with two
// replicas, five with a restart policy; GEN changes the environment of every third service.
std::string stack_file(const std::string& project, int gen) {
  std::string y = "name: " + project + "\nnetworks:\n  front: {}\n  back: {}\nservices:\n";
  y += "  db:\n    image: busybox\n    command: [sleep, '3600']\n    networks: [back]\n";
  for (int i = 1; i < 20; i++) {
    std::string name = std::string("s").append(std::to_string(i));
    y += "  " + name + ":\n    image: busybox\n    command: [sleep, '3600']\n";
    y.append("    networks: [").append(i % 2 ? "front, back" : "front").append("]\n");
    if (i < 10) y += "    depends_on: [db]\n";
    if (i >= 10 && i < 15) y += "    deploy: {replicas: 2}\n";
    if (i >= 15) y += "    restart: always\n";
    if (i % 3 == 0) y += "    environment: {GEN: '" + std::to_string(gen) + "'}\n";
  }
  return y;
}

std::set<std::string> expected_names(const std::string& p) {
  std::set<std::string> out = {p + "-db-1"};
  for (int i = 1; i < 20; i++)
    for (int n = 1; n <= (i >= 10 && i < 15 ? 2 : 1); n++)
      out.insert(p + "-s" + std::to_string(i) + "-" + std::to_string(n));
  return out;
}

// Network attachments the stack asks for: db on back, odd services on both, even on front.
size_t expected_attachments() {
  size_t n = 1;
  for (int i = 1; i < 20; i++) n += size_t(i >= 10 && i < 15 ? 2 : 1) * (i % 2 ? 2 : 1);
  return n;
}

std::string sql(StackEnv& env, const std::string& query) {
  auto r = run({"/usr/bin/python3", "-c",
                "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
                "print('\\n'.join('|'.join(str(c) for c in row) for row in db.execute(sys.argv[2])))",
                (env.root() / "state.db").string(), query});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  return r.out;
}

// Processes whose cgroup is under this project's (its containers' inits and services).
std::set<int> project_processes(const std::string& project) {
  std::set<int> out;
  for (auto& e : std::filesystem::directory_iterator("/proc")) {
    int pid = std::atoi(e.path().filename().c_str());
    if (pid <= 0) continue;
    std::ifstream cg(e.path() / "cgroup");
    std::string text((std::istreambuf_iterator<char>(cg)), std::istreambuf_iterator<char>());
    if (text.find("/" + project + "/") != std::string::npos) out.insert(pid);
  }
  return out;
}

// Interfaces holding ADDRESS (a network's gateway): its bridge.
std::vector<std::string> holders_of(const std::string& address) {
  auto r = run({"/bin/sh", "-c", "ip -o -4 addr show | awk '$4 ~ /^" + address + "\\// {print $2}'"});
  std::vector<std::string> out;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

// Everything up is exactly what the file asks for, once.
void check_converged_up(StackEnv& env, const std::string& p, int gen) {
  auto ps = env.ps(p);
  std::multiset<std::string> names;
  for (const auto& c : ps) {
    names.insert(c["name"].get<std::string>());
    CHECK_MESSAGE(c["state"] == "running", c.dump());
  }
  auto want = expected_names(p);
  CHECK(names.size() == want.size());  // no duplicate
  CHECK(std::set<std::string>(names.begin(), names.end()) == want);
  // Every process of the project belongs to a recorded container: no init of a half-made one.
  std::set<int> inits;
  for (const auto& c : ps) inits.insert(c["pid"].get<int>());
  auto procs = project_processes(p);
  for (int pid : inits) CHECK_MESSAGE(procs.count(pid), "init " << pid << " not in its cgroup");
  std::set<std::string> cgroups;
  std::error_code ec;
  auto project_cgroup = StackEnv::cgroup_dir("pids", p, p + "-db-1").parent_path();
  REQUIRE(!project_cgroup.empty());
  for (auto& e : std::filesystem::directory_iterator(project_cgroup, ec))
    cgroups.insert(e.path().filename().string());
  for (const auto& c : cgroups)
    if (c.rfind(p + "-", 0) == 0) CHECK_MESSAGE(want.count(c), "stray cgroup " << c);
  // The environment is the latest asked for.
  CHECK(env.stack({"exec", "s3", "sh", "-c", "test \"$GEN\" = " + std::to_string(gen)}).code == 0);
  // State: one row per container, two networks each held by one bridge, one address per attachment.
  CHECK(sql(env, "SELECT count(*) FROM containers WHERE project = '" + p + "'") ==
        std::to_string(want.size()) + "\n");
  auto gateways = sql(env, "SELECT gateway FROM networks WHERE name LIKE '" + p + "\\_%' ESCAPE '\\'");
  std::istringstream gw(gateways);
  int networks = 0;
  for (std::string g; std::getline(gw, g);) {
    if (g.empty()) continue;
    networks++;
    CHECK_MESSAGE(holders_of(g).size() == 1, "gateway " << g << " held by " << holders_of(g).size());
  }
  CHECK(networks == 2);
  CHECK(sql(env, "SELECT count(*) FROM ip_allocations WHERE network LIKE '" + p + "\\_%' ESCAPE '\\'") ==
        std::to_string(expected_attachments()) + "\n");
}

bool link_exists(const std::string& name) {
  return std::filesystem::exists("/sys/class/net/" + name);
}

void check_converged_down(StackEnv& env, const std::string& p, const std::vector<std::string>& bridges) {
  CHECK(env.ps(p).empty());
  auto left = env.leftovers(p);
  for (const auto& l : left) CHECK_MESSAGE(false, "left: " << l);
  CHECK(sql(env, "SELECT count(*) FROM networks WHERE name LIKE '" + p + "\\_%' ESCAPE '\\'") == "0\n");
  CHECK(sql(env, "SELECT count(*) FROM ip_allocations WHERE network LIKE '" + p + "\\_%' ESCAPE '\\'") == "0\n");
  for (const auto& b : bridges) CHECK_MESSAGE(!link_exists(b), "bridge " << b << " left");
}

// Runs `stack ARGS` in the background; returns its pid.
pid_t spawn_stack(StackEnv& env, const std::vector<std::string>& args) {
  pid_t pid = ::fork();
  if (pid == 0) {
    auto r = env.stack(args);
    ::_exit(r.code);
  }
  return pid;
}

}  // namespace

TEST_CASE("chaos: kill -9 of the daemon during up, down and updates converges with nothing leaked") {
  STACK_REQUIRE_ROOT();
  const char* n_env = std::getenv("STACK_CHAOS_ITERATIONS");
  const char* seed_env = std::getenv("STACK_CHAOS_SEED");
  int iterations = n_env ? std::atoi(n_env) : 6;
  unsigned seed = seed_env ? static_cast<unsigned>(std::atoll(seed_env)) : std::random_device{}();
  MESSAGE("chaos: " << iterations << " iterations, STACK_CHAOS_SEED=" << seed);
  std::mt19937 rng(seed);
  StackEnv env;
  auto p = unique_project("chaos");
  env.uses(p);
  int gen = 0;
  bool is_up = false;
  std::vector<std::string> bridges;  // of the networks while up
  int kills = 0;
  for (int it = 0; it < iterations; it++) {
    // up when down; down or an update (a new GEN) when up.
    std::string op = !is_up ? "up" : (rng() % 2 ? "down" : "update");
    if (op == "update") gen++;
    env.write(stack_file(p, gen));
    std::vector<std::string> args =
        op == "down" ? std::vector<std::string>{"down", "-t", "1"} : std::vector<std::string>{"up", "-d"};
    // Kill a running daemon at a random point of the operation (0 to 400 ms in).
    int daemon = env.api_get("/v1/version").value("pid", 0);
    if (daemon == 0) {
      env.stack({"ps"});  // starts one
      daemon = env.api_get("/v1/version").value("pid", 0);
    }
    REQUIRE(daemon > 0);
    pid_t cli = spawn_stack(env, args);
    auto delay = std::chrono::milliseconds(rng() % 400);
    std::this_thread::sleep_for(delay);  // the random kill point is the test's input
    bool killed = ::kill(daemon, SIGKILL) == 0;
    kills += killed;
    int status = 0;
    ::waitpid(cli, &status, 0);
    INFO("iteration " << it << ": " << op << ", daemon killed " << delay.count() << " ms in");
    // A new daemon converges: the same request again, to completion.
    auto again = env.stack(args);
    REQUIRE_MESSAGE(again.code == 0, again.err);
    if (op == "down") {
      check_converged_down(env, p, bridges);
      is_up = false;
    } else {
      check_converged_up(env, p, gen);
      bridges.clear();
      std::istringstream gw(sql(env, "SELECT gateway FROM networks WHERE name LIKE '" + p + "\\_%' ESCAPE '\\'"));
      for (std::string g; std::getline(gw, g);)
        for (const auto& b : holders_of(g))
          if (!g.empty() && b.rfind("stk-", 0) == 0) bridges.push_back(b);
      is_up = true;
    }
  }
  REQUIRE(env.stack({"down", "-t", "1"}).code == 0);
  check_converged_down(env, p, bridges);
  MESSAGE("chaos: " << iterations << " iterations, " << kills << " daemons killed, seed " << seed);
}
