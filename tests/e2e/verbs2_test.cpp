// Compose verbs, part 2 (issue 15): `stats` from the cgroups and the netns, shell completion
// generated from the command table, and `help COMMAND`.
#include <doctest/doctest.h>

#include <fstream>
#include <regex>

#include "e2e/stack_env.h"

using namespace stack::test;

namespace {

std::string stack_bin() { return std::string(STACK_BUILD_DIR) + "/stack"; }

// Runs the generated bash completion for the words WORDS (the last is the one being
// completed) from DIR; returns COMPREPLY, one word a line.
std::string complete_bash(const std::string& script, const std::vector<std::string>& words,
                          const std::string& dir) {
  std::string w;
  for (const auto& x : words) w += " '" + x + "'";
  std::string cmd = "cd '" + dir + "' && PATH='" + std::string(STACK_BUILD_DIR) + "':$PATH && source '" +
                    script + "' && COMP_WORDS=(" + w + ") && COMP_CWORD=" +
                    std::to_string(words.size() - 1) + " && { _stack; for x in \"${COMPREPLY[@]}\"; do echo \"$x\"; done; }";
  auto r = run({"/bin/bash", "-c", cmd});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  return r.out;
}

}  // namespace

TEST_CASE("stats reads CPU, memory and its limit, network I/O and PIDs of each running container") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("stats");
  env.uses(p);
  // a sends to b (a container of this project) so that its netns counters move.
  env.write("services:\n"
            "  a:\n    image: busybox\n    mem_limit: 64m\n"
            "    command: [sh, -c, 'ping -c 2 -W 1 b; sleep 300']\n"
            "  b:\n    image: busybox\n    command: [sleep, '300']\n");
  REQUIRE(env.stack({"-p", p, "up", "-d"}).code == 0);

  // Raw counters from the API, until a's first packets are counted.
  nlohmann::json a;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    auto raw = env.api_get("/v1/projects/" + p + "/stats?service=a");
    REQUIRE_MESSAGE(raw.is_array(), raw.dump());
    if (raw.size() == 1 && raw[0]["net_tx"].get<uint64_t>() > 0) {
      a = raw[0];
      break;
    }
  }
  REQUIRE_MESSAGE(!a.is_null(), "a's network counters never moved");
  CHECK(a["name"] == p + "-a-1");
  CHECK(a["memory_limit"] == 64 * 1024 * 1024);
  CHECK(a["memory_bytes"].get<int64_t>() > 0);
  CHECK(a["cpu_ns"].get<uint64_t>() > 0);
  CHECK(a["pids"].get<int64_t>() >= 2);  // its init and sleep (ping may have ended)

  auto r = env.stack({"-p", p, "stats", "--no-stream", "--format", "json"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  std::map<std::string, nlohmann::json> rows;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line);
    rows[j["Name"]] = j;
  }
  REQUIRE(rows.size() == 2);
  const auto& ra = rows[p + "-a-1"];
  CHECK(std::regex_match(ra["CPUPerc"].get<std::string>(), std::regex(R"([0-9]+\.[0-9]{2}%)")));
  CHECK(std::regex_match(ra["MemUsage"].get<std::string>(),
                         std::regex(R"([0-9.]+(B|KiB|MiB) / 64MiB)")));
  auto net = ra["NetIO"].get<std::string>();
  CHECK(std::regex_match(net, std::regex(R"([0-9.]+(B|kB|MB) / [0-9.]+(B|kB|MB))")));
  CHECK(net.find(" / 0B") == std::string::npos);  // a has sent
  CHECK(std::stoi(ra["PIDs"].get<std::string>()) >= 2);
  // No limit: the host's memory, as docker shows it.
  CHECK(rows[p + "-b-1"]["MemUsage"].get<std::string>().find(" / 64MiB") == std::string::npos);

  auto table = env.stack({"-p", p, "stats", "--no-stream", "b"});
  REQUIRE(table.code == 0);
  CHECK(table.out.rfind("NAME", 0) == 0);
  CHECK(table.out.find("MEM USAGE / LIMIT") != std::string::npos);
  CHECK(table.out.find(p + "-b-1") != std::string::npos);
  CHECK(table.out.find(p + "-a-1") == std::string::npos);
  CHECK(env.stack({"-p", p, "down"}).code == 0);
}

TEST_CASE("completion scripts come from the command table and complete commands, flags and services") {
  TempDir dir("stack-e2e-completion");
  std::ofstream(dir.path() / "stack.yaml") << "services:\n  web:\n    image: busybox\n  worker:\n    image: busybox\n";
  auto bash = run({stack_bin(), "completion", "bash"});
  REQUIRE(bash.code == 0);
  auto script = (dir.path() / "stack.bash").string();
  std::ofstream(script) << bash.out;
  std::string d = dir.path().string();
  CHECK(complete_bash(script, {"stack", "vol"}, d) == "volume\n");
  CHECK(complete_bash(script, {"stack", "image", "l"}, d) == "load\nls\n");
  // A global flag's value is not taken for the command.
  CHECK(complete_bash(script, {"stack", "-p", "image", "stat"}, d) == "stats\n");
  auto flags = complete_bash(script, {"stack", "stats", "--no"}, d);
  CHECK(flags == "--no-stream\n");
  CHECK(complete_bash(script, {"stack", "logs", "w"}, d) == "web\nworker\n");
  CHECK(complete_bash(script, {"stack", "completion", "b"}, d).empty());  // no services there

  auto zsh = run({stack_bin(), "completion", "zsh"});
  REQUIRE(zsh.code == 0);
  CHECK(zsh.out.rfind("#compdef stack\n", 0) == 0);
  CHECK(zsh.out.find("'image:Manage images'") != std::string::npos);
  CHECK(zsh.out.find("'--no-stream:Print one sample and exit'") != std::string::npos);

  auto bad = run({stack_bin(), "completion", "fish"});
  CHECK(bad.code == 2);
}

TEST_CASE("help COMMAND prints the command's own help") {
  auto help = run({stack_bin(), "help", "image", "ls"});
  REQUIRE(help.code == 0);
  auto flag = run({stack_bin(), "image", "ls", "--help"});
  CHECK(help.out == flag.out);
  CHECK(help.out.find("stack image ls") != std::string::npos);
  auto top = run({stack_bin(), "help"});
  CHECK(top.code == 0);
  CHECK(top.out.find("stats") != std::string::npos);
  auto none = run({stack_bin(), "help", "image", "nope"});
  CHECK(none.code == 2);
  CHECK(none.err == "stack: no such command: image nope\n");
}

TEST_CASE("up --abort-on-container-exit stops the rest when one exits and passes its code on") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("abort");
  env.uses(p);
  env.write("services:\n"
            "  a:\n    image: busybox\n    command: [sh, -c, 'echo a done; exit 3']\n"
            "  b:\n    image: busybox\n"
            "    command: [sh, -c, 'trap \"exit 7\" TERM; while :; do sleep 0.1; done']\n");
  auto r = env.stack({"-p", p, "up", "--abort-on-container-exit", "-t", "5"});
  CHECK_MESSAGE(r.code == 3, r.err);
  CHECK(r.out.find("a done") != std::string::npos);
  CHECK(r.err.find("Aborting on container exit...") != std::string::npos);
  CHECK(env.container(p, p + "-b-1")["state"] == "exited");

  auto from = env.stack({"-p", p, "up", "--exit-code-from", "b", "-t", "5"});
  CHECK_MESSAGE(from.code == 7, from.err);  // b's code, stopped after a exited
  CHECK(env.container(p, p + "-b-1")["state"] == "exited");

  CHECK(env.stack({"-p", p, "up", "-d", "--abort-on-container-exit"}).code == 2);
  CHECK(env.stack({"-p", p, "down"}).code == 0);
}
