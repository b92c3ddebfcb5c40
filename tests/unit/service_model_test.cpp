// The rest of the service model without root: lifecycle hooks as the loader reads them (words,
// user, environment, errors at their line), what the runtime record keeps of them, and the
// reasons given for the fields a single Linux host refuses.
#include <doctest/doctest.h>

#include "spec/loader.h"
#include "spec/service_fields.h"
#include "spec/validate.h"
#include "state/runtime_codec.h"
#include "support/temp_dir.h"

using namespace stack;

namespace {

Result<spec::Stack> load_text(const test::TempDir& dir, const std::string& text) {
  test::write_text(dir / "stack.yaml", text);
  spec::LoadOptions opts;
  opts.working_dir = dir.path();
  return spec::load(opts);
}

// check_supported's message for a one-service stack with FIELDS (YAML lines under it).
std::string refusal(const std::string& fields) {
  test::TempDir dir("stack-model");
  auto r = load_text(dir, "services:\n  web:\n    image: x\n" + fields);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  auto c = spec::check_supported(*r);
  return c ? "" : c.error().message;
}

}  // namespace

TEST_CASE("hooks: post_start and pre_stop load with their words, user and environment") {
  test::TempDir dir("stack-model");
  auto r = load_text(dir, R"(services:
  web:
    image: x
    post_start:
      - command: echo "one two" three
        user: "1000"
        environment: {A: b}
      - command: [sh, -c, "touch /x"]
        privileged: true
        working_dir: /tmp
    pre_stop:
      - command: ["true"]
        environment: [C=d]
)");
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(spec::check_supported(*r));
  const spec::Service& s = r->services.at(0);
  auto post = spec::lifecycle_hooks(s, "post_start");
  REQUIRE(post);
  REQUIRE(post->size() == 2);
  CHECK((*post)[0].argv == std::vector<std::string>{"echo", "one two", "three"});
  CHECK((*post)[0].user == "1000");
  CHECK((*post)[0].environment.at("A") == "b");
  CHECK((*post)[1].privileged);
  CHECK((*post)[1].working_dir == "/tmp");
  auto pre = spec::lifecycle_hooks(s, "pre_stop");
  REQUIRE(pre);
  REQUIRE(pre->size() == 1);
  CHECK(pre->at(0).environment.at("C") == "d");
}

TEST_CASE("hooks: a command with an open quote is refused at its line") {
  std::string m = refusal("    post_start:\n      - command: echo 'open\n");
  CHECK_MESSAGE(m.find("stack.yaml:4:") != std::string::npos, m);
  CHECK_MESSAGE(m.find("post_start") != std::string::npos, m);
}

TEST_CASE("hooks: a hook changes the config hash") {
  test::TempDir dir("stack-model");
  auto a = load_text(dir, "services:\n  web:\n    image: x\n");
  REQUIRE(a);
  auto b = load_text(dir, "services:\n  web:\n    image: x\n    pre_stop: [{command: 'true'}]\n");
  REQUIRE(b);
  CHECK(spec::config_hash(a->services.at(0)) != spec::config_hash(b->services.at(0)));
}

TEST_CASE("runtime record: hooks round-trip with their whole process") {
  model::RuntimeRecord r;
  r.spec.process.argv = {"sleep", "1"};
  model::ProcessSpec h;
  h.argv = {"sh", "-c", "echo hi"};
  h.env = {"A=b"};
  h.cwd = "/tmp";
  h.uid = 1000;
  h.gid = 1001;
  h.groups = {5};
  h.capabilities = 0x42;
  h.rlimits = {{7, 10, 20}};
  r.post_start = {h};
  r.pre_stop = {h, h};
  auto back = state::decode_runtime(state::encode_runtime(r));
  REQUIRE_MESSAGE(back, (back ? "" : back.error().message));
  REQUIRE(back->post_start.size() == 1);
  REQUIRE(back->pre_stop.size() == 2);
  const auto& p = back->post_start[0];
  CHECK(p.argv == h.argv);
  CHECK(p.env == h.env);
  CHECK(p.cwd == "/tmp");
  CHECK(p.uid == 1000);
  CHECK(p.gid == 1001);
  CHECK(p.groups == std::vector<gid_t>{5});
  CHECK(p.capabilities == 0x42);
  REQUIRE(p.rlimits.size() == 1);
  CHECK(p.rlimits[0].hard == 20);
}

TEST_CASE("refusals: what cannot work on one Linux host says why, at its key") {
  std::string m = refusal("    isolation: process\n");
  CHECK_MESSAGE(m == "stack.yaml:4:5: refused: services.web.isolation process (a Windows container "
                     "setting; Linux runs only default)",
                m);
  m = refusal("    credential_spec: {file: x.json}\n");
  CHECK_MESSAGE(m.find("refused: services.web.credential_spec (a Windows gMSA") != std::string::npos, m);
  m = refusal("    gpus: all\n");
  CHECK_MESSAGE(m.find("refused: services.web.gpus (") != std::string::npos, m);
  m = refusal("    deploy: {mode: global}\n");
  CHECK_MESSAGE(m.find("deploy.mode global (one replica per node needs a cluster") != std::string::npos, m);
  CHECK(refusal("    deploy: {mode: replicated}\n").empty());
  m = refusal("    cpu_count: 2\n");
  CHECK_MESSAGE(m.find("refused: services.web.cpu_count (a Windows") != std::string::npos, m);
  // What could work here and is not done yet still says so.
  m = refusal("    volumes: [{type: npipe, source: y, target: /y}]\n");
  CHECK_MESSAGE(m.find("not supported yet: services.web.volumes (mount type npipe)") !=
                    std::string::npos,
                m);
  CHECK(refusal("    volumes: [{type: image, source: y, target: /y, image: {subpath: a}}]\n")
            .empty());
}

TEST_CASE("namespaces: uts host and ipc host load, what would change the host is refused") {
  CHECK(refusal("    uts: host\n    ipc: host\n").empty());
  CHECK(refusal("    ipc: shareable\n").empty());
  std::string m = refusal("    uts: private\n");
  CHECK_MESSAGE(m.find("stack.yaml:4:5: service \"web\": uts private: only host") == 0, m);
  m = refusal("    uts: host\n    hostname: h\n");
  CHECK_MESSAGE(m.find("stack.yaml:5:5: service \"web\": hostname with uts: host") == 0, m);
  m = refusal("    ipc: host\n    sysctls: {kernel.shmmax: 1}\n");
  CHECK_MESSAGE(m.find("sysctl kernel.shmmax is refused with ipc: host") != std::string::npos, m);
  m = refusal("    ipc: service:db\n");
  CHECK_MESSAGE(m.find("stack.yaml:4:5: service \"web\": ipc service:db: unknown service \"db\"") == 0,
                m);
}

TEST_CASE("namespaces: pid host|service, ipc service and cgroup load, one joined service only") {
  CHECK(refusal("    pid: host\n    cgroup: private\n").empty());
  CHECK(refusal("    cgroup: host\n    cpu_rt_runtime: 10000\n    cpu_rt_period: 1000000\n").empty());
  const std::string db = "  db: {image: x}\n";
  CHECK(refusal("    pid: service:db\n    ipc: service:db\n    network_mode: service:db\n"
                "  db: {image: x, ipc: shareable}\n")
            .empty());
  std::string p = refusal("    ipc: service:db\n" + db);
  CHECK_MESSAGE(p.find("stack.yaml:4:5: service \"web\": ipc service:db: the IPC namespace of "
                       "\"db\" is private; give it ipc: shareable") == 0,
                p);
  std::string m = refusal("    pid: service:db\n    network_mode: service:other\n" + db +
                          "  other: {image: x}\n");
  CHECK_MESSAGE(m.find("stack joins the namespaces of one service only") != std::string::npos, m);
  m = refusal("    pid: service:web\n");
  CHECK_MESSAGE(m.find("pid service:web: a service cannot join its own namespaces") !=
                    std::string::npos,
                m);
  CHECK(refusal("    pid: container:abc\n").empty());
  m = refusal("    pid: private\n");
  CHECK_MESSAGE(m.find("pid private: host, service:NAME or container:NAME") != std::string::npos,
                m);
  CHECK(refusal("    network_mode: container:abc\n").empty());
}
