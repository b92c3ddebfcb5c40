// Issue 13's last fields without root: what check_supported accepts and refuses (security_opt
// apparmor and label by the kernel's LSMs, pid and ipc container:NAME, networks' name and
// external, attach, link_local_ips, pull_refresh_after, provider and models).
#include <doctest/doctest.h>

#include "spec/loader.h"
#include "spec/security_fields.h"
#include "spec/service_fields.h"
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
  test::TempDir dir("stack-fields");
  auto r = load_text(dir, text);
  if (!r) return "LOAD FAILED: " + r.error().message;
  auto c = spec::check_supported(*r);
  return c ? "" : c.error().message;
}

std::string service(const std::string& fields) {
  return check("services:\n  web:\n    image: x\n" + fields);
}

// check_lsm_options's message for one service's security_opt on a host running LSMS.
std::string lsm_refusal(const std::string& opt, const spec::HostLsms& lsms) {
  test::TempDir dir("stack-fields");
  auto r = load_text(dir, "services:\n  web:\n    image: x\n    security_opt: ['" + opt + "']\n");
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  spec::Diagnostics diag(r->file_names);
  spec::check_lsm_options(r->services.at(0), lsms, diag);
  return diag.has_errors() ? diag.to_error().message : "";
}

}  // namespace

TEST_CASE("security_opt: apparmor unconfined and label disable are no-ops, others refused") {
  for (const char* opt : {"apparmor:unconfined", "apparmor=unconfined", "label:disable",
                          "label=disable"}) {
    CHECK_MESSAGE(service("    security_opt: ['" + std::string(opt) + "']\n").empty(), opt);
    CHECK(spec::lsm_noop_option(opt));
  }
  CHECK(!spec::lsm_noop_option("seccomp=unconfined"));
  spec::HostLsms none;
  none.listed = "lockdown,capability";
  CHECK(lsm_refusal("apparmor:docker-default", none) ==
        "stack.yaml:4:5: refused: services.web.security_opt apparmor:docker-default (this "
        "kernel does not run AppArmor (its LSMs: lockdown,capability): no profile can confine "
        "the container)");
  CHECK(lsm_refusal("label=type:svirt_apache_t", none) ==
        "stack.yaml:4:5: refused: services.web.security_opt label=type:svirt_apache_t (this "
        "kernel does not run SELinux (its LSMs: lockdown,capability): no label can be applied)");
  spec::HostLsms both{true, true, ""};
  CHECK(lsm_refusal("apparmor:p", both).find("(stack loads no AppArmor profile") !=
        std::string::npos);
  CHECK(lsm_refusal("label:level:s0:c100,c200", both).find("(stack sets no SELinux label") !=
        std::string::npos);
  CHECK(lsm_refusal("apparmor:unconfined", none).empty());
  // Through check_supported, with this host's LSMs: a refusal, never "not supported yet".
  std::string m = service("    security_opt: ['apparmor:p', no-new-privileges]\n");
  CHECK_MESSAGE(m.find("stack.yaml:4:5: refused: services.web.security_opt apparmor:p (") == 0, m);
  CHECK(m.find("not supported yet") == std::string::npos);
}

TEST_CASE("pid and ipc container:NAME load, one joined container only") {
  CHECK(service("    pid: container:other-1\n    ipc: container:other-1\n").empty());
  CHECK(service("    pid: container:c\n    network_mode: container:c\n").empty());
  // service:NAME of a service with a container_name: that container.
  CHECK(service("    pid: service:db\n  db: {image: x, container_name: the-db}\n").empty());
  std::string m = service("    pid: container:a\n    ipc: container:b\n");
  CHECK_MESSAGE(m == "stack.yaml:5:5: service \"web\": ipc container:b and pid container:a: stack "
                     "joins the namespaces of one container only",
                m);
  m = service("    pid: container:a\n    network_mode: service:db\n  db: {image: x}\n");
  CHECK_MESSAGE(m.find("stack joins the namespaces of one container only") != std::string::npos, m);
  m = service("    ipc: 'container:'\n");
  CHECK_MESSAGE(m.find("ipc container:: one of host, private, shareable, service:NAME, "
                       "container:NAME") != std::string::npos,
                m);
}

TEST_CASE("networks: name, external and attachable run, enable_ipv4 false needs enable_ipv6") {
  CHECK(check("services:\n  web: {image: x, networks: [front, back]}\n"
              "networks:\n  front: {name: shared-front, attachable: true}\n"
              "  back: {external: true, name: made-elsewhere}\n")
            .empty());
  CHECK(check("services:\n  web: {image: x}\nnetworks: {n: {enable_ipv4: true}}\n").empty());
  std::string m = check("services:\n  web: {image: x}\nnetworks: {n: {enable_ipv4: false}}\n");
  CHECK_MESSAGE(m.find("networks.n: IPv4 or IPv6 must be enabled") != std::string::npos,
                m);
}

TEST_CASE("link_local_ips: addresses load, anything else is named") {
  CHECK(service("    networks: {n: {link_local_ips: [169.254.10.1, 'fe80::10', 10.9.9.9/32]}}\n"
                "networks: {n: {}}\n")
            .empty());
  std::string m = service("    networks: {n: {link_local_ips: [169.254.10.300]}}\nnetworks: {n: {}}\n");
  CHECK_MESSAGE(m.find("services.web.networks.n.link_local_ips: \"169.254.10.300\" is not an IP "
                       "address") != std::string::npos,
                m);
  m = service("    scale: 2\n    networks: {n: {link_local_ips: [169.254.10.1]}}\nnetworks: {n: {}}\n");
  CHECK_MESSAGE(m.find("cannot be given to 2 replicas") != std::string::npos, m);
}

TEST_CASE("attach and pull_refresh_after run, models are refused with the reason") {
  CHECK(service("    attach: false\n").empty());
  CHECK(service("    pull_policy: refresh\n    pull_refresh_after: 12h\n").empty());
  std::string m = service("    pull_policy: always\n    pull_refresh_after: 12h\n");
  CHECK_MESSAGE(m == "stack.yaml:5:5: service \"web\": pull_refresh_after 12h with pull_policy "
                     "always: it needs pull_policy refresh",
                m);
  m = service("    pull_refresh_after: soon\n");
  CHECK_MESSAGE(m.find("pull_refresh_after soon: not a duration") != std::string::npos, m);
  test::TempDir dir("stack-fields");
  auto r = load_text(dir, "services:\n  web:\n    image: x\n    pull_policy: refresh\n"
                          "    pull_refresh_after: 1h30m\n  db: {image: y}\n");
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(spec::effective_pull_policy(r->services.at(0)) == "every_5400s");
  CHECK(spec::effective_pull_policy(r->services.at(1)) == r->services.at(1).pull_policy);
  m = check("services:\n  web: {image: x, models: [llm]}\nmodels:\n  llm: {model: ai/smollm2}\n");
  CHECK_MESSAGE(m.find("refused: services.web.models (Docker Model Runner") != std::string::npos, m);
  CHECK_MESSAGE(m.find("refused: models (Docker Model Runner") != std::string::npos, m);
}

TEST_CASE("provider runs, and a provider depending on a container service is refused") {
  CHECK(check("services:\n  db: {provider: {type: cloud, options: {size: 1, tag: [a, b]}}}\n"
              "  web: {image: x, depends_on: [db]}\n") == "");
  std::string m = check("services:\n  db:\n    provider: {type: cloud}\n    depends_on: [web]\n"
                        "  web: {image: x}\n");
  CHECK_MESSAGE(m.find("not supported yet: services.db.depends_on web (a provider service "
                       "depending on a container service") != std::string::npos, m);
}
