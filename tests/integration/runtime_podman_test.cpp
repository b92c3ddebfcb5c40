// podman from Debian driving stack-runtime beyond run/stop/exec: `run -t` (a terminal through
// conmon's console socket), a bridge network of podman's netavark, and a container's writes
// seen by `podman cp` and `podman commit` (the bundle's root written in place). Root; podman's
// storage, network definitions, image and containers in a temp dir and named stack-rt-<pid>,
// the bridge stkrt<pid>: all removed pass or fail.
#include "runtime_support.h"

using namespace stack::test::rt;

namespace {

bool have_podman() {
  if (fs::exists("/usr/bin/podman") && fs::exists("/usr/bin/conmon")) return true;
  stack::test::report_skip("podman or conmon not installed");
  return false;
}

}  // namespace

TEST_CASE("podman with stack-runtime: run -t, and writes seen by podman cp and commit") {
  STACK_REQUIRE_ROOT();
  if (!have_podman()) return;
  TempDir dir("stack-rt-podman");
  Podman podman(dir.path());
  std::string tag = std::to_string(getpid());
  std::string image = "localhost/stack-rt-bb-" + tag + ":latest";
  std::string committed = "localhost/stack-rt-commit-" + tag + ":latest";
  std::string name = "stack-rt-w-" + tag;
  podman.import_busybox(image);
  PodmanCgroups cgroups;
  struct Cleanup {
    const Podman& p;
    std::vector<std::string> rm;
    ~Cleanup() {
      p({"rm", "-f", "-t", "0", rm[0]});
      p({"rmi", "-f", rm[1], rm[2]});
    }
  } cleanup{podman, {name, committed, image}};

  auto t = podman({"run", "--rm", "-t", "--network", "none", image, "sh", "-c",
                   "tty; stty size >/dev/null && echo sized"});
  CHECK_MESSAGE(t.code == 0, t.err);
  CHECK(t.out.find("/dev/pts/0") == 0);
  CHECK(t.out.find("sized") != std::string::npos);

  // podman's /sys/fs/cgroup (a cgroup mount, rprivate among its options): the container's own
  // memory cgroup there, as with crun.
  auto m = podman({"run", "--rm", "--memory", "64m", "--network", "none", image, "cat",
                   "/sys/fs/cgroup/memory/memory.limit_in_bytes"});
  CHECK_MESSAGE(m.code == 0, m.err);
  CHECK(m.out == "67108864\n");

  auto w = podman({"run", "--name", name, "--network", "none", image, "sh", "-c",
                   "echo in-place > /written"});
  REQUIRE_MESSAGE(w.code == 0, w.err);
  auto copied = dir / "copied";
  auto cp = podman({"cp", name + ":/written", copied.string()});
  CHECK_MESSAGE(cp.code == 0, cp.err);
  CHECK(fs::exists(copied));
  if (fs::exists(copied)) CHECK(stack::test::read_text(copied) == "in-place\n");
  auto c = podman({"commit", "-q", name, committed});
  REQUIRE_MESSAGE(c.code == 0, c.err);
  auto r = podman({"run", "--rm", "--network", "none", committed, "cat", "/written"});
  CHECK(r.out == "in-place\n");
}

TEST_CASE("podman with stack-runtime on a bridge network of netavark") {
  STACK_REQUIRE_ROOT();
  if (!have_podman()) return;
  // Without it podman falls back to CNI, which does not read the network file below.
  if (!fs::exists("/usr/lib/podman/netavark")) {
    stack::test::report_skip("netavark not installed (apt-get install netavark)");
    return;
  }
  TempDir dir("stack-rt-podman");
  Podman podman(dir.path());
  std::string tag = std::to_string(getpid());
  std::string image = "localhost/stack-rt-bb-" + tag + ":latest";
  std::string net = "stack-rt-" + tag;
  std::string bridge = "stkrt" + std::to_string(getpid() % 1000000);
  // 10.213.N.0/24: a subnet of this test's own bridge, which the container reaches.
  std::string subnet = "10.213." + std::to_string(getpid() % 250) + ".";
  stack::test::write_text(
      dir / "networks" / (net + ".json"),
      json{{"name", net},
           {"id", std::string(64 - tag.size(), 'a') + tag},
           {"driver", "bridge"},
           {"network_interface", bridge},
           {"created", "2026-01-01T00:00:00Z"},
           {"subnets", {{{"subnet", subnet + "0/24"}, {"gateway", subnet + "1"}}}},
           {"ipv6_enabled", false},
           {"internal", false},
           {"dns_enabled", false},
           {"ipam_options", {{"driver", "host-local"}}}}
          .dump());
  podman.import_busybox(image);
  PodmanCgroups cgroups;
  // netavark adds its chains to the host's iptables-nft tables `ip nat` and `ip filter`,
  // making them when absent: the tables this test caused are removed with the rest.
  auto table_exists = [](const char* name) {
    return stack::test::run({"/usr/sbin/nft", "list", "table", "ip", name}).code == 0;
  };
  struct Cleanup {
    const Podman& p;
    std::string image, net, bridge;
    bool had_nat, had_filter;
    ~Cleanup() {
      p({"rmi", "-f", image});
      p({"network", "rm", "-f", net});
      stack::test::run({"/sbin/ip", "link", "del", bridge});
      if (!had_nat) stack::test::run({"/usr/sbin/nft", "delete", "table", "ip", "nat"});
      if (!had_filter) stack::test::run({"/usr/sbin/nft", "delete", "table", "ip", "filter"});
    }
  } cleanup{podman, image, net, bridge, table_exists("nat"), table_exists("filter")};

  auto r = podman({"run", "--rm", "--network", net, "--cap-add", "NET_RAW", image, "sh", "-c",
                   "ip -4 -o addr show eth0; ping -c 1 -W 5 " + subnet + "1 >/dev/null && "
                   "echo reached"});
  CHECK_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("inet " + subnet) != std::string::npos);
  CHECK(r.out.find("reached") != std::string::npos);
}
