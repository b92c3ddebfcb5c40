// The last of issue 13's fields, without root: aux_addresses checked at their key and kept out
// of the IPAM's pool (and refused on a cluster overlay), annotations carried in the container's
// record. What each does inside a container is proven by tests/e2e/fields13_test.cpp.
#include <doctest/doctest.h>

#include "net/ipam.h"
#include "spec/loader.h"
#include "spec/validate.h"
#include "state/runtime_codec.h"
#include "support/netlink_contract.h"
#include "support/temp_dir.h"

using namespace stack;
using test::cidr;
using test::ip;

namespace {

Result<spec::Stack> load_text(const test::TempDir& dir, const std::string& text) {
  test::write_text(dir / "stack.yaml", text);
  spec::LoadOptions opts;
  opts.working_dir = dir.path();
  return spec::load(opts);
}

// The error of loading and checking TEXT ("" when it runs).
std::string problem(const std::string& text, bool cluster = false) {
  test::TempDir dir("stack-f13");
  auto r = load_text(dir, text);
  if (!r) return r.error().message;
  auto c = spec::check_supported(*r, cluster);
  return c ? "" : c.error().message;
}

std::string aux_network(const std::string& aux, const std::string& driver = "bridge") {
  return "services:\n  web: {image: x}\nnetworks:\n  n:\n    driver: " + driver +
         "\n    ipam:\n      config:\n        - subnet: 10.77.0.0/29\n          aux_addresses:\n" +
         aux;
}

bool has(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("aux_addresses: each must be an address of its entry's subnet, said at its line") {
  CHECK(problem(aux_network("            router: 10.77.0.2\n")).empty());
  std::string m = problem(aux_network("            router: 10.77.0.2\n            far: 10.78.0.9\n"));
  CHECK_MESSAGE(has(m, "stack.yaml:11:18"), m);
  CHECK_MESSAGE(has(m, "aux address far \"10.78.0.9\" is not in subnet 10.77.0.0/29"), m);
  m = problem(aux_network("            bad: not-an-ip\n"));
  CHECK_MESSAGE(has(m, "stack.yaml:10:18"), m);
  CHECK_MESSAGE(has(m, "aux address bad \"not-an-ip\" is not an IPv4 address"), m);
  m = problem("services:\n  web: {image: x}\nnetworks:\n  n:\n    ipam:\n      config:\n"
              "        - aux_addresses: {r: 10.0.0.1}\n");
  CHECK_MESSAGE(has(m, "needs a subnet in the same ipam.config entry"), m);
}

TEST_CASE("aux_addresses change the network's hash, and only when given") {
  test::TempDir dir("stack-f13");
  auto with = load_text(dir, aux_network("            router: 10.77.0.2\n"));
  REQUIRE_MESSAGE(with, with.error().message);
  auto without = load_text(dir, "services:\n  web: {image: x}\nnetworks:\n  n:\n    driver: bridge\n"
                                "    ipam:\n      config:\n        - subnet: 10.77.0.0/29\n");
  REQUIRE_MESSAGE(without, without.error().message);
  const spec::Network* a = nullptr;
  const spec::Network* b = nullptr;
  for (const auto& n : with->networks)
    if (n.key == "n") a = &n;
  for (const auto& n : without->networks)
    if (n.key == "n") b = &n;
  REQUIRE(a);
  REQUIRE(b);
  CHECK(spec::network_config_hash(*a) != spec::network_config_hash(*b));
  // The hash of a network without them is the one main computed (no new key in its document).
  auto again = *a;
  again.ipam[0].aux_addresses.clear();
  CHECK(spec::network_config_hash(again) == spec::network_config_hash(*b));
}

TEST_CASE("aux_addresses on a cluster overlay are refused with the reason, not dropped") {
  std::string file = aux_network("            router: 10.77.0.2\n", "overlay");
  CHECK(problem(file, false).empty());  // one host: the per-host IPAM keeps them out
  std::string m = problem(file, true);
  CHECK_MESSAGE(has(m, "refused: networks.n.ipam.config aux_addresses on a cluster overlay"), m);
  CHECK_MESSAGE(has(m, "the cluster's IPAM hands out any address of the subnet"), m);
}

TEST_CASE("ipam: reserved addresses are never handed out, dynamically or statically") {
  net::AddressingRequest req{"n", cidr("10.77.0.0/29")};
  req.reserved = {{"router", ip("10.77.0.2")}, {"printer", ip("10.77.0.5")}};
  auto a = net::plan_addressing(req, {}, {});
  REQUIRE_MESSAGE(a, a.error().message);
  net::MemoryAddressStore store;
  net::Ipam ipam(store);
  REQUIRE(ipam.add_network(*a));
  // .0 network, .1 gateway, .7 broadcast, .2 and .5 reserved: .3, .4, .6 are left.
  std::vector<std::string> got;
  for (int i = 0; i < 3; i++) {
    auto r = ipam.allocate("n", "c" + std::to_string(i));
    REQUIRE_MESSAGE(r, r.error().message);
    got.push_back(r->str());
  }
  CHECK(got == std::vector<std::string>{"10.77.0.3", "10.77.0.4", "10.77.0.6"});
  auto full = ipam.allocate("n", "c3");
  REQUIRE(!full);
  CHECK_MESSAGE(has(full.error().message, "no free address left in 10.77.0.0/29"),
                full.error().message);
  REQUIRE(ipam.release("n", "c0"));
  auto fixed = ipam.allocate("n", "s", ip("10.77.0.5"));
  REQUIRE(!fixed);
  CHECK_MESSAGE(has(fixed.error().message, "10.77.0.5 is kept out of the pool (aux_addresses "
                                           "printer)"),
                fixed.error().message);
  // One outside the subnet is refused when the network is planned.
  req.reserved = {{"far", ip("10.78.0.1")}};
  auto bad = net::plan_addressing(req, {}, {});
  REQUIRE(!bad);
  CHECK(has(bad.error().message, "aux address far 10.78.0.1 is not in subnet 10.77.0.0/29"));
}

TEST_CASE("annotations: kept in the container's record, apart from its labels") {
  model::RuntimeRecord r;
  r.spec.process.argv = {"true"};
  r.labels = {{"team", "a"}};
  r.annotations = {{"org.example.note", "hello"}};
  r.volume_labels["/data"] = {{"backup", "daily"}};
  auto back = state::decode_runtime(state::encode_runtime(r));
  REQUIRE_MESSAGE(back, (back ? "" : back.error().message));
  CHECK(back->labels == r.labels);
  CHECK(back->annotations == r.annotations);
  CHECK(back->volume_labels == r.volume_labels);
}
