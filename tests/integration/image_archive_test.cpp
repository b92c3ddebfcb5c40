// Images in and out of files: an OCI layout (directory or tar) and a `docker save` tarball made
// by skopeo import with their layers; `image save` writes a tar that skopeo (oci-archive: and
// docker-archive:) and podman load read; rm keeps the layers another image shares. Root.
#include <doctest/doctest.h>

#include <filesystem>
#include <set>

#include "fs/image_store.h"
#include "integration/registry_fixture.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

using namespace stack;
namespace stdfs = std::filesystem;

namespace {

#define REQUIRE_TOOLS()                                                      \
  do {                                                                       \
    STACK_REQUIRE_ROOT();                                                    \
    if (!test::registry_tools_present()) {                                   \
      test::report_skip("needs skopeo and umoci (scripts/install-deps.sh)"); \
      return;                                                                \
    }                                                                        \
  } while (0)

size_t count_dir(const stdfs::path& dir) {
  size_t n = 0;
  for (const auto& e : stdfs::directory_iterator(dir))
    if (!e.path().filename().string().starts_with(".")) n++;
  return n;
}

// BusyBox, a layer adding /app/hello, a layer removing /etc/nsswitch.conf.
void build(test::Layout& l, const test::TempDir& tmp) {
  test::write_text(tmp / "app/app/hello", "hello\n");
  l.insert(test::busybox_rootfs(), "/")
      .insert(tmp / "app/app", "/app")
      .whiteout("/etc/nsswitch.conf")
      .config({"--config.cmd", "cat", "--config.cmd", "/app/hello", "--config.workingdir", "/app"});
}

test::RunResult skopeo(std::vector<std::string> args) {
  args.insert(args.begin(), {"/usr/bin/skopeo", "--tmpdir", "/tmp"});
  return test::run(args);
}

}  // namespace

TEST_CASE("image import keeps the layers of an OCI layout, an OCI archive and a docker save tar") {
  REQUIRE_TOOLS();
  test::TempDir tmp("stack-archive");
  test::Layout l(tmp / "layout", "1");
  build(l, tmp);
  REQUIRE(
      skopeo({"copy", "-q", "oci:" + l.ref(), "oci-archive:" + (tmp / "oci.tar").string()}).code ==
      0);
  auto docker = skopeo({"copy", "-q", "oci:" + l.ref(),
                        "docker-archive:" + (tmp / "docker.tar").string() + ":team/app:7"});
  REQUIRE_MESSAGE(docker.code == 0, docker.err);

  fs::ImageStore store(tmp / "images");
  for (const auto& [name, path] :
       std::vector<std::pair<std::string, stdfs::path>>{{"from-dir", l.dir()},
                                                        {"from-oci", tmp / "oci.tar"},
                                                        {"from-docker", tmp / "docker.tar"}}) {
    INFO(name);
    auto img = store.import(name, path);
    REQUIRE_MESSAGE(img, (img ? "" : img.error().message));
    REQUIRE(img->layers.size() == 3);
    CHECK(img->config.cmd == std::vector<std::string>{"cat", "/app/hello"});
    CHECK(img->config.working_dir == "/app");
    CHECK(test::read_text(img->layers[1] / "app/hello") == "hello\n");
  }
  // The same three layers every time: unpacked once.
  CHECK(count_dir(store.root() / "layers") == 3);
  auto docker_img = store.get("from-docker");
  REQUIRE(docker_img);
  // docker save holds uncompressed layers; the diff_ids are the same as the OCI layout's.
  CHECK(docker_img->diff_ids == store.get("from-dir")->diff_ids);

  // `load` takes the names the archive carries: docker save's RepoTags.
  auto loaded = store.load(tmp / "docker.tar");
  REQUIRE_MESSAGE(loaded, (loaded ? "" : loaded.error().message));
  REQUIRE(loaded->size() == 1);
  CHECK((*loaded)[0].reference == "docker.io/team/app:7");
  // A rootfs is no archive to load.
  auto not_archive = store.load(test::busybox_rootfs());
  REQUIRE(!not_archive);
  CHECK(not_archive.error().message.find("neither an OCI image layout nor a docker save") !=
        std::string::npos);
}

TEST_CASE("image save output loads in podman and skopeo, and back into stack") {
  REQUIRE_TOOLS();
  if (::access("/usr/bin/podman", X_OK) != 0) {
    test::report_skip("needs podman (scripts/install-deps.sh)");
    return;
  }
  test::TempDir tmp("stack-save");
  test::Layout l(tmp / "layout", "1");
  build(l, tmp);
  fs::ImageStore store(tmp / "images");
  auto app = store.import("stack-save-test/app:1", l.dir());
  REQUIRE_MESSAGE(app, (app ? "" : app.error().message));
  auto base = store.import("stack-save-test/base:2", test::busybox_rootfs());
  REQUIRE(base);
  const stdfs::path out = tmp / "saved.tar";
  auto saved = store.save({"stack-save-test/app:1", "stack-save-test/base:2"}, out);
  REQUIRE_MESSAGE(saved, (saved ? "" : saved.error().message));

  // skopeo: as an OCI archive (one image named by its reference) and as a docker archive.
  auto oci =
      skopeo({"copy", "-q", "oci-archive:" + out.string() + ":docker.io/stack-save-test/app:1",
              "oci:" + (tmp / "copy").string() + ":app"});
  CHECK_MESSAGE(oci.code == 0, oci.err);
  auto inspect = skopeo({"inspect", "--raw", "oci:" + (tmp / "copy").string() + ":app"});
  REQUIRE(inspect.code == 0);
  CHECK(nlohmann::json::parse(inspect.out)["layers"].size() == 3);
  auto dockerish =
      skopeo({"copy", "-q", "docker-archive:" + out.string() + ":stack-save-test/base:2",
              "oci:" + (tmp / "copy").string() + ":base"});
  CHECK_MESSAGE(dockerish.code == 0, dockerish.err);

  // podman, in a storage of its own.
  std::vector<std::string> podman = {"/usr/bin/podman",
                                     "--root",
                                     (tmp / "podman/root").string(),
                                     "--runroot",
                                     (tmp / "podman/run").string(),
                                     "--tmpdir",
                                     (tmp / "podman/tmp").string(),
                                     "--volumepath",
                                     (tmp / "podman/volumes").string(),
                                     "--storage-driver",
                                     "vfs",
                                     "--events-backend",
                                     "none"};
  auto load = podman;
  load.insert(load.end(), {"load", "-i", out.string()});
  auto loaded = test::run(load);
  CHECK_MESSAGE(loaded.code == 0, loaded.err);
  auto images = podman;
  images.insert(images.end(), {"images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"});
  auto listed = test::run(images);
  INFO(listed.out);
  CHECK(listed.out.find("docker.io/stack-save-test/app:1 " + app->id.substr(7, 12)) !=
        std::string::npos);
  CHECK(listed.out.find("docker.io/stack-save-test/base:2 " + base->id.substr(7, 12)) !=
        std::string::npos);
  auto run_it = podman;
  run_it.insert(run_it.end(),
                {"image", "inspect", "--format", "{{.Config.Cmd}}", "stack-save-test/app:1"});
  CHECK(test::run(run_it).out == "[cat /app/hello]\n");

  // And back: a fresh store loads both names with the same ids.
  fs::ImageStore fresh(tmp / "fresh");
  auto back = fresh.load(out);
  REQUIRE_MESSAGE(back, (back ? "" : back.error().message));
  std::set<std::string> ids;
  for (const auto& i : *back) ids.insert(i.id);
  CHECK(ids == std::set<std::string>{app->id, base->id});
}

TEST_CASE("image rm keeps the layers another image shares") {
  REQUIRE_TOOLS();
  test::TempDir tmp("stack-rm");
  test::Layout l(tmp / "layout", "1");
  build(l, tmp);
  fs::ImageStore store(tmp / "images");
  auto base = store.import("base", test::busybox_rootfs());
  auto app = store.import("app", l.dir());
  REQUIRE(base);
  REQUIRE_MESSAGE(app, (app ? "" : app.error().message));
  // The rootfs packed by stack and by umoci are different tars: share through a second app.
  auto app2 = store.tag("app", "app:2");
  REQUIRE(app2);
  size_t layers = count_dir(store.root() / "layers");
  auto gone = store.remove("app:latest", {});
  REQUIRE(gone);
  CHECK(gone->deleted.empty());  // app:2 names it still
  CHECK(count_dir(store.root() / "layers") == layers);
  // A different image sharing two of its three layers.
  test::Layout l2(tmp / "layout2", "1");
  test::write_text(tmp / "other/other/x", "x\n");
  l2.insert(test::busybox_rootfs(), "/")
      .insert(tmp / "app/app", "/app")
      .insert(tmp / "other/other", "/other");
  auto other = store.import("other", l2.dir());
  REQUIRE_MESSAGE(other, (other ? "" : other.error().message));
  CHECK(other->layers[0] == app->layers[0]);
  CHECK(other->layers[1] == app->layers[1]);
  auto removed = store.remove("app:2", {});
  REQUIRE(removed);
  CHECK(removed->deleted == std::vector<std::string>{app->id});
  for (const auto& layer : other->layers) CHECK(stdfs::is_directory(layer));
  CHECK(!stdfs::exists(app->layers[2]));  // the whiteout layer was app's alone
  auto still = store.get("other");
  REQUIRE(still);
  CHECK(test::read_text(still->layers[1] / "app/hello") == "hello\n");
}
