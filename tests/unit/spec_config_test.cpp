// What `stack config` and the engine rely on beyond the corpus: stdin and --env-file,
// canonical output for files that mean the same, config_hash over every field, and
// check_supported() reporting.
#include <doctest/doctest.h>

#include "spec/loader.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::spec;

namespace {

Result<Stack> load_text(const test::TempDir& dir, const std::string& text) {
  test::write_text(dir / "stack.yaml", text);
  LoadOptions opts;
  opts.working_dir = dir.path();
  return load(opts);
}

std::string yaml_of(const std::string& text) {
  test::TempDir dir("stack-config");
  auto r = load_text(dir, "name: same\n" + text);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  return render_yaml(stack_json(*r));
}

}  // namespace

TEST_CASE("-f - reads the file from stdin_text: relative paths start from working_dir") {
  test::TempDir dir;
  LoadOptions opts;
  opts.working_dir = dir.path();
  opts.files = {"-"};
  opts.stdin_text = "services:\n  web:\n    image: x\n    volumes: [./d:/d]\n";
  auto r = load(opts);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(r->services.at(0).volumes.at(0).source == dir / "d");
  opts.stdin_text = "services:\n  web: {mem_limit: lots, image: x}\n";
  CHECK(load(opts).error().message ==
        "-:2:20: services.web.mem_limit: expected a byte size like 512m, got \"lots\"");
}

TEST_CASE("--env-file replaces .env for interpolation: the shell still wins") {
  test::TempDir dir;
  test::write_text(dir / ".env", "TAG=dotenv\n");
  test::write_text(dir / "prod.env", "TAG=prod\nMEM=1g\n");
  test::write_text(dir / "stack.yaml", "services:\n  web: {image: 'x:${TAG}', mem_limit: $MEM}\n");
  LoadOptions opts;
  opts.working_dir = dir.path();
  opts.env_files = {"prod.env"};
  auto r = load(opts);
  REQUIRE(r);
  CHECK(r->services[0].image == "x:prod");
  opts.environment = {{"TAG", "shell"}};
  CHECK(load(opts)->services[0].image == "x:shell");
  opts.env_files = {"missing.env"};
  CHECK(!load(opts));
}

TEST_CASE("files that mean the same render byte for byte the same") {
  std::string a = yaml_of(R"(services:
  web:
    image: nginx
    ports: ["8080:80", "443:443"]
    labels: {b: "2", a: "1"}
    environment: [X=1, Y=2]
    cap_add: [NET_ADMIN, SYS_TIME]
    depends_on: [db]
    healthcheck: {test: curl -f localhost, interval: 90s}
    mem_limit: 1g
  db: {image: postgres}
)");
  std::string b = yaml_of(R"(services:
  db:
    image: postgres:latest
  web:
    mem_limit: 1024m
    healthcheck:
      interval: 1m30s
      test: ["CMD-SHELL", "curl -f localhost"]
    depends_on: {db: {condition: service_started}}
    cap_add: [CAP_SYS_TIME, net_admin]
    environment: {Y: "2", X: "1"}
    labels: [a=1, b=2]
    ports:
      - {target: 443, published: "443"}
      - "8080:80/tcp"
    image: nginx:latest
    networks: [default]
)");
  CHECK(a == b);
}

TEST_CASE("config_hash sees every field but replicas, whatever the order") {
  test::TempDir dir;
  auto base = load_text(dir, "services:\n  web: {image: x, ports: ['80:80'], x-stack: {a: 1}}\n");
  REQUIRE(base);
  Service s = base->services[0];
  std::string h = config_hash(s);
  Service scaled = s;
  scaled.replicas = 5;
  CHECK(config_hash(scaled) == h);
  Service changed = s;
  changed.ports[0].published_start = changed.ports[0].published_end = 81;
  CHECK(config_hash(changed) != h);
  changed = s;
  changed.healthcheck = Healthcheck{};
  CHECK(config_hash(changed) != h);
  changed = s;
  changed.x_stack["a"] = 2;
  CHECK(config_hash(changed) != h);
  changed = s;
  changed.extra["ipc"] = "host";
  CHECK(config_hash(changed) != h);
}

TEST_CASE("check_supported: every unsupported field at once, sorted, topmost key only") {
  test::TempDir dir;
  auto r = load_text(dir, R"(services:
  web:
    image: x
    healthcheck: {test: ["CMD", "true"], interval: 5s}
    ports: ["80:80"]
    deploy:
      replicas: 2
      placement: {constraints: [a]}
      resources: {reservations: {devices: [{capabilities: [gpu]}]}, limits: {memory: 2g}}
    x-anything: {}
  db:
    image: y
    provider: {type: x}
networks:
  default:
    driver_opts: {a: b}
)");
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  auto c = check_supported(*r);
  REQUIRE(!c);
  CHECK(c.error().message ==
        "stack.yaml:8:7: refused: services.web.deploy.placement (placing replicas on nodes "
        "needs a cluster: stack daemon --cluster)\n"
        "stack.yaml:9:34: refused: services.web.deploy.resources.reservations.devices (GPU and "
        "device requests need a vendor runtime hook; use devices)");
}

TEST_CASE("the implicit default network: attached unless network_mode says otherwise") {
  test::TempDir dir;
  auto r = load_text(dir, "name: p\nservices:\n  a: {image: x}\n  b: {image: x, network_mode: host}\n");
  REQUIRE(r);
  REQUIRE(r->networks.size() == 1);
  CHECK(r->networks[0].name == "p_default");
  CHECK(r->networks[0].driver == "bridge");
  CHECK(r->find("a")->networks.at(0).network == "default");
  CHECK(r->find("b")->networks.empty());
}
