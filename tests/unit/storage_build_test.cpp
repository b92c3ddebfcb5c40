// From a service's storage fields to the engine's mounts and the secret files (issue 13):
// where each kind lives on the host, what is refused before anything is made, and the digest
// that recreates a container when a secret changes. Pure but for reading a secret's file; no
// root needed.
#include <doctest/doctest.h>

#include <fstream>

#include "reconciler/volumes.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::reconciler;
using model::BindMount;
using stack::test::TempDir;

namespace {

struct Fixture {
  Paths paths;
  spec::Stack stack;
  spec::Service svc;
  RuntimeRecord r;
  Fixture() {
    paths.root = "/var/lib/stack";
    paths.run_root = "/run/stack";
    stack.name = "demo";
    stack.volumes.push_back({"data", "demo_data", "local", {}, false, {}, {}});
    svc.name = "web";
    r.spec.name = "demo-web-1";
    r.spec.dir = "/var/lib/stack/containers/demo-web-1";
  }
  spec::Mount& mount(const std::string& type, const std::string& source,
                     const std::string& target) {
    spec::Mount m;
    m.type = type;
    m.source = source;
    m.target = target;
    svc.volumes.push_back(m);
    return svc.volumes.back();
  }
  Result<void> build(const std::vector<std::string>& image_volumes = {}) {
    return build_storage(paths, stack, svc, r, image_volumes);
  }
};

}  // namespace

TEST_CASE("storage: named, anonymous and image volumes, tmpfs, read-only root and shm") {
  Fixture f;
  f.mount("volume", "data", "/data").subpath = "sub";
  f.mount("volume", "", "/anon").nocopy = true;
  auto& t = f.mount("tmpfs", "", "/cache");
  t.tmpfs_size = 1 << 20;
  t.tmpfs_mode = 01777;
  f.svc.tmpfs = {"/run:size=64m,mode=755,ro"};
  f.svc.read_only = true;
  f.svc.extra["shm_size"] = 8 << 20;
  REQUIRE(f.build({"/data", "/var/lib/db"}));
  const auto& m = f.r.spec.mounts;
  REQUIRE(m.size() == 5);
  CHECK(m[0].source == "/var/lib/stack/volumes/demo_data");
  CHECK(m[0].subpath == "sub");
  CHECK(m[0].seed);
  CHECK(m[1].source.parent_path() == "/var/lib/stack/containers/demo-web-1/volumes");
  CHECK(!m[1].seed);  // nocopy
  CHECK(m[2].kind == BindMount::Kind::kTmpfs);
  CHECK(m[2].options == "size=1048576,mode=1777");
  // The image's VOLUME /var/lib/db becomes an anonymous volume; /data is the service's already.
  CHECK(m[3].target == "/var/lib/db");
  CHECK(m[3].source.parent_path() == "/var/lib/stack/containers/demo-web-1/volumes");
  CHECK(m[4].target == "/run");
  CHECK(m[4].options == "size=64m,mode=755");
  CHECK(m[4].read_only);
  CHECK(f.r.spec.read_only_root);
  CHECK(f.r.spec.shm_size == 8 << 20);
}

TEST_CASE("storage: what is refused before anything is made") {
  Fixture a;
  a.mount("volume", "data", "/data").subpath = "../../etc";
  CHECK(a.build().error().message.find("must be a relative path without \"..\"") !=
        std::string::npos);
  Fixture b;
  b.svc.tmpfs = {"/run:exec"};
  CHECK(b.build().error().message.find("tmpfs option \"exec\" is not supported") !=
        std::string::npos);
  Fixture c;  // a container by name: its mounts are taken at creation, none here
  c.svc.extra["volumes_from"] = {"container:abc"};
  CHECK(c.build());
  CHECK(c.r.spec.mounts.empty());
  Fixture d;
  d.stack.secrets.push_back({});
  d.stack.secrets.back().key = "s";
  d.stack.secrets.back().environment = "UNSET_VAR";
  d.svc.secrets.push_back({"s", "/run/secrets/s", "", "", std::nullopt, {}});
  CHECK(d.build().error().message.find("variable UNSET_VAR is not set") != std::string::npos);
  d.stack.secrets.back().environment_value = "v";
  d.svc.secrets.back().uid = "www-data";
  CHECK(d.build().error().message.find(
            "uid \"www-data\" is neither a number nor a user in the image's /etc/passwd") !=
        std::string::npos);
}

TEST_CASE("storage: a secret's uid and gid names are the image's users and groups") {
  TempDir layer;
  std::filesystem::create_directories(layer.path() / "etc");
  std::ofstream(layer.path() / "etc/passwd") << "root:x:0:0::/root:/bin/sh\napp:x:1234:99::/:/bin/sh\n";
  std::ofstream(layer.path() / "etc/group") << "root:x:0:\nstaff:x:4321:app\n";
  Fixture f;
  f.r.spec.layers = {layer.path()};
  f.stack.secrets.push_back({});
  f.stack.secrets.back().key = "s";
  f.stack.secrets.back().environment = "V";
  f.stack.secrets.back().environment_value = "v";
  f.svc.secrets.push_back({"s", "/run/secrets/s", "app", "staff", std::nullopt, {}});
  REQUIRE(f.build());
  REQUIRE(f.r.secret_files.size() == 1);
  CHECK(f.r.secret_files[0].uid == 1234);
  CHECK(f.r.secret_files[0].gid == 4321);
  // A name the image does not have is refused by name (the host's users are never asked).
  Fixture g;
  g.r.spec.layers = {layer.path()};
  g.stack.secrets = f.stack.secrets;
  g.svc.secrets.push_back({"s", "/run/secrets/s", "1", "nosuchgroup", std::nullopt, {}});
  CHECK(g.build().error().message.find(
            "gid \"nosuchgroup\" is neither a number nor a group in the image's /etc/group") !=
        std::string::npos);
}

TEST_CASE("storage: volumes_from takes the other service's mounts, read-only when asked") {
  Fixture f;
  spec::Service db;
  db.name = "db";
  spec::Mount m;
  m.type = "volume";
  m.source = "data";
  m.target = "/var/lib/db";
  db.volumes.push_back(m);
  f.stack.services.push_back(db);
  f.svc.extra["volumes_from"] = {"db:ro"};
  REQUIRE(f.build());
  REQUIRE(f.r.spec.mounts.size() == 1);
  CHECK(f.r.spec.mounts[0].source == "/var/lib/stack/volumes/demo_data");
  CHECK(f.r.spec.mounts[0].read_only);
}

TEST_CASE("storage: secrets carry owner and mode, their content stays in memory, a change shows") {
  test::TempDir dir("stack-secret-unit");
  auto file = dir.path() / "token";
  std::ofstream(file) << "one";
  Fixture f;
  f.stack.secrets.push_back({});
  f.stack.secrets.back().key = "token";
  f.stack.secrets.back().file = file;
  f.stack.configs.push_back({});
  f.stack.configs.back().key = "conf";
  f.stack.configs.back().content = "level=3";
  f.svc.secrets.push_back({"token", "/run/secrets/token", "1000", "1001", 0400, {}});
  f.svc.configs.push_back({"conf", "/conf", "", "", std::nullopt, {}});
  REQUIRE(f.build());
  REQUIRE(f.r.secret_files.size() == 2);
  CHECK(f.r.secret_files[0].path == "/run/stack/secrets/demo-web-1/0");
  CHECK(f.r.secret_files[0].uid == 1000);
  CHECK(f.r.secret_files[0].gid == 1001);
  CHECK(f.r.secret_files[0].mode == 0400);
  CHECK(f.r.secret_files[1].mode == 0444);  // compose's default
  REQUIRE(f.r.secret_contents);
  CHECK(*f.r.secret_contents == std::vector<std::string>{"one", "level=3"});
  CHECK(f.r.spec.mounts[0].target == "/run/secrets/token");
  CHECK(f.r.spec.mounts[0].read_only);
  auto before = secrets_digest(f.stack, f.svc);
  std::ofstream(file) << "two";
  auto after = secrets_digest(f.stack, f.svc);
  REQUIRE(before);
  REQUIRE(after);
  CHECK(!before->empty());
  CHECK(*before != *after);
  CHECK(secrets_digest(f.stack, spec::Service{}).value().empty());
}
