// A service's placement read from a stack file: constraint syntax as Swarm parses it (what it
// takes, what it refuses and why), spread preferences, deploy.mode, reservations, and errors
// that name file:line:column; and check_supported's reason for refusing them without a cluster.
#include <doctest/doctest.h>

#include "cluster/placement.h"
#include "spec/loader.h"
#include "support/temp_dir.h"

using namespace stack;

namespace {

Result<spec::Stack> load_text(const test::TempDir& dir, const std::string& text) {
  test::write_text(dir / "stack.yaml", text);
  spec::LoadOptions opts;
  opts.working_dir = dir.path();
  opts.project_name = "demo";
  return spec::load(opts);
}

// placements_of a stack of the given text: the placements, or the error's message.
Result<std::vector<cluster::ServicePlacement>> placements(const std::string& text) {
  test::TempDir dir("stack-placement");
  auto stack = load_text(dir, text);
  REQUIRE_MESSAGE(stack, (stack ? "" : stack.error().message));
  return cluster::placements_of(*stack);
}

std::string error_of(const std::string& text) {
  auto r = placements(text);
  return r ? "" : r.error().message;
}

}  // namespace

TEST_CASE("constraints parse as Swarm parses them") {
  struct Row {
    std::string text;
    std::string key;
    cluster::Constraint::Op op;
    std::string value;
  };
  using Op = cluster::Constraint::Op;
  for (const Row& row : std::vector<Row>{
           {"node.hostname==web-1", "node.hostname", Op::eq, "web-1"},
           {"node.labels.zone == east", "node.labels.zone", Op::eq, "east"},
           {"node.labels.Zone!=east", "node.labels.Zone", Op::ne, "east"},  // label name kept
           {"NODE.Role != manager", "node.role", Op::ne, "manager"},
           {"node.id==abc123", "node.id", Op::eq, "abc123"},
           {"node.labels.path==/srv/data:1", "node.labels.path", Op::eq, "/srv/data:1"},
       }) {
    CAPTURE(row.text);
    auto c = cluster::parse_constraint(row.text);
    REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
    CHECK(c->key == row.key);
    CHECK(c->op == row.op);
    CHECK(c->value == row.value);
    CHECK(c->text == row.text);
  }
}

TEST_CASE("a constraint Swarm would refuse is refused with the reason") {
  struct Row {
    std::string text;
    std::string error;
  };
  for (const Row& row : std::vector<Row>{
           {"node.role=manager", "expected one operator from ==, !="},
           {"node.role", "expected one operator from ==, !="},
           {"== manager", "key \"\" is invalid"},
           {"node role==manager", "key \"node role\" is invalid"},
           {"node.role==", "value \"\" is invalid"},
           {"node.labels.a==x<y", "value \"x<y\" is invalid"},
           {"node.labels.a==b==c", "value \"b==c\" is invalid"},
           {"node.platform.os==linux",
            "unknown key \"node.platform.os\" (known: node.hostname, node.id, node.role, "
            "node.labels.NAME)"},
           {"node.labels.==x",
            "unknown key \"node.labels.\" (known: node.hostname, node.id, "
            "node.role, node.labels.NAME)"},
           {"engine.labels.os==linux",
            "engine labels are Docker's: a stack node has node labels (node.labels.NAME, set by "
            "stack node update --label-add)"},
       }) {
    CAPTURE(row.text);
    auto c = cluster::parse_constraint(row.text);
    REQUIRE_FALSE(c);
    CHECK(c.error().message == row.error);
  }
}

TEST_CASE("a service's deploy fields become its placement") {
  auto r = placements(R"(services:
  web:
    image: x
    deploy:
      replicas: 6
      placement:
        constraints: [node.labels.disk == ssd, "node.role!=manager"]
        preferences:
          - spread: node.labels.zone
          - spread: node.labels.rack
        max_replicas_per_node: 3
      resources:
        reservations: {cpus: "0.25", memory: 64m}
  agent:
    image: x
    deploy: {mode: global}
  db:
    image: x
)");
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  REQUIRE(r->size() == 3);
  const auto& web = (*r)[0];
  CHECK(web.project == "demo");
  CHECK(web.name == "web");
  CHECK_FALSE(web.global);
  CHECK(web.replicas == 6);
  REQUIRE(web.constraints.size() == 2);
  CHECK(web.constraints[0].key == "node.labels.disk");
  CHECK(web.constraints[1].op == cluster::Constraint::Op::ne);
  CHECK(web.spread == std::vector<std::string>{"zone", "rack"});
  CHECK(web.max_replicas_per_node == 3);
  CHECK(web.reservations.nano_cpus == 250'000'000);
  CHECK(web.reservations.memory_bytes == 64 << 20);
  CHECK((*r)[1].global);
  CHECK((*r)[2].replicas == 1);
  CHECK((*r)[2].constraints.empty());
}

TEST_CASE("placement errors name the file, line and column of the key") {
  CHECK(error_of(R"(services:
  web:
    image: x
    deploy:
      mode: daemonset
      placement:
        constraints:
          - node.labels.disk=ssd
        preferences:
          - spread: node.hostname
)") == "stack.yaml:5:7: services.web.deploy.mode daemonset: expected replicated or global\n"
       "stack.yaml:7:9: services.web.deploy.placement.constraints[0] \"node.labels.disk=ssd\": "
       "expected one operator from ==, !=\n"
       "stack.yaml:9:9: services.web.deploy.placement.preferences[0] spread "
       "\"node.hostname\": expected node.labels.NAME");
  CHECK(error_of(R"(services:
  agent:
    image: x
    deploy:
      mode: global
      replicas: 2
      placement: {max_replicas_per_node: 1}
)") == "stack.yaml:6:7: services.agent: replicas only with deploy.mode replicated (global runs "
       "one per node)\n"
       "stack.yaml:7:19: services.agent.deploy.placement.max_replicas_per_node: only with "
       "deploy.mode replicated (global runs one per node)");
  CHECK(error_of(R"(services:
  web:
    image: x
    deploy:
      placement: {max_replicas_per_node: -1}
)") == "stack.yaml:5:19: services.web.deploy.placement.max_replicas_per_node -1: must be 0 or "
       "more");
}

TEST_CASE("without a cluster, placement and global mode are refused with the way to get one") {
  test::TempDir dir("stack-placement");
  auto stack = load_text(dir, R"(services:
  web:
    image: x
    deploy:
      mode: global
      placement: {constraints: [node.role==manager]}
)");
  REQUIRE_MESSAGE(stack, (stack ? "" : stack.error().message));
  auto c = spec::check_supported(*stack);
  REQUIRE_FALSE(c);
  CHECK(c.error().message ==
        "stack.yaml:2:3: not supported yet: services.web.deploy.mode global (one replica per "
        "node needs a cluster: stack daemon --cluster)\n"
        "stack.yaml:6:7: refused: services.web.deploy.placement (placing replicas on nodes "
        "needs a cluster: stack daemon --cluster)");
}

TEST_CASE("in a cluster, placement and global mode are accepted, other refusals stay") {
  test::TempDir dir("stack-placement");
  auto stack = load_text(dir, R"(services:
  web:
    image: x
    deploy:
      mode: global
      placement: {constraints: [node.role==manager],
                  preferences: [{spread: node.labels.zone}]}
  gpu:
    image: x
    deploy:
      resources: {reservations: {generic_resources: [{discrete_resource_spec: {kind: gpu, value: 1}}]}}
)");
  REQUIRE_MESSAGE(stack, (stack ? "" : stack.error().message));
  auto c = spec::check_supported(*stack, true);
  REQUIRE_FALSE(c);
  CHECK(c.error().message.find("deploy.placement") == std::string::npos);
  CHECK(c.error().message.find("deploy.mode") == std::string::npos);
  CHECK(c.error().message.find("generic_resources") != std::string::npos);
  auto p = cluster::placements_of(*stack);
  REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
  CHECK((*p)[0].global);
}
