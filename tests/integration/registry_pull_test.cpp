// Registry pulls (fs::pull_image) against a real registry on loopback (Debian's
// docker-registry), images built with umoci from the BusyBox rootfs and pushed with skopeo:
// an index resolved to linux/amd64, a second pull that transfers no layer, a pull resumed after
// the registry went away mid-layer, bearer tokens from the auth file, redirects, mirrors,
// digests verified, Docker schema 2. Root: layers keep their owners.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <atomic>
#include <filesystem>
#include <set>

#include "fs/image_store.h"
#include "fs/pull.h"
#include "integration/registry_fixture.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

using namespace stack;
namespace stdfs = std::filesystem;

namespace {

#define REQUIRE_REGISTRY_TOOLS()                                                      \
  do {                                                                                \
    STACK_REQUIRE_ROOT();                                                             \
    if (!test::registry_tools_present()) {                                            \
      test::report_skip("needs docker-registry, skopeo and umoci (install-deps.sh)"); \
      return;                                                                         \
    }                                                                                 \
  } while (0)

// A three-layer image: the BusyBox rootfs, a layer that adds /app/hello and removes
// /etc/nsswitch.conf, and one with a 2 MiB file.
void build_app(test::Layout& l, const test::TempDir& tmp) {
  test::write_text(tmp / "app/app/hello", "hello from layer two\n");
  test::random_file(tmp / "big/data/blob", 2 << 20);
  l.insert(test::busybox_rootfs(), "/")
      .insert(tmp / "app/app", "/app")
      .whiteout("/etc/nsswitch.conf")
      .insert(tmp / "big/data", "/data")
      .config({"--config.cmd", "cat", "--config.cmd", "/app/hello", "--config.env", "GREETING=hi"});
}

fs::PullRequest request(const std::string& ref, const test::TempDir& tmp) {
  fs::PullRequest r;
  r.reference = ref;
  r.auth_file = tmp / "no-auth.json";
  r.registries_config = tmp / "no-registries.json";
  return r;
}

}  // namespace

TEST_CASE("registry pull of a multi-layer image from an index takes the linux/amd64 manifest") {
  REQUIRE_REGISTRY_TOOLS();
  test::TempDir tmp("stack-pull");
  test::Registry reg;
  test::Layout l(tmp / "layout", "1");
  build_app(l, tmp);
  l.make_index();
  reg.push(l.dir(), "1", "team/app:1", true);

  fs::ImageStore store(tmp / "images");
  std::vector<fs::PullEvent> events;
  auto req = request(reg.host() + "/team/app:1", tmp);
  req.progress = [&](const fs::PullEvent& e) { events.push_back(e); };
  auto img = fs::pull_image(store, req);
  REQUIRE_MESSAGE(img, (img ? "" : img.error().message));
  CHECK(img->reference == reg.host() + "/team/app:1");
  CHECK(img->architecture == "amd64");
  CHECK(std::find(img->config.env.begin(), img->config.env.end(), "DECOY=arm64") ==
        img->config.env.end());
  CHECK(img->repo_digest == reg.host() + "/team/app@" + l.digest());  // the index's digest
  CHECK(img->pulled_at > 0);
  REQUIRE(img->layers.size() == 4);  // busybox, /app, the whiteout, /data
  CHECK(test::read_text(img->layers[1] / "app/hello") == "hello from layer two\n");
  struct stat st {};
  REQUIRE(::lstat((img->layers[2] / "etc/nsswitch.conf").c_str(), &st) == 0);
  CHECK(S_ISCHR(st.st_mode));
  CHECK(st.st_rdev == makedev(0, 0));
  // Progress: resolved, then every layer reaches "Pull complete".
  std::set<std::string> complete;
  for (const auto& e : events)
    if (e.kind == fs::PullEvent::Kind::layer && e.status == "Pull complete") complete.insert(e.id);
  CHECK(complete.size() == 4);
  CHECK(events.back().kind == fs::PullEvent::Kind::done);

  // By digest: the same image, found again without the registry.
  auto by_digest = store.get(reg.host() + "/team/app@" + l.digest());
  REQUIRE(by_digest);
  CHECK(by_digest->id == img->id);

  // Another platform of the index, asked for.
  auto arm = request(reg.host() + "/team/app:1", tmp);
  arm.platform = "linux/arm64";
  auto arm_img = fs::pull_image(store, arm);
  REQUIRE_MESSAGE(arm_img, (arm_img ? "" : arm_img.error().message));
  CHECK(arm_img->architecture == "arm64");
  auto none = request(reg.host() + "/team/app:1", tmp);
  none.platform = "linux/s390x";
  auto refused = fs::pull_image(store, none);
  REQUIRE(!refused);
  CHECK(refused.error().message.find("no image for platform linux/s390x (the index has: "
                                     "linux/arm64/v8, linux/amd64)") != std::string::npos);
}

TEST_CASE("registry pull a second time transfers no layer") {
  REQUIRE_REGISTRY_TOOLS();
  test::TempDir tmp("stack-pull");
  test::Registry reg;
  test::Layout l(tmp / "layout", "1");
  build_app(l, tmp);
  reg.push(l.dir(), "1", "app:1");
  fs::ImageStore store(tmp / "images");
  auto first = fs::pull_image(store, request(reg.host() + "/app:1", tmp));
  REQUIRE_MESSAGE(first, (first ? "" : first.error().message));
  int blobs = reg.count("\"GET /v2/app/blobs/");
  CHECK(blobs == 5);  // 4 layers and the config

  std::vector<std::string> statuses;
  auto again = request(reg.host() + "/app:1", tmp);
  again.progress = [&](const fs::PullEvent& e) {
    if (e.kind == fs::PullEvent::Kind::layer && e.status != "Waiting") statuses.push_back(e.status);
  };
  auto second = fs::pull_image(store, again);
  REQUIRE_MESSAGE(second, (second ? "" : second.error().message));
  CHECK(second->id == first->id);
  CHECK(reg.count("\"GET /v2/app/blobs/") == blobs);   // nothing transferred
  CHECK(reg.count("\"GET /v2/app/manifests/1") == 2);  // only asked what the tag names
  CHECK(statuses == std::vector<std::string>(4, "Already exists"));
}

TEST_CASE("registry pull resumes a layer after the registry is stopped mid-layer") {
  REQUIRE_REGISTRY_TOOLS();
  test::TempDir tmp("stack-pull");
  test::Registry reg;
  test::Layout l(tmp / "layout", "1");
  test::random_file(tmp / "big/data/blob", 8 << 20);
  l.insert(test::busybox_rootfs(), "/").insert(tmp / "big/data", "/data");
  reg.push(l.dir(), "1", "app:1");
  auto manifest = l.blob(l.digest());
  std::string big = manifest["layers"][1]["digest"];

  test::Proxy proxy(reg.port());
  // 3 MiB into the 8 MiB layer the connection drops and the registry stops; it is back a
  // second later.
  std::atomic<bool> restarted{false};
  proxy.cut("/blobs/" + big, 3 << 20, [&] {
    reg.stop();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    reg.start();
    restarted = true;
  });
  fs::ImageStore store(tmp / "images");
  std::vector<std::string> retries;
  auto req = request(proxy.host() + "/app:1", tmp);
  req.progress = [&](const fs::PullEvent& e) {
    if (e.status == "Retrying") retries.push_back(e.message);
  };
  auto img = fs::pull_image(store, req);
  REQUIRE_MESSAGE(img, (img ? "" : img.error().message));
  CHECK(proxy.was_cut());
  CHECK(restarted);
  CHECK(!retries.empty());
  CHECK(test::read_text(img->layers[1] / "data/blob").size() == (8u << 20));
  // Resumed: the next request for the layer asked for what was missing, not for all of it.
  int ranged = 0;
  for (const auto& r : proxy.requests())
    if (r.find("/blobs/" + big) != std::string::npos &&
        r.find("Range: bytes=") != std::string::npos &&
        r.find("Range: bytes=0-") == std::string::npos)
      ranged++;
  CHECK(ranged >= 1);
  CHECK(reg.count("\" 206 ") >= 1);  // the registry answered with part of the blob
}

TEST_CASE("registry pull with a bearer token from the auth file docker and podman write") {
  REQUIRE_REGISTRY_TOOLS();
  test::TempDir tmp("stack-pull");
  test::Registry reg;
  test::Layout l(tmp / "layout", "1");
  l.insert(test::busybox_rootfs(), "/");
  reg.push(l.dir(), "1", "private/app:1");
  test::Proxy proxy(reg.port());
  proxy.gate("alice", "s3cret");
  fs::ImageStore store(tmp / "images");

  auto anonymous = fs::pull_image(store, request(proxy.host() + "/private/app:1", tmp));
  REQUIRE(!anonymous);
  CHECK(anonymous.error().message.find("unauthorized") != std::string::npos);

  // {"auths": {"HOST": {"auth": base64("alice:s3cret")}}}, as `docker login` writes it.
  test::write_text(tmp / "auth.json",
                   "{\"auths\": {\"" + proxy.host() + "\": {\"auth\": \"YWxpY2U6czNjcmV0\"}}}");
  auto req = request(proxy.host() + "/private/app:1", tmp);
  req.auth_file = tmp / "auth.json";
  auto img = fs::pull_image(store, req);
  REQUIRE_MESSAGE(img, (img ? "" : img.error().message));
  CHECK(proxy.count("GET /token?service=test-registry&scope=repository:x:pull") >= 1);
  CHECK(proxy.count("Authorization: Bearer t0ken") >= 2);

  test::write_text(tmp / "wrong.json",
                   "{\"auths\": {\"" + proxy.host() + "\": {\"auth\": \"YWxpY2U6d3Jvbmc=\"}}}");
  req.auth_file = tmp / "wrong.json";
  auto wrong = fs::pull_image(store, req);
  REQUIRE(!wrong);
  CHECK(wrong.error().message.find("refused the credentials") != std::string::npos);

  fs::Credentials good{"alice", "s3cret", ""}, bad{"alice", "nope", ""};
  CHECK(fs::check_login(proxy.host(), good, tmp / "none.json"));
  CHECK(!fs::check_login(proxy.host(), bad, tmp / "none.json"));
}

TEST_CASE("registry pull follows redirects, refuses a corrupt blob, reads schema 2") {
  REQUIRE_REGISTRY_TOOLS();
  test::TempDir tmp("stack-pull");
  test::Registry reg;
  test::Layout l(tmp / "layout", "1");
  l.insert(test::busybox_rootfs(), "/");
  reg.push(l.dir(), "1", "oci:1");
  reg.push(l.dir(), "1", "docker:1", false, true);

  {
    test::Proxy proxy(reg.port());
    proxy.redirect_blobs();
    fs::ImageStore store(tmp / "images-redirect");
    auto img = fs::pull_image(store, request(proxy.host() + "/oci:1", tmp));
    REQUIRE_MESSAGE(img, (img ? "" : img.error().message));
    CHECK(reg.count("\"GET /v2/oci/blobs/") == 2);  // the layer and the config, redirected
  }
  {
    test::Proxy proxy(reg.port());
    proxy.corrupt_blobs();
    fs::ImageStore store(tmp / "images-corrupt");
    auto r = fs::pull_image(store, request(proxy.host() + "/oci:1", tmp));
    REQUIRE(!r);
    CHECK(r.error().message.find("digest mismatch") != std::string::npos);
    // Never a blob under a digest its bytes do not have.
    for (const auto& e : stdfs::directory_iterator(store.root() / "blobs/sha256"))
      if (!e.path().filename().string().starts_with(".tmp-"))
        CHECK(test::regfix::sha256_of(e.path()) == e.path().filename().string());
    CHECK(store.list()->empty());
  }
  {
    fs::ImageStore store(tmp / "images-docker");
    auto img = fs::pull_image(store, request(reg.host() + "/docker:1", tmp));
    REQUIRE_MESSAGE(img, (img ? "" : img.error().message));
    auto manifest = nlohmann::json::parse(
        test::read_text(store.root() / "blobs/sha256" / img->manifest_digest.substr(7)));
    CHECK(manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json");
    CHECK(test::read_text(img->layers[0] / "etc/passwd").find("root:x:0:0") == 0);
  }
}

TEST_CASE("registry pull through a mirror from the registries configuration") {
  REQUIRE_REGISTRY_TOOLS();
  test::TempDir tmp("stack-pull");
  test::Registry reg;
  test::Layout l(tmp / "layout", "1");
  l.insert(test::busybox_rootfs(), "/");
  reg.push(l.dir(), "1", "mirrored/app:1");
  // The registry named in the reference is localhost:1, where nothing listens: only the mirror
  // can answer (and a failing test never reaches beyond loopback).
  test::write_text(tmp / "registries.json",
                   "{\"mirrors\": {\"localhost:1\": [\"http://" + reg.host() + "\"]}}");
  fs::ImageStore store(tmp / "images");
  auto req = request("localhost:1/mirrored/app:1", tmp);
  req.registries_config = tmp / "registries.json";
  auto img = fs::pull_image(store, req);
  REQUIRE_MESSAGE(img, (img ? "" : img.error().message));
  CHECK(img->reference == "localhost:1/mirrored/app:1");
  CHECK(reg.count("\"GET /v2/mirrored/app/manifests/1") == 1);

  test::write_text(tmp / "bad.json", "{\"mirrors\": {\"x\": [\"ftp://a\"]}}");
  req.registries_config = tmp / "bad.json";
  auto bad = fs::pull_image(store, req);
  REQUIRE(!bad);
  CHECK(bad.error().message.find("must start with http:// or https://") != std::string::npos);
}

TEST_CASE("registry pull of an unknown tag or repository names it") {
  REQUIRE_REGISTRY_TOOLS();
  test::TempDir tmp("stack-pull");
  test::Registry reg;
  fs::ImageStore store(tmp / "images");
  auto r = fs::pull_image(store, request(reg.host() + "/nothing:1", tmp));
  REQUIRE(!r);
  CHECK(r.error().message.find("pull " + reg.host() + "/nothing:1: manifest " + reg.host() +
                               "/nothing:1: not found") != std::string::npos);
  CHECK(store.list()->empty());
}
