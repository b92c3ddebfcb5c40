// Networking as a user sees it: services reach each other by name on their project's network,
// replicas resolve to every address, published ports answer on the host, internal networks
// and separate networks are isolated, and `stack down` leaves no link or nftables table.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "e2e/network_support.h"

using namespace stack::test;
using namespace std::chrono_literals;

TEST_CASE("two services on one network reach each other by service name, also after a restart") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netdns");
  env.uses(p);
  auto before = stack_links();
  write_page(env, "hello from web\n");
  env.write("name: " + p + "\nservices:" + kWeb + R"(
  client:
    image: busybox
    command: [sleep, "3600"]
    dns_search: [example.internal]
    dns_opt: ["timeout:1"]
    extra_hosts: ["db.example:10.1.2.3"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(stack_links().size() > before.size());  // a bridge and two veths
  CHECK(table_exists(env));
  auto page = exec_until_ok(env, {"client", "wget", "-qO-", "http://web/"});
  CHECK_MESSAGE(page.code == 0, page.err);
  CHECK(page.out == "hello from web\n");
  // The container's own files: resolv.conf points at its gateway, hosts has its address.
  auto resolv = env.stack({"exec", "client", "cat", "/etc/resolv.conf"});
  CHECK(resolv.out.find("nameserver 10.") != std::string::npos);
  CHECK(resolv.out.find("search example.internal") != std::string::npos);
  CHECK(resolv.out.find("timeout:1") != std::string::npos);
  auto hosts = env.stack({"exec", "client", "cat", "/etc/hosts"});
  CHECK(std::regex_search(hosts.out, std::regex("\n10\\.[0-9.]+\t" + p + "-client-1\n")));
  CHECK(hosts.out.find("10.1.2.3\tdb.example\n") != std::string::npos);

  REQUIRE(env.stack({"restart", "web"}).code == 0);
  page = exec_until_ok(env, {"client", "wget", "-qO-", "http://web/"}, 2s);
  CHECK_MESSAGE(page.code == 0, page.err);
  CHECK(page.out == "hello from web\n");
  check_clean(env, p, before);
}

TEST_CASE("a service with 3 replicas resolves to 3 addresses") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netrep");
  env.uses(p);
  auto before = stack_links();
  env.write("name: " + p + R"(
services:
  web:
    image: busybox
    command: [sleep, "3600"]
    deploy: {replicas: 3}
  client:
    image: busybox
    command: [sleep, "3600"]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto r = exec_until_ok(env, {"client", "nslookup", "web"});
  REQUIRE_MESSAGE(r.code == 0, r.out << r.err);
  std::set<std::string> addresses;
  std::istringstream in(r.out);
  bool answers = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Name:", 0) == 0) answers = true;
    if (answers && line.rfind("Address", 0) == 0) addresses.insert(line.substr(line.find(' ') + 1));
  }
  CHECK_MESSAGE(addresses.size() == 3, r.out);
  check_clean(env, p, before);
}

TEST_CASE("a published port answers on 127.0.0.1 and from another container via the host") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netport");
  env.uses(p);
  auto before = stack_links();
  int port = 20000 + ::getpid() % 10000;
  auto up = up_published_web(env, p, port, "published\n");
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto mapping = env.stack({"port", "web", "80"});
  CHECK(mapping.out == "0.0.0.0:" + std::to_string(port) + "\n");
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
  RunResult r;
  for (int i = 0; i < 50; i++) {
    r = run({"/usr/bin/curl", "-s", "--max-time", "2", url});
    if (r.code == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  CHECK_MESSAGE(r.code == 0, r.err);
  CHECK(r.out == "published\n");
  // From the client, through the host's address on its bridge (the gateway): hairpin NAT.
  auto resolv = env.stack({"exec", "client", "cat", "/etc/resolv.conf"});
  auto ns = resolv.out.find("nameserver ");
  REQUIRE(ns != std::string::npos);
  std::string gateway = resolv.out.substr(ns + 11, resolv.out.find('\n', ns) - ns - 11);
  auto via_host = exec_until_ok(
      env, {"client", "timeout", "2", "wget", "-qO-", "http://" + gateway + ":" + std::to_string(port) + "/"});
  CHECK_MESSAGE(via_host.code == 0, via_host.err);
  CHECK(via_host.out == "published\n");
  check_clean(env, p, before);
  CHECK(run({"/usr/bin/curl", "-s", "--max-time", "1", url}).code != 0);
}

TEST_CASE("an internal network reaches nothing outside its bridge: two networks are isolated") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netiso");
  env.uses(p);
  auto before = stack_links();
  write_page(env, "front\n");
  env.write("name: " + p + "\nservices:" + kWeb + R"(    networks: [front]
  inside:
    image: busybox
    command: [sleep, "3600"]
    networks: [back]
  other:
    image: busybox
    command: [sleep, "3600"]
    networks: [side]
networks:
  front: {}
  side: {}
  back: {internal: true}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto hosts = env.stack({"exec", "web", "cat", "/etc/hosts"});
  std::string web_ip;
  {
    std::istringstream in(hosts.out);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("10.", 0) == 0) web_ip = line.substr(0, line.find('\t'));
  }
  REQUIRE(!web_ip.empty());
  // web answers on its own network (its own address, from itself).
  CHECK(exec_until_ok(env, {"web", "timeout", "2", "wget", "-qO-", "http://" + web_ip + "/"}).code == 0);
  // From another network: no route through (isolated), whether internal or not.
  CHECK(env.stack({"exec", "other", "timeout", "2", "wget", "-qO-", "http://" + web_ip + "/"}).code != 0);
  CHECK(env.stack({"exec", "inside", "timeout", "2", "wget", "-qO-", "http://" + web_ip + "/"}).code != 0);
  // The internal network's container has no way out of its bridge: not even the host's
  // address on another bridge.
  auto resolv = env.stack({"exec", "web", "cat", "/etc/resolv.conf"});
  auto ns = resolv.out.find("nameserver ");
  REQUIRE(ns != std::string::npos);
  std::string front_gw = resolv.out.substr(ns + 11, resolv.out.find('\n', ns) - ns - 11);
  CHECK(env.stack({"exec", "inside", "ping", "-c", "1", "-W", "1", front_gw}).code != 0);
  check_clean(env, p, before);
}

TEST_CASE("after kill -9 of the daemon, names and published ports of adopted containers work") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netadopt");
  env.uses(p);
  auto before = stack_links();
  int port = 30000 + ::getpid() % 10000;
  auto up = up_published_web(env, p, port, "adopted\n");
  REQUIRE_MESSAGE(up.code == 0, up.err);
  REQUIRE(exec_until_ok(env, {"client", "wget", "-qO-", "http://web/"}).out == "adopted\n");
  kill_daemon(env);
  // The next command starts a new daemon: it ensures the networks, registers the names of the
  // containers it adopts and publishes their ports again.
  CHECK(env.ps(p).size() == 2);
  auto page = exec_until_ok(env, {"client", "wget", "-qO-", "http://web/"}, 3s);
  CHECK_MESSAGE(page.code == 0, page.err);
  CHECK(page.out == "adopted\n");
  auto r = run({"/usr/bin/curl", "-s", "--max-time", "2",
                "http://127.0.0.1:" + std::to_string(port) + "/"});
  CHECK(r.out == "adopted\n");
  check_clean(env, p, before);
}

TEST_CASE("network_mode service:NAME shares that service's network namespace") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netsvc");
  env.uses(p);
  auto before = stack_links();
  write_page(env, "shared\n");
  env.write("name: " + p + "\nservices:" + kWeb + R"(
  side:
    image: busybox
    command: [sleep, "3600"]
    network_mode: service:web
    depends_on: [web]
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto page = exec_until_ok(env, {"side", "wget", "-qO-", "http://127.0.0.1/"});
  CHECK_MESSAGE(page.code == 0, page.err);
  CHECK(page.out == "shared\n");
  auto a = env.stack({"exec", "side", "readlink", "/proc/1/ns/net"});
  auto b = env.stack({"exec", "web", "readlink", "/proc/1/ns/net"});
  CHECK(a.out == b.out);
  CHECK(env.stack({"exec", "side", "cat", "/etc/resolv.conf"}).out.find("nameserver 10.") !=
        std::string::npos);
  check_clean(env, p, before);
}

TEST_CASE("network_mode host shares the host's network namespace: none has only lo") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netmode");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  h:
    image: busybox
    command: [sleep, "3600"]
    network_mode: host
  n:
    image: busybox
    command: [sleep, "3600"]
    network_mode: none
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  char host_ns[64] = {};
  REQUIRE(::readlink("/proc/self/ns/net", host_ns, sizeof host_ns - 1) > 0);
  // /proc/self: the exec joins the container's namespaces; PID 1 (the init) is not dumpable.
  auto h = env.stack({"exec", "h", "readlink", "/proc/self/ns/net"});
  CHECK(h.out == std::string(host_ns) + "\n");
  auto n = env.stack({"exec", "n", "readlink", "/proc/self/ns/net"});
  CHECK(n.out != std::string(host_ns) + "\n");
  auto links = env.stack({"exec", "n", "cat", "/proc/net/dev"});
  CHECK(links.out.find("lo:") != std::string::npos);
  CHECK(links.out.find("eth0") == std::string::npos);
  REQUIRE(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("a container whose networks cannot be attached leaves nothing, and the next up starts it") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("netattach");
  env.uses(p);
  auto before = stack_links();
  auto file = [&](const std::string& b_address) {
    return "name: " + p + R"(
services:
  a:
    image: busybox
    command: [sleep, "3600"]
    networks: {n: {ipv4_address: 10.202.0.10}}
  b:
    image: busybox
    command: [sleep, "3600"]
    depends_on: [a]
    networks: {n: {ipv4_address: )" + b_address + R"(}}
networks:
  n:
    ipam: {config: [{subnet: 10.202.0.0/24}]}
)";
  };
  // b asks for a's address: its attach fails between the engine's create and start.
  env.write(file("10.202.0.10"));
  auto up = env.stack({"up", "-d"});
  CHECK(up.code == 1);
  CHECK_MESSAGE(up.err.find("attach networks") != std::string::npos, up.err);
  CHECK(env.container(p, p + "-a-1")["state"] == "running");
  CHECK(env.container(p, p + "-b-1")["state"] == "created");
  // Nothing of b's is left on the host: no process, no cgroup, no port on the bridge (the
  // bridge and a's port are the only new links). The daemon retries b on a backoff, each try
  // making and abandoning it within milliseconds: what a try leaked would stay.
  auto b_cgroup = "/" + p + "/" + p + "-b-1\n";
  auto b_left = [&] {
    std::vector<std::string> out;
    for (auto& e : std::filesystem::directory_iterator("/proc")) {
      std::ifstream cg(e.path() / "cgroup");
      std::string text((std::istreambuf_iterator<char>(cg)), std::istreambuf_iterator<char>());
      if (text.find(b_cgroup) != std::string::npos) out.push_back("process " + e.path().string());
    }
    for (const char* ctrl : {"pids", "memory", "cpu", "freezer"})
      if (auto d = StackEnv::cgroup_dir(ctrl, p, p + "-b-1"); std::filesystem::exists(d))
        out.push_back("cgroup " + d.string());
    return out;
  };
  auto left = b_left();
  for (int i = 0; i < 40 && !left.empty(); i++) {
    std::this_thread::sleep_for(50ms);
    left = b_left();
  }
  for (const auto& l : left) CHECK_MESSAGE(false, "left: " << l);
  // The project's bridge is the one holding the network's gateway; its ports are a's alone
  // (links of other instances running meanwhile do not count).
  std::string bridge;
  auto addrs = run({"/usr/sbin/ip", "-o", "-4", "addr", "show"});
  std::istringstream lines(addrs.out);
  for (std::string line; std::getline(lines, line);)
    if (line.find(" 10.202.0.1/24 ") != std::string::npos) {
      std::istringstream words(line);
      std::string index;
      words >> index >> bridge;
    }
  REQUIRE_MESSAGE(!bridge.empty(), addrs.out);
  size_t ports = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator("/sys/class/net/" + bridge + "/brif"))
    ports++;
  CHECK_MESSAGE(ports == 1, ports << " ports on " << bridge);
  // Mended, the next reconcile converges: b runs with its own address.
  env.write(file("10.202.0.11"));
  up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(env.container(p, p + "-b-1")["state"] == "running");
  CHECK(address_of(env, "b") == "10.202.0.11");
  check_clean(env, p, before);
}

namespace {

// Two simulated hosts: network namespaces joined by a veth underlay (192.168.77.1 and .2).
struct TwoHosts {
  std::string h1, h2;
  TwoHosts() {
    auto id = std::to_string(::getpid() % 100000);
    h1 = "stkh1-" + id;
    h2 = "stkh2-" + id;
    std::string u1 = "stku1-" + id, u2 = "stku2-" + id;
    for (const auto& cmd : std::vector<std::vector<std::string>>{
             {"netns", "add", h1},
             {"netns", "add", h2},
             {"link", "add", u1, "type", "veth", "peer", "name", u2},
             {"link", "set", u1, "netns", h1},
             {"link", "set", u2, "netns", h2},
             {"-n", h1, "addr", "add", "192.168.77.1/24", "dev", u1},
             {"-n", h2, "addr", "add", "192.168.77.2/24", "dev", u2},
             {"-n", h1, "link", "set", u1, "up"},
             {"-n", h2, "link", "set", u2, "up"},
             {"-n", h1, "link", "set", "lo", "up"},
             {"-n", h2, "link", "set", "lo", "up"}}) {
      std::vector<std::string> argv = {"/usr/sbin/ip"};
      argv.insert(argv.end(), cmd.begin(), cmd.end());
      auto r = run(argv);
      REQUIRE_MESSAGE(r.code == 0, r.err);
    }
  }
  ~TwoHosts() {
    run({"/usr/sbin/ip", "netns", "del", h1});
    run({"/usr/sbin/ip", "netns", "del", h2});
  }
};

// Replaces ENV's daemon with one running in network namespace NETNS (mounts untouched).
void daemon_in(StackEnv& env, const std::string& netns) {
  REQUIRE(env.stack({"daemon", "stop"}).code == 0);
  auto run_root = env.root().parent_path() / "run";
  run({"/bin/sh", "-c",
       "nsenter --net=/run/netns/" + netns + " " + std::string(STACK_BUILD_DIR) + "/stack --root " +
           env.root().string() + " --run-root " + run_root.string() +
           " daemon >/dev/null 2>&1 &"});
  for (int i = 0; i < 100 && !std::filesystem::exists(run_root / "stack.sock"); i++)
    std::this_thread::sleep_for(50ms);
}

std::string overlay_stack(const std::string& project, const std::string& service,
                          const std::string& local, const std::string& peer,
                          const std::string& range) {
  return "name: " + project + "\nservices:\n  " + service + R"(:
    image: busybox
    command: [sleep, "3600"]
    networks: [ov]
networks:
  ov:
    driver: overlay
    driver_opts: {vni: "4242", local: )" + local + ", peers: " + peer + R"(}
    ipam: {config: [{subnet: 10.201.0.0/24, gateway: 10.201.0.1, ip_range: )" + range + "}]}\n";
}

}  // namespace

TEST_CASE("overlay: containers on two simulated hosts reach each other over VXLAN") {
  STACK_REQUIRE_ROOT();
  TwoHosts hosts;  // destroyed last, after both environments went down
  StackEnv host1, host2;
  auto p = unique_project("ovl");
  host1.uses(p);
  host2.uses(p);
  daemon_in(host1, hosts.h1);
  daemon_in(host2, hosts.h2);
  host1.write(overlay_stack(p, "a", "192.168.77.1", "192.168.77.2", "10.201.0.0/25"));
  host2.write(overlay_stack(p, "b", "192.168.77.2", "192.168.77.1", "10.201.0.128/25"));
  auto up1 = host1.stack({"up", "-d"});
  REQUIRE_MESSAGE(up1.code == 0, up1.err);
  auto up2 = host2.stack({"up", "-d"});
  REQUIRE_MESSAGE(up2.code == 0, up2.err);
  auto b_hosts = host2.stack({"exec", "b", "cat", "/etc/hosts"});
  std::string b_ip;
  {
    std::istringstream in(b_hosts.out);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("10.201.", 0) == 0) b_ip = line.substr(0, line.find('\t'));
  }
  REQUIRE(b_ip.rfind("10.201.0.", 0) == 0);
  CHECK(std::atoi(b_ip.substr(9).c_str()) >= 128);  // from host 2's own range
  auto ping = exec_until_ok(host1, {"a", "ping", "-c", "1", "-W", "1", b_ip}, 10s);
  CHECK_MESSAGE(ping.code == 0, ping.out << ping.err);
  REQUIRE(host1.stack({"down", "-t", "0"}).code == 0);
  REQUIRE(host2.stack({"down", "-t", "0"}).code == 0);
  for (const auto& ns : {hosts.h1, hosts.h2}) {
    auto links = run({"/usr/sbin/ip", "-n", ns, "-o", "link", "show"});
    CHECK(links.out.find("stx-") == std::string::npos);
    CHECK(links.out.find("stk-") == std::string::npos);
  }
}
