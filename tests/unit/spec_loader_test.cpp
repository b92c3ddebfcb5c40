// load(): whole stack files through parsing, interpolation, merging, validation and
// normalisation, with the error messages a user sees.
#include <doctest/doctest.h>

#include "spec/loader.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::spec;
using namespace std::chrono_literals;

namespace {

// A project directory with stack files; load() runs with its options.
struct Project {
  test::TempDir dir{"stack-spec"};
  LoadOptions opts;
  Project() { opts.working_dir = dir.path(); }
  Project& file(const std::string& name, const std::string& text) {
    test::write_text(dir / name, text);
    return *this;
  }
  Result<Stack> load_yaml(const std::string& text) {
    file("stack.yaml", text);
    return load(opts);
  }
  std::string error_of(const std::string& text) {
    auto r = load_yaml(text);
    return r ? "LOADED" : r.error().message;
  }
};

const Service& only(const Result<Stack>& r) {
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  REQUIRE(r->services.size() == 1);
  return r->services[0];
}

}  // namespace

TEST_CASE("a minimal service gets the defaults") {
  Project p;
  auto r = p.load_yaml("services:\n  web:\n    image: busybox\n");
  const Service& s = only(r);
  CHECK(s.name == "web");
  CHECK(s.pos.str() == "stack.yaml:2:3");
  CHECK(s.image == "busybox:latest");
  CHECK(s.image_pos.line == 3);
  CHECK(!s.command);
  CHECK(!s.entrypoint);
  CHECK(s.hostname.empty());
  CHECK(s.stop_signal == "SIGTERM");
  CHECK(s.stop_grace_period == 10s);
  CHECK(s.logging.max_size_bytes == 10 * 1024 * 1024);
  CHECK(s.logging.max_files == 3);
  CHECK(s.replicas == 1);
  CHECK(s.restart == "no");
  CHECK(r->project_dir == p.dir.path());
  CHECK(r->files == std::vector<std::filesystem::path>{p.dir / "stack.yaml"});
  CHECK(r->warnings.empty());
}

TEST_CASE("image tags and digests are kept") {
  Project p;
  auto r = p.load_yaml(
      "services:\n  a: {image: 'busybox:1.36'}\n  b: {image: 'localhost:5000/x/y'}\n"
      "  c: {image: 'alpine@sha256:abcd'}\n");
  REQUIRE(r);
  CHECK(r->services[0].image == "busybox:1.36");
  CHECK(r->services[1].image == "localhost:5000/x/y:latest");
  CHECK(r->services[2].image == "alpine@sha256:abcd");
}

TEST_CASE("every supported field, short forms") {
  Project p;
  p.opts.environment = {{"FROM_SHELL", "shell"}};
  auto r = p.load_yaml(R"(
version: "3.8"
x-common: &common
  restart: always
services:
  web:
    <<: *common
    image: nginx:1.25
    command: sh -c 'echo "hi there"'
    entrypoint: /bin/entry
    environment:
      A: "1"
      B: 2
      FROM_SHELL:
      NOT_SET:
    working_dir: /srv
    hostname: webhost
    user: "1000:1000"
    mem_limit: 512m
    cpus: "0.5"
    cpu_shares: 512
    pids_limit: 100
    scale: 2
    stop_signal: INT
    stop_grace_period: 1m30s
    volumes:
      - ./data:/data
      - ./conf/:/etc/conf:ro
      - /abs:/abs:rw
    logging:
      driver: local
      options: {max-size: 1m, max-file: "5"}
    depends_on: [db]
    x-note: ignored
  db:
    image: postgres
    restart: on-failure:3
)");
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  const Service& s = *r->find("web");
  CHECK(s.image == "nginx:1.25");
  CHECK(*s.command == std::vector<std::string>{"sh", "-c", "echo \"hi there\""});
  CHECK(*s.entrypoint == std::vector<std::string>{"/bin/entry"});
  CHECK(s.environment ==
        std::map<std::string, std::string>{{"A", "1"}, {"B", "2"}, {"FROM_SHELL", "shell"}});
  CHECK(s.working_dir == "/srv");
  CHECK(s.hostname == "webhost");
  CHECK(s.user == "1000:1000");
  CHECK(s.limits.memory_bytes == 512LL << 20);
  CHECK(s.limits.cpus == 0.5);
  CHECK(s.limits.cpu_shares == 512);
  CHECK(s.limits.pids == 100);
  CHECK(s.replicas == 2);
  CHECK(s.stop_signal == "SIGINT");
  CHECK(s.stop_grace_period == 90s);
  REQUIRE(s.volumes.size() == 3);
  CHECK(s.volumes[0].source == p.dir / "data");
  CHECK(s.volumes[0].target == "/data");
  CHECK(!s.volumes[0].read_only);
  CHECK(s.volumes[1].source == p.dir / "conf");
  CHECK(s.volumes[1].read_only);
  CHECK(s.volumes[2].source == "/abs");
  CHECK(s.logging.driver == "local");
  CHECK(s.logging.max_size_bytes == 1 << 20);
  CHECK(s.logging.max_files == 5);
  CHECK(s.depends_on == std::vector<std::string>{"db"});
  CHECK(s.restart == "always");  // from the merge key
  CHECK(r->find("db")->restart == "on-failure:3");
}

TEST_CASE("every supported field, long forms") {
  Project p;
  p.file("common.env", "A=from_file\nB=from_file\n");
  auto r = p.load_yaml(R"(
services:
  web:
    image: nginx
    command: ["echo", "a b"]
    entrypoint: [/bin/sh, -c]
    environment: [B=override, "C=x=y"]
    env_file:
      - path: common.env
      - path: missing.env
        required: false
    deploy:
      replicas: 3
      resources:
        limits: {memory: 1gb, cpus: 1.5, pids: 50}
    volumes:
      - type: bind
        source: ./src
        target: /app
        read_only: true
    depends_on:
      db:
        condition: service_started
  db:
    image: postgres
)");
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  const Service& s = *r->find("web");
  CHECK(*s.command == std::vector<std::string>{"echo", "a b"});
  CHECK(*s.entrypoint == std::vector<std::string>{"/bin/sh", "-c"});
  CHECK(s.environment ==
        std::map<std::string, std::string>{{"A", "from_file"}, {"B", "override"}, {"C", "x=y"}});
  CHECK(s.replicas == 3);
  CHECK(s.limits.memory_bytes == 1LL << 30);
  CHECK(s.limits.cpus == 1.5);
  CHECK(s.limits.pids == 50);
  REQUIRE(s.volumes.size() == 1);
  CHECK(s.volumes[0].source == p.dir / "src");
  CHECK(s.volumes[0].target == "/app");
  CHECK(s.volumes[0].read_only);
  CHECK(s.depends_on == std::vector<std::string>{"db"});
}

TEST_CASE("env_file as a string: environment wins whatever the key order") {
  Project p;
  p.file("app.env", "# settings\nexport PORT=80\nNAME=\"my app\"\n");
  auto r = p.load_yaml(
      "services:\n  web:\n    image: x\n    environment: {PORT: '8080'}\n    env_file: app.env\n");
  const Service& s = only(r);
  CHECK(s.environment == std::map<std::string, std::string>{{"NAME", "my app"}, {"PORT", "8080"}});
}

TEST_CASE("a missing required env_file is an error with its position") {
  Project p;
  std::string e = p.error_of("services:\n  web:\n    image: x\n    env_file: [nope.env]\n");
  CHECK(e.rfind("stack.yaml:4:16: services.web.env_file: ", 0) == 0);
  CHECK(e.find("nope.env") != std::string::npos);
}

TEST_CASE("interpolation: shell env wins over .env, warnings for unset variables") {
  Project p;
  p.file(".env", "TAG=from-dotenv\nPORT=1\nMEM=64m\n");
  p.opts.environment = {{"PORT", "2"}};
  auto r = p.load_yaml(
      "services:\n  web:\n    image: nginx:${TAG}\n    mem_limit: $MEM\n"
      "    environment: {P: '${PORT}', Q: '$$HOME', R: '${NOPE}'}\n");
  const Service& s = only(r);
  CHECK(s.image == "nginx:from-dotenv");
  CHECK(s.limits.memory_bytes == 64LL << 20);
  CHECK(s.environment.at("P") == "2");
  CHECK(s.environment.at("Q") == "$HOME");
  CHECK(s.environment.at("R") == "");
  REQUIRE(r->warnings.size() == 1);
  CHECK(r->warnings[0] == "stack.yaml:5:49: variable \"NOPE\" is not set, using an empty string");
}

TEST_CASE("interpolation: a required variable names its position") {
  Project p;
  CHECK(p.error_of("services:\n  web:\n    image: ${IMAGE:?set IMAGE}\n") ==
        "stack.yaml:3:12: required variable IMAGE is missing a value: set IMAGE");
}

TEST_CASE("interpolation does not touch keys") {
  Project p;
  auto r = p.load_yaml("services:\n  web:\n    image: x\n    environment: {$$A: b}\n");
  CHECK(only(r).environment.count("$$A") == 1);
}

TEST_CASE("YAML syntax errors give file:line:col") {
  Project p;
  std::string e = p.error_of("services:\n  web:\n    image: [busybox\n    command: x\n");
  CHECK(e.rfind("stack.yaml:", 0) == 0);
  CHECK(e.rfind("stack.yaml:4:12: ", 0) == 0);
  CHECK(e.find("did not find expected ',' or ']'") != std::string::npos);
  CHECK(p.error_of("services:\n  web: {image: a}\n  web: {image: b}\n") ==
        "stack.yaml:3:3: duplicate key \"web\"");
}

TEST_CASE("unknown keys suggest the closest known key") {
  Project p;
  CHECK(p.error_of("services:\n  web:\n    imgae: busybox\n    image: x\n") ==
        "stack.yaml:3:5: unknown key \"imgae\" in service \"web\" (did you mean \"image\"?)");
  CHECK(p.error_of("servics:\n  web: {image: x}\n") ==
        "stack.yaml:1:1: unknown top-level key \"servics\" (did you mean \"services\"?)\n"
        "stack.yaml:1:1: services is required");
}

TEST_CASE("compose keys that stack does not implement yet load, and check_supported names them") {
  Project p;
  auto unsupported = [&](const std::string& text) {
    auto r = p.load_yaml(text);
    if (!r) return "LOAD FAILED: " + r.error().message;
    auto c = check_supported(*r);
    return c ? std::string("SUPPORTED") : c.error().message;
  };
  CHECK(unsupported("services:\n  web:\n    image: x\n    ports: ['80:80', '53:53/udp']\n") ==
        "SUPPORTED");
  CHECK(unsupported("services:\n  web:\n    image: x\n    ports: ['80:80/sctp', '90/sctp']\n") ==
        "SUPPORTED");
  CHECK(unsupported("services:\n  web:\n    image: x\n    network_mode: service:db\n  db: {image: x}\n") ==
        "SUPPORTED");
  CHECK(unsupported("services:\n  web:\n    image: x\n    network_mode: container:abc\n") ==
        "SUPPORTED");
  CHECK(unsupported("services:\n  web:\n    image: x\n    networks: {back: {aliases: [w], ipv4_address: 10.1.0.5}}\n"
                    "    extra_hosts: ['db:10.0.0.1']\nnetworks:\n  back:\n    internal: true\n"
                    "    ipam: {config: [{subnet: 10.1.0.0/24}]}\n") == "SUPPORTED");
  CHECK(unsupported("services:\n  web: {image: x}\nnetworks: {n: {enable_ipv6: true}}\nvolumes: {}\n") ==
        "SUPPORTED");
  CHECK(unsupported("services:\n  web: {image: x}\nnetworks: {n: {enable_ipv4: false, enable_ipv6: true}}\n"
                    "volumes: {}\n") == "SUPPORTED");
  // Storage (issue 13): named, anonymous and tmpfs volumes, secrets and configs run; what
  // cannot work on one host is refused with its reason.
  CHECK(unsupported("services:\n  web:\n    image: x\n    volumes: [data:/data, /anon]\n"
                    "    tmpfs: [/run]\n    read_only: true\n    shm_size: 64m\n"
                    "    secrets: [s]\n    configs: [{source: c, target: /c, mode: 0440}]\n"
                    "volumes: {data: {driver: local, driver_opts: {type: tmpfs, device: tmpfs}}}\n"
                    "secrets: {s: {file: ./s}}\nconfigs: {c: {content: x}}\n") == "SUPPORTED");
  CHECK(unsupported("services:\n  web:\n    image: x\n    volumes: [data:/data]\n"
                    "volumes: {data: {driver: rexray}}\n") ==
        "stack.yaml:5:11: not supported yet: volumes.data.driver rexray (only local)");
  CHECK(unsupported("services:\n  web:\n    image: x\n    storage_opt: {size: 1G}\n") ==
        "stack.yaml:4:5: refused: services.web.storage_opt (a size quota needs overlay "
        "on xfs with pquota; the layers are not on one)");
  CHECK(unsupported("services:\n  web:\n    image: x\n    secrets: [s]\nsecrets: {s: {external: true}}\n") ==
        "stack.yaml:5:11: not supported yet: secrets.s.external (no Swarm store on a single "
        "host: give a file instead)");
  CHECK(unsupported("services:\n  web:\n    image: x\n    volumes: [{type: npipe, source: y, target: /y}]\n") ==
        "stack.yaml:4:15: not supported yet: services.web.volumes (mount type npipe)");
  CHECK(unsupported("services:\n  web:\n    image: x\n    volumes: [{type: image, source: y, target: /y}]\n") ==
        "SUPPORTED");
  CHECK(unsupported("services:\n  web:\n    build: .\n") == "SUPPORTED");
  CHECK(unsupported("services:\n  web:\n    build: {context: ., secrets: [s]}\n") ==
        "stack.yaml:3:25: refused: services.web.build.secrets (build secrets are not mounted "
        "into RUN: pass values with args, or COPY a file)");
  CHECK(unsupported("services:\n  web:\n    image: x\n    logging: {driver: syslog}\n") ==
        "SUPPORTED");
  CHECK(unsupported("services:\n  web:\n    image: x\n    logging: {driver: etwlogs}\n") ==
        "stack.yaml:4:15: refused: services.web.logging.driver etwlogs (Event Tracing for "
        "Windows: Windows only)");
  CHECK(unsupported("services:\n  web:\n    image: x\n    deploy: {placement: {}}\n") ==
        "stack.yaml:4:14: refused: services.web.deploy.placement (placing replicas on "
        "nodes needs a cluster: stack daemon --cluster)");
  CHECK(unsupported("services:\n  web:\n    image: x\n    logging: {options: {compress: 'true'}}\n") ==
        "stack.yaml:4:25: not supported yet: services.web.logging.options.compress");
  p.opts.profiles = {"p"};
  CHECK(unsupported("services:\n  web:\n    image: x\n    depends_on: {db: {condition: service_healthy}}\n"
                    "  db: {image: y, x-stack: {a: 1}, restart: always, profiles: [p],\n"
                    "       healthcheck: {test: [CMD, 'true']}}\n") == "SUPPORTED");
  CHECK(unsupported("x-base: &b {image: x}\nservices:\n  web:\n    <<: *b\n    environment: [A=1]\n"
                    "    deploy: {replicas: 2, resources: {limits: {memory: 1g}}}\n") == "SUPPORTED");
}

TEST_CASE("wrong types name the field, the expectation and the position") {
  Project p;
  CHECK(p.error_of("services:\n  web:\n    image: x\n    mem_limit: lots\n") ==
        "stack.yaml:4:16: services.web.mem_limit: expected a byte size like 512m, got \"lots\"");
  CHECK(p.error_of("services:\n  web:\n    image: x\n    stop_grace_period: soon\n") ==
        "stack.yaml:4:24: services.web.stop_grace_period: expected a duration like 10s or "
        "1m30s, got \"soon\"");
  CHECK(p.error_of("services:\n  web:\n    image: x\n    restart: sometimes\n") ==
        "stack.yaml:4:14: services.web.restart: expected no, always, on-failure[:N] or "
        "unless-stopped, got \"sometimes\"");
  CHECK(p.error_of("services:\n  web:\n    image: x\n    command: {a: b}\n") ==
        "stack.yaml:4:14: services.web.command: expected a string or a list of strings, got "
        "a mapping");
}

TEST_CASE("all errors of a file come back sorted by position") {
  Project p;
  std::string e = p.error_of(R"(services:
  web:
    mem_limit: lots
    image: ""
    depends_on: [ghost]
    cpus: many
  bad name:
    image: x
)");
  CHECK(e ==
        "stack.yaml:3:16: services.web.mem_limit: expected a byte size like 512m, got \"lots\"\n"
        "stack.yaml:4:12: services.web.image: expected an image reference like busybox:1.36, "
        "got \"\"\n"
        "stack.yaml:5:18: services.web.depends_on: unknown service \"ghost\"\n"
        "stack.yaml:6:11: services.web.cpus: expected a number like 0.5, got \"many\"\n"
        "stack.yaml:7:3: invalid service name \"bad name\": use letters, digits, '.', '_' and "
        "'-'");
}

TEST_CASE("scale and deploy.replicas must agree, as must the two memory limits") {
  Project p;
  std::string e = p.error_of(
      "services:\n  web:\n    image: x\n    scale: 2\n    mem_limit: 1g\n"
      "    deploy: {replicas: 3, resources: {limits: {memory: 2g}}}\n");
  CHECK(e.find("scale and deploy.replicas disagree") != std::string::npos);
  CHECK(e.find("mem_limit and deploy.resources.limits disagree") != std::string::npos);
}

TEST_CASE("merging two files follows the compose rules") {
  Project p;
  p.file("base.yaml", R"(
name: base
services:
  web:
    image: nginx
    command: [a, b, c]
    environment: {A: "1", B: "1"}
    volumes: [./one:/one, ./two:/two]
    depends_on: [db]
    mem_limit: 1g
  db:
    image: postgres
)");
  p.file("override.yaml", R"(
services:
  web:
    command: x
    environment: [B=2, C=3]
    volumes: ["./other:/two:ro", ./three:/three]
    depends_on: {cache: {condition: service_started}}
  cache:
    image: redis
)");
  p.opts.files = {"base.yaml", "override.yaml"};
  auto r = load(p.opts);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(r->name == "base");
  REQUIRE(r->services.size() == 3);
  CHECK(r->services[2].name == "cache");
  const Service& s = *r->find("web");
  CHECK(s.image == "nginx:latest");
  CHECK(*s.command == std::vector<std::string>{"x"});
  CHECK(s.environment == std::map<std::string, std::string>{{"A", "1"}, {"B", "2"}, {"C", "3"}});
  REQUIRE(s.volumes.size() == 3);
  CHECK(s.volumes[0].target == "/one");
  CHECK(s.volumes[1].source == p.dir / "other");
  CHECK(s.volumes[1].read_only);
  CHECK(s.volumes[2].target == "/three");
  CHECK(s.depends_on == std::vector<std::string>{"db", "cache"});
  CHECK(s.limits.memory_bytes == 1LL << 30);
  CHECK(r->files.size() == 2);
}

TEST_CASE("errors in a second file name that file") {
  Project p;
  p.file("a.yaml", "services:\n  web: {image: x}\n");
  p.file("b.yaml", "services:\n  web: {mem_limit: lots}\n");
  p.opts.files = {"a.yaml", "b.yaml"};
  auto r = load(p.opts);
  REQUIRE(!r);
  CHECK(r.error().message ==
        "b.yaml:2:20: services.web.mem_limit: expected a byte size like 512m, got \"lots\"");
}

TEST_CASE("project name: -p, then name:, then the directory") {
  Project p;
  p.file("stack.yaml", "name: From_File\nservices:\n  web: {image: x}\n");
  CHECK(load(p.opts)->name == "from_file");
  p.opts.project_name = "Flag.Name";
  CHECK(load(p.opts)->name == "flagname");
  p.opts.project_name = "__";
  CHECK(!load(p.opts));

  test::TempDir parent;
  auto dir = parent / "My-Project";
  test::write_text(dir / "stack.yaml", "services:\n  web: {image: x}\n");
  LoadOptions opts;
  opts.working_dir = dir;
  CHECK(load(opts)->name == "my-project");
}

TEST_CASE("default file discovery and explicit files") {
  Project p;
  auto none = resolve_files(p.opts);
  REQUIRE(!none);
  CHECK(none.error().message.find("stack.yaml, stack.yml, compose.yaml") != std::string::npos);
  p.file("docker-compose.yml", "services: {}\n");
  CHECK(resolve_files(p.opts).value() ==
        std::vector<std::filesystem::path>{p.dir / "docker-compose.yml"});
  p.file("compose.yaml", "services: {}\n");
  CHECK(resolve_files(p.opts).value() ==
        std::vector<std::filesystem::path>{p.dir / "compose.yaml"});
  p.opts.files = {"nope.yaml"};
  CHECK(resolve_files(p.opts).error().message == "file not found: nope.yaml");
  p.opts.files = {p.dir / "compose.yaml"};
  CHECK(resolve_files(p.opts).value().front() == p.dir / "compose.yaml");
}

TEST_CASE("config_hash ignores formatting, key order and replicas: sees the environment") {
  Project a;
  Project b;
  auto ra = a.load_yaml(
      "services:\n  web:\n    image: nginx\n    environment: {X: '1', Y: '2'}\n"
      "    mem_limit: 1g\n");
  auto rb = b.load_yaml(
      "services:\n  web: {mem_limit: 1024m, environment: [Y=2, X=1],\n"
      "        image: 'nginx:latest', scale: 4}\n");
  const Service& sa = only(ra);
  const Service& sb = only(rb);
  CHECK(config_hash(sa).size() == 64);
  CHECK(config_hash(sa) == config_hash(sb));
  Service changed = sa;
  changed.environment["X"] = "2";
  CHECK(config_hash(changed) != config_hash(sa));
  Service scaled = sa;
  scaled.replicas = 9;
  scaled.pos.line = 42;
  CHECK(config_hash(scaled) == config_hash(sa));
}

TEST_CASE("environment list entries without a value come from the shell or are left out") {
  Project p;
  p.opts.environment = {{"HOME_DIR", "/home/me"}};
  auto r = p.load_yaml(
      "services:\n  web:\n    image: x\n    environment: [HOME_DIR, NOT_THERE]\n"
      "    restart: no\n");
  const Service& s = only(r);
  CHECK(s.environment == std::map<std::string, std::string>{{"HOME_DIR", "/home/me"}});
  CHECK(s.restart == "no");
}

TEST_CASE("volumes: every form loads: unknown named volumes and relative targets are errors") {
  Project p;
  auto r = p.load_yaml(
      "services:\n  web:\n    image: x\n    volumes:\n      - /anon\n      - data:/data:ro,nocopy\n"
      "      - ./a:/a:z\n      - {type: tmpfs, target: /t, tmpfs: {size: 64m, mode: 1777}}\n"
      "volumes:\n  data: {}\n");
  const Service& s = only(r);
  REQUIRE(s.volumes.size() == 4);
  CHECK(s.volumes[0].type == "volume");
  CHECK(s.volumes[0].source.empty());
  CHECK(s.volumes[1].source == "data");
  CHECK(s.volumes[1].read_only);
  CHECK(s.volumes[1].nocopy);
  CHECK(s.volumes[2].selinux == "z");
  CHECK(s.volumes[2].create_host_path);
  CHECK(s.volumes[3].type == "tmpfs");
  CHECK(s.volumes[3].tmpfs_size == 64LL << 20);
  CHECK(s.volumes[3].tmpfs_mode == 01777);
  CHECK(r->volumes.at(0).name == r->name + "_data");
  CHECK(p.error_of("services:\n  web:\n    image: x\n    volumes:\n"
                   "      - {type: volume, source: db, target: /db}\n") ==
        "stack.yaml:5:9: services.web.volumes: unknown volume \"db\" (declare it under the "
        "top-level volumes)");
  CHECK(p.error_of("services:\n  web:\n    image: x\n    volumes: [./a:rel]\n") ==
        "stack.yaml:4:15: services.web.volumes: volume target must be an absolute path, got "
        "\"rel\"");
  CHECK(p.error_of("services:\n  web:\n    image: x\n    volumes: ['./a:/a:bogus']\n") ==
        "stack.yaml:4:15: services.web.volumes: unknown volume option \"bogus\" (use ro, rw, z, "
        "Z, nocopy or a propagation like rshared)");
}

TEST_CASE("a service may not depend on itself and needs an image") {
  Project p;
  CHECK(p.error_of("services:\n  web:\n    image: x\n    depends_on: [web]\n") ==
        "stack.yaml:4:18: services.web.depends_on: a service cannot depend on itself");
  CHECK(p.error_of("services:\n  web:\n    user: x\n") ==
        "stack.yaml:2:3: services.web: image is required (or build)");
}
