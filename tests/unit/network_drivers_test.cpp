// The network drivers a stack file may name, without root: bridge, overlay, macvlan and ipvlan
// with docker's options; host, none and plugin names refused at the `driver` key; bad options
// refused at theirs; the warnings `up` prints for ports on macvlan networks and for modes in
// which the embedded DNS cannot be reached.
#include <doctest/doctest.h>

#include "spec/loader.h"
#include "support/temp_dir.h"

using namespace stack;

namespace {

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct Checked {
  std::string error;  // "" when the file is accepted
  std::vector<std::string> warnings;
};

Checked check(const std::string& file) {
  test::TempDir dir("stack-netdrv");
  test::write_text(dir / "stack.yaml", file);
  spec::LoadOptions opts;
  opts.working_dir = dir.path();
  auto r = spec::load(opts);
  if (!r) return {r.error().message, {}};
  auto c = spec::check_supported(*r);
  return {c ? "" : c.error().message, r->warnings};
}

std::string with_network(const std::string& body) {
  return "services:\n  web:\n    image: x\n    networks: [n]\nnetworks:\n  n:\n" + body;
}

}  // namespace

TEST_CASE("network drivers: host, none and a plugin are refused by name at the driver key") {
  auto m = check(with_network("    driver: host\n")).error;
  CHECK_MESSAGE(has(m, "stack.yaml:7:5: networks.n.driver: host is not a network stack can make "
                       "(use network_mode: host on the service)"), m);
  m = check(with_network("    driver: none\n")).error;
  CHECK_MESSAGE(has(m, "stack.yaml:7:5: networks.n.driver: none"), m);
  CHECK_MESSAGE(has(m, "network_mode: none"), m);
  m = check(with_network("    driver: weave\n")).error;
  CHECK_MESSAGE(has(m, "stack.yaml:7:5: networks.n.driver: weave: refused"), m);
  m = check(with_network("    driver: weaveworks/net-plugin:latest_release\n")).error;
  CHECK_MESSAGE(has(m, "networks.n.driver: weaveworks/net-plugin:latest_release: refused"), m);
  // An external network's driver is another's business.
  CHECK(check(with_network("    external: true\n    driver: weave\n")).error == "");
}

TEST_CASE("network drivers: macvlan and ipvlan with docker's options load") {
  CHECK(check(with_network("    driver: macvlan\n")).error == "");
  CHECK(check(with_network("    driver: macvlan\n    driver_opts: {parent: eth0.50, "
                           "macvlan_mode: bridge}\n")).error == "");
  CHECK(check(with_network("    driver: ipvlan\n    driver_opts: {parent: eth0, ipvlan_mode: l3s,"
                           " ipvlan_flag: bridge}\n")).error == "");
  CHECK(check(with_network("    driver: macvlan\n    internal: true\n    ipam:\n      config:\n"
                           "        - {subnet: 10.77.0.0/24, gateway: 10.77.0.1, ip_range: "
                           "10.77.0.128/25}\n")).error == "");
}

TEST_CASE("network drivers: a bad macvlan or ipvlan option is refused at its key") {
  auto m = check(with_network("    driver: macvlan\n    driver_opts:\n      macvlan_mode: l2\n")).error;
  CHECK_MESSAGE(has(m, "stack.yaml:9:7: networks.n.driver_opts.macvlan_mode: \"l2\" is not one "
                       "of bridge, private, vepa"), m);
  m = check(with_network("    driver: macvlan\n    driver_opts:\n      macvlan_mode: passthru\n")).error;
  CHECK_MESSAGE(has(m, "networks.n.driver_opts.macvlan_mode: passthru gives the parent to one "
                       "container alone"), m);
  m = check(with_network("    driver: ipvlan\n    driver_opts: {ipvlan_mode: l4}\n")).error;
  CHECK_MESSAGE(has(m, "networks.n.driver_opts.ipvlan_mode: \"l4\" is not one of l2, l3, l3s"), m);
  m = check(with_network("    driver: ipvlan\n    driver_opts: {ipvlan_flag: loud}\n")).error;
  CHECK_MESSAGE(has(m, "networks.n.driver_opts.ipvlan_flag: \"loud\""), m);
  m = check(with_network("    driver: macvlan\n    driver_opts: {parent: eth0.5000}\n")).error;
  CHECK_MESSAGE(has(m, "networks.n.driver_opts.parent: \"eth0.5000\" is not an interface name"), m);
  m = check(with_network("    driver: macvlan\n    driver_opts: {parent: a-very-long-name0}\n")).error;
  CHECK_MESSAGE(has(m, "networks.n.driver_opts.parent"), m);
  m = check(with_network("    driver: macvlan\n    driver_opts: {vni: \"5\"}\n")).error;
  CHECK_MESSAGE(has(m, "networks.n.driver_opts.vni: not an option of the macvlan driver"), m);
  m = check(with_network("    driver: ipvlan\n    enable_ipv6: true\n")).error;
  CHECK_MESSAGE(has(m, "networks.n.enable_ipv6: not supported on ipvlan networks"), m);
}

TEST_CASE("network drivers: up warns that ports on macvlan are not published") {
  auto c = check("services:\n  web:\n    image: x\n    ports: [\"8080:80\"]\n    networks: [n]\n"
                 "networks:\n  n: {driver: macvlan}\n");
  CHECK(c.error == "");
  REQUIRE(c.warnings.size() == 1);
  CHECK_MESSAGE(has(c.warnings[0], "stack.yaml:4:5: services.web.ports are ignored"), c.warnings[0]);
  // Also on a bridge: published there, no warning.
  c = check("services:\n  web:\n    image: x\n    ports: [\"8080:80\"]\n    networks: [n, b]\n"
            "networks:\n  n: {driver: macvlan}\n  b: {}\n");
  CHECK(c.warnings.empty());
  c = check(with_network("    driver: macvlan\n    driver_opts: {macvlan_mode: private}\n"));
  REQUIRE(c.warnings.size() == 1);
  CHECK_MESSAGE(has(c.warnings[0], "cannot reach the embedded DNS"), c.warnings[0]);
}
