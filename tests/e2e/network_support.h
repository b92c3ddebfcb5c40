// Helpers of the network end-to-end tests: stack's links on the host, an instance's nftables
// table, commands retried until they succeed, a web service and its page, and the check that
// `down` left nothing. Root only (they run `ip`, `nft` and the stack binary).
#pragma once

#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/instance.h"
#include "e2e/stack_env.h"

namespace stack::test {

using namespace std::chrono_literals;

// Links whose name starts with "stk" or "stx" (stack's bridges, veths and vxlan devices).
inline std::set<std::string> stack_links() {
  std::set<std::string> out;
  auto r = run({"/usr/sbin/ip", "-o", "link", "show"});
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto a = line.find(": ");
    if (a == std::string::npos) continue;
    auto b = line.find_first_of(":@", a + 2);
    std::string name = line.substr(a + 2, b - a - 2);
    if (name.rfind("stk", 0) == 0 || name.rfind("stx", 0) == 0) out.insert(name);
  }
  return out;
}

// ENV's own nftables table (one per instance, named after its root).
inline std::string table_of(const StackEnv& env) { return "stack-" + stack::instance_id(env.root()); }
inline bool table_exists(const StackEnv& env, const char* family = "ip") {
  return run({"/usr/sbin/nft", "list", "table", family, table_of(env)}).code == 0;
}

// Runs `stack exec SERVICE ARGV...` until it exits 0 (or TIMEOUT passes); the last result.
inline RunResult exec_until_ok(StackEnv& env, const std::vector<std::string>& argv,
                        std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::string> args = {"exec"};
  args.insert(args.end(), argv.begin(), argv.end());
  RunResult r;
  do {
    r = env.stack(args);
    if (r.code == 0) return r;
    std::this_thread::sleep_for(100ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return r;
}

inline void write_page(StackEnv& env, const std::string& text) {
  std::filesystem::create_directories(env.project_dir() / "www");
  std::ofstream(env.project_dir() / "www" / "index.html") << text;
}

inline const char* kWeb = R"(
  web:
    image: busybox
    command: [httpd, -f, -p, "80", -h, /www]
    volumes: ["./www:/www:ro"]
)";

// After `down`: none of the links that appeared since BEFORE remain, nor the instance's tables.
inline void check_clean(StackEnv& env, const std::string& project, const std::set<std::string>& before) {
  REQUIRE(env.stack({"down", "-t", "0"}).code == 0);
  // A veth goes with its container's network namespace, which the kernel frees
  // asynchronously (netns cleanup): allowed a few seconds.
  auto left = [&] {
    std::set<std::string> out;
    for (const auto& l : stack_links())
      if (!before.count(l)) out.insert(l);
    return out;
  };
  for (int i = 0; i < 100 && !left().empty(); i++) std::this_thread::sleep_for(50ms);
  for (const auto& l : left()) CHECK_MESSAGE(false, "left: " << l);
  CHECK_FALSE(table_exists(env));
  CHECK_FALSE(table_exists(env, "bridge"));
  CHECK(env.leftovers(project).empty());
}

// Brings up web (serving PAGE, published on host PORT) and a client beside it.
inline RunResult up_published_web(StackEnv& env, const std::string& p, int port, const std::string& page) {
  write_page(env, page);
  env.write("name: " + p + "\nservices:" + kWeb + "    ports: [\"" + std::to_string(port) +
            ":80\"]\n" + R"(
  client:
    image: busybox
    command: [sleep, "3600"]
)");
  return env.stack({"up", "-d"});
}

// The first address of SERVICE's container on a 10.x network, from its /etc/hosts.
inline std::string address_of(StackEnv& env, const std::string& service) {
  auto hosts = env.stack({"exec", service, "cat", "/etc/hosts"});
  std::istringstream in(hosts.out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("10.", 0) == 0) return line.substr(0, line.find('\t'));
  return "";
}

// The gateway of SERVICE's first network: its DNS server, from its /etc/resolv.conf.
inline std::string gateway_of(StackEnv& env, const std::string& service) {
  auto resolv = env.stack({"exec", service, "cat", "/etc/resolv.conf"});
  auto ns = resolv.out.find("nameserver ");
  if (ns == std::string::npos) return "";
  return resolv.out.substr(ns + 11, resolv.out.find('\n', ns) - ns - 11);
}

// GET URL from the host with curl until it answers (or about 5 s pass); the body or "".
inline std::string http_until_ok(const std::string& url) {
  for (int i = 0; i < 50; i++) {
    auto r = run({"/usr/bin/curl", "-s", "--max-time", "2", url});
    if (r.code == 0) return r.out;
    std::this_thread::sleep_for(100ms);
  }
  return "";
}

// SIGKILLs ENV's daemon (containers keep running); the next command starts a new one.
inline void kill_daemon(StackEnv& env) {
  env.stack({"ps", "-p", "none"});  // a daemon is running
  auto pid = run({"/bin/sh", "-c",
                  "pgrep -f -- 'stackd --root .* --run-root " +
                      (env.root().parent_path() / "run").string() + "( |$)'"});
  int daemon = std::atoi(pid.out.c_str());
  REQUIRE(daemon > 0);
  REQUIRE(::kill(daemon, SIGKILL) == 0);
  for (int i = 0; i < 100 && ::kill(daemon, 0) == 0; i++) std::this_thread::sleep_for(20ms);
}

}  // namespace stack::test
