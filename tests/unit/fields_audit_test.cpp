// Issue 13's audit of every Compose field without root: no key or value is accepted and then
// ignored (version warned; secrets/configs labels, drivers and templates; volume driver_opts;
// endpoint_mode, isolation, ipam driver/options). What works loads; what cannot work on one host is refused with its reason; what is
// parsed but not carried into the container is refused with "not supported yet", never dropped.
#include <doctest/doctest.h>

#include "spec/loader.h"
#include "spec/validate.h"
#include "support/temp_dir.h"

using namespace stack;

namespace {

Result<spec::Stack> load_text(const test::TempDir& dir, const std::string& text) {
  test::write_text(dir / "stack.yaml", text);
  spec::LoadOptions opts;
  opts.working_dir = dir.path();
  return spec::load(opts);
}

// check_supported's message for STACK_TEXT ("" when it runs).
std::string check(const std::string& text) {
  test::TempDir dir("stack-audit");
  test::write_text(dir / "s.txt", "s3cret\n");
  auto r = load_text(dir, text);
  if (!r) return "LOAD FAILED: " + r.error().message;
  auto c = spec::check_supported(*r);
  return c ? "" : c.error().message;
}

std::string service(const std::string& fields) {
  return check("services:\n  web:\n    image: x\n" + fields);
}

bool has(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("version is obsolete: the file runs and a warning says it is ignored") {
  test::TempDir dir("stack-audit");
  auto r = load_text(dir, "version: '3.8'\nservices:\n  web: {image: x}\n");
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  REQUIRE(r->warnings.size() == 1);
  CHECK_MESSAGE(r->warnings[0] ==
                    "stack.yaml:1:1: version is obsolete and ignored; remove it",
                r->warnings[0]);
  CHECK(spec::check_supported(*r));
  r = load_text(dir, "services:\n  web: {image: x}\n");
  REQUIRE(r);
  CHECK(r->warnings.empty());
}

TEST_CASE("secrets and configs: labels run, Swarm's driver and templates are refused") {
  const std::string svc = "services:\n  web: {image: x, secrets: [s], configs: [c]}\n";
  CHECK(check(svc + "secrets:\n  s: {file: ./s.txt, labels: {a: b}}\n"
                    "configs:\n  c: {file: ./s.txt, labels: [a=b]}\n")
            .empty());
  std::string m = check(svc + "secrets:\n  s: {file: ./s.txt, driver: vault, driver_opts: {k: v}}\n"
                              "configs:\n  c: {file: ./s.txt}\n");
  CHECK_MESSAGE(has(m, "refused: secrets.s.driver (a secret driver is a Swarm plugin"), m);
  CHECK_MESSAGE(has(m, "refused: secrets.s.driver_opts (a secret driver is a Swarm plugin"), m);
  m = check(svc + "secrets:\n  s: {file: ./s.txt, template_driver: golang}\n"
                  "configs:\n  c: {file: ./s.txt, template_driver: golang}\n");
  CHECK_MESSAGE(has(m, "refused: secrets.s.template_driver (Swarm renders templates"), m);
  CHECK_MESSAGE(has(m, "refused: configs.c.template_driver (Swarm renders templates"), m);
  CHECK_MESSAGE(!has(m, "not supported yet"), m);
}

TEST_CASE("a local volume's driver_opts beyond type, o and device are refused with the reason") {
  CHECK(check("services:\n  web: {image: x, volumes: ['v:/v']}\nvolumes:\n  v:\n"
              "    driver_opts: {type: tmpfs, o: size=1m, device: tmpfs}\n")
            .empty());
  std::string m = check("services:\n  web: {image: x, volumes: ['v:/v']}\nvolumes:\n  v:\n"
                        "    driver_opts: {type: tmpfs, device: tmpfs, size: 1m}\n");
  CHECK_MESSAGE(has(m, "refused: volumes.v.driver_opts.size (the local driver takes type, o "
                       "and device, as mount(8))"),
                m);
}

TEST_CASE("values that run on one host are accepted, the others refused with their reason") {
  // dnsrr is what stack's DNS does; a virtual IP it has not.
  CHECK(service("    deploy: {endpoint_mode: dnsrr}\n").empty());
  std::string m = service("    deploy: {endpoint_mode: vip}\n");
  CHECK_MESSAGE(has(m, "refused: services.web.deploy.endpoint_mode vip (Swarm's virtual IP"), m);
  // Docker on Linux takes isolation: default only.
  CHECK(service("    isolation: default\n").empty());
  m = service("    isolation: hyperv\n");
  CHECK_MESSAGE(has(m, "refused: services.web.isolation hyperv (a Windows container setting"), m);
  // The default IPAM driver is stack's own; a plugin is not.
  CHECK(check("services:\n  web: {image: x}\nnetworks:\n  n:\n    ipam: {driver: default}\n")
            .empty());
  m = check("services:\n  web: {image: x}\nnetworks:\n  n:\n    ipam: {driver: infoblox}\n");
  CHECK_MESSAGE(has(m, "refused: networks.n.ipam.driver infoblox (an IPAM plugin"), m);
}

TEST_CASE("fields inside list items that would be dropped are refused, never ignored") {
  // aux_addresses run in the IPv4 entry and the IPv6 one; a second IPv4 subnet would be unused.
  std::string m = check("services:\n  web: {image: x}\nnetworks:\n  n:\n    ipam:\n      config:\n"
                        "        - subnet: 10.77.0.0/24\n          aux_addresses: {r: 10.77.0.5}\n");
  CHECK_MESSAGE(m.empty(), m);
  m = check("services:\n  web: {image: x}\nnetworks:\n  n:\n    ipam:\n      config:\n"
            "        - subnet: 10.77.0.0/24\n        - subnet: 10.78.0.0/24\n");
  CHECK_MESSAGE(has(m, "networks.n.ipam.config: more than one IPv4 subnet (a network takes one"),
                m);
  m = check("services:\n  web: {image: x}\nnetworks:\n  n:\n    enable_ipv6: true\n    ipam:\n"
            "      config:\n        - subnet: fd00:77::/64\n          aux_addresses: {r: \"fd00:77::5\"}\n");
  CHECK_MESSAGE(m.empty(), m);
  m = check("services:\n  web: {image: x}\nnetworks:\n  n:\n    ipam: {options: {a: b}}\n");
  CHECK_MESSAGE(has(m, "refused: networks.n.ipam.options (options of an IPAM plugin"), m);
}

TEST_CASE("a mount's volume.labels and every bind.recursive load, and change the service's hash") {
  std::string m = service("    volumes:\n      - {type: volume, target: /v, volume: {labels: {a: b}}}\n");
  CHECK_MESSAGE(m.empty(), m);
  test::TempDir dir("stack-audit");  // one directory: the bind sources resolve alike
  auto hash = [&](const std::string& mount) {
    auto r = load_text(dir, "services:\n  web:\n    image: x\n    volumes:\n      - " + mount + "\n");
    REQUIRE_MESSAGE(r, r.error().message);
    return spec::config_hash(r->services.at(0));
  };
  std::string plain = hash("{type: bind, source: ., target: /d, read_only: true}");
  // enabled is the default: a file that says so keeps its containers.
  CHECK(hash("{type: bind, source: ., target: /d, read_only: true, bind: {recursive: enabled}}") ==
        plain);
  for (const char* v : {"disabled", "writable"}) {
    m = service("    volumes:\n      - {type: bind, source: ., target: /d, read_only: true, "
                "bind: {recursive: " + std::string(v) + "}}\n");
    CHECK_MESSAGE(m.empty(), m);
    CHECK(hash("{type: bind, source: ., target: /d, read_only: true, bind: {recursive: " +
               std::string(v) + "}}") != plain);
  }
  CHECK(hash("{type: volume, target: /v, volume: {labels: {a: b}}}") !=
        hash("{type: volume, target: /v}"));
  for (const char* v : {"enabled", "readonly"})
    CHECK(service("    volumes:\n      - {type: bind, source: ., target: /d, read_only: true, "
                  "bind: {recursive: " + std::string(v) + "}}\n")
              .empty());
  m = service("    volumes:\n      - {type: bind, source: ., target: /d, bind: {recursive: "
              "readonly}}\n");
  CHECK_MESSAGE(has(m, "readonly needs read_only: true"), m);
  m = service("    volumes:\n      - {type: bind, source: ., target: /d, bind: {recursive: "
              "sometimes}}\n");
  CHECK_MESSAGE(has(m, "sometimes"), m);
}
