// The pure parts of registry pulls: image documents (OCI and Docker schema 2, indexes and the
// platform chosen from them), WWW-Authenticate challenges, the auth file docker and podman
// write, the registries configuration, base64, and blobs that must match their digest.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>

#include "common/base64.h"
#include "common/registry_credentials.h"
#include "fs/oci_layout.h"
#include "fs/registry_auth.h"
#include "fs/registry_client.h"
#include "fs/registry_http.h"
#include "fs/store_internal.h"
#include "support/temp_dir.h"

using namespace stack;
namespace stdfs = std::filesystem;

TEST_CASE("image documents: OCI and Docker manifests and indexes told apart") {
  using fs::DocumentKind;
  CHECK(fs::document_kind(
            R"({"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})", "") ==
        DocumentKind::index);
  CHECK(fs::document_kind(R"({"schemaVersion":2,"manifests":[]})", "") == DocumentKind::index);
  CHECK(fs::document_kind(R"({"schemaVersion":2,"config":{},"layers":[]})", "") ==
        DocumentKind::manifest);
  CHECK(fs::document_kind(R"({"schemaVersion":2})",
                          "application/vnd.docker.distribution.manifest.list.v2+json") ==
        DocumentKind::index);
  CHECK(fs::document_kind(R"({"schemaVersion":1,"fsLayers":[]})",
                          "application/vnd.docker.distribution.manifest.v1+prettyjws") ==
        DocumentKind::schema1);
  CHECK(fs::document_kind("not json", "") == DocumentKind::unknown);

  auto m = fs::parse_manifest(R"({"schemaVersion":2,
    "mediaType":"application/vnd.docker.distribution.manifest.v2+json",
    "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7,
              "digest":"sha256:0000000000000000000000000000000000000000000000000000000000000001"},
    "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":9,
               "digest":"sha256:0000000000000000000000000000000000000000000000000000000000000002"}]})");
  REQUIRE(m);
  CHECK(m->media_type == "application/vnd.docker.distribution.manifest.v2+json");
  CHECK(m->layers.size() == 1);
  // A digest that is no sha256 is refused, not used as a file name.
  CHECK(!fs::parse_manifest(
      R"({"config":{"digest":"sha256:../../etc/passwd","size":1},"layers":[]})"));
  CHECK(!fs::parse_manifest(R"({"config":{"digest":"md5:abc","size":1},"layers":[]})"));
}

TEST_CASE("image index: the platform asked for, linux/amd64 by default") {
  auto index = fs::parse_index(R"({"manifests":[
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
     "digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111",
     "platform":{"os":"linux","architecture":"arm","variant":"v7"}},
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
     "digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222",
     "platform":{"os":"linux","architecture":"arm64"}},
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
     "digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333",
     "platform":{"os":"unknown","architecture":"unknown"}},
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
     "digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444",
     "platform":{"os":"linux","architecture":"amd64"}}]})");
  REQUIRE(index);
  auto pick = [&](const char* p) {
    auto platform = fs::parse_platform(p);
    REQUIRE(platform);
    auto d = fs::choose_platform(*index, *platform);
    return d ? d->digest.substr(7, 1) : d.error().message;
  };
  CHECK(pick("linux/amd64") == "4");
  CHECK(pick("amd64") == "4");
  CHECK(pick("linux/x86_64") == "4");
  CHECK(pick("linux/arm64") == "2");
  CHECK(pick("linux/arm64/v8") == "2");  // an arm64 entry without a variant is v8
  CHECK(pick("linux/arm/v7") == "1");
  CHECK(
      pick("linux/arm/v6") ==
      "no image for platform linux/arm/v6 (the index has: linux/arm/v7, linux/arm64, linux/amd64)");
  CHECK(!fs::parse_platform("linux/"));
  CHECK(!fs::parse_platform("a/b/c/d"));
}

TEST_CASE("image config: the defaults a service overrides, healthcheck and volumes included") {
  auto c =
      fs::parse_config(R"({"architecture":"amd64","os":"linux","created":"2024-05-01T12:00:00.5Z",
    "config":{"Env":["A=1"],"Entrypoint":["/bin/app"],"Cmd":["serve"],"WorkingDir":"/srv",
      "User":"app:app","StopSignal":"SIGQUIT","ExposedPorts":{"8080/tcp":{},"53/udp":{}},
      "Volumes":{"/data":{},"/cache":{}},"Labels":{"org.opencontainers.image.title":"t"},
      "Healthcheck":{"Test":["CMD-SHELL","wget -q localhost:8080"],"Interval":5000000000,
                     "Timeout":2000000000,"StartPeriod":1000000000,"Retries":4}},
    "rootfs":{"type":"layers","diff_ids":[
      "sha256:5555555555555555555555555555555555555555555555555555555555555555"]}})");
  REQUIRE(c);
  CHECK(c->config.entrypoint == std::vector<std::string>{"/bin/app"});
  CHECK(c->config.stop_signal == "SIGQUIT");
  CHECK(c->config.exposed_ports == std::vector<std::string>{"53/udp", "8080/tcp"});
  CHECK(c->config.volumes == std::vector<std::string>{"/cache", "/data"});
  CHECK(c->config.labels.at("org.opencontainers.image.title") == "t");
  REQUIRE(c->config.healthcheck);
  CHECK(c->config.healthcheck->test ==
        std::vector<std::string>{"CMD-SHELL", "wget -q localhost:8080"});
  CHECK(c->config.healthcheck->interval_ns == 5'000'000'000);
  CHECK(c->config.healthcheck->retries == 4);
  CHECK(c->created == 1714564800);
  CHECK(c->platform.str() == "linux/amd64");
  // A config whose diff_ids are not digests is refused.
  CHECK(!fs::parse_config(R"({"rootfs":{"diff_ids":["../x"]}})"));
}

TEST_CASE("WWW-Authenticate challenges, bearer and basic") {
  auto c = fs::parse_challenges(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push")");
  REQUIRE(c.size() == 1);
  CHECK(c[0].scheme == "bearer");
  CHECK(c[0].params["realm"] == "https://auth.docker.io/token");
  CHECK(c[0].params["scope"] == "repository:library/busybox:pull,push");
  auto two = fs::parse_challenges(R"(Basic realm="Registry Realm", Bearer realm="x",service=y)");
  REQUIRE(two.size() == 2);
  CHECK(two[0].scheme == "basic");
  CHECK(two[0].params["realm"] == "Registry Realm");
  CHECK(two[1].params["service"] == "y");
  CHECK(fs::parse_challenges("").empty());
}

TEST_CASE("the registry of a reference, whose credential the CLI sends") {
  CHECK(stack::registry_of_reference("busybox") == "docker.io");
  CHECK(stack::registry_of_reference("org/app:1") == "docker.io");
  CHECK(stack::registry_of_reference("127.0.0.1:5000/team/app:1") == "127.0.0.1:5000");
  CHECK(stack::registry_of_reference("localhost/app") == "localhost");
  CHECK(stack::registry_of_reference("ghcr.io/a/b@sha256:00") == "ghcr.io");
  CHECK(stack::registry_of_reference("docker.io/library/busybox") == "docker.io");
}

TEST_CASE("the auth file docker login and podman login write") {
  test::TempDir tmp;
  CHECK(stack::registry_of_key("https://index.docker.io/v1/") == "docker.io");
  CHECK(stack::registry_of_key("http://Reg.Example:5000/v2/") == "reg.example:5000");
  CHECK(stack::registry_of_key("ghcr.io") == "ghcr.io");
  test::write_text(tmp / "config.json", R"({"auths":{
    "https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNzOndpdGg6Y29sb25z"},
    "127.0.0.1:5000":{"auth":"YWxpY2U6czNjcmV0"},
    "quay.io":{"identitytoken":"tok"}}, "credsStore":"desktop"})");
  auto hub = stack::find_credentials(tmp / "config.json", "docker.io");
  REQUIRE(hub);
  REQUIRE(*hub);
  CHECK((*hub)->username == "user");
  CHECK((*hub)->password == "pass:with:colons");
  auto local = stack::find_credentials(tmp / "config.json", "127.0.0.1:5000");
  REQUIRE((local && *local));
  CHECK((*local)->username == "alice");
  auto quay = stack::find_credentials(tmp / "config.json", "quay.io");
  REQUIRE((quay && *quay));
  CHECK((*quay)->identity_token == "tok");
  auto none = stack::find_credentials(tmp / "config.json", "ghcr.io");
  REQUIRE(none);
  CHECK(!*none);
  CHECK(!*stack::find_credentials(tmp / "missing.json", "docker.io"));
  test::write_text(tmp / "bad.json", "[1,2]");
  CHECK(!stack::find_credentials(tmp / "bad.json", "docker.io"));
}

TEST_CASE("the registries configuration: mirrors and insecure registries") {
  test::TempDir tmp;
  CHECK(fs::load_registries_config(tmp / "absent.json")->mirrors.empty());
  test::write_text(tmp / "r.json",
                   R"({"mirrors":{"docker.io":["https://m.example/","http://127.0.0.1:5000"]},
                                      "insecure":["reg.lan:5000"]})");
  auto c = fs::load_registries_config(tmp / "r.json");
  REQUIRE(c);
  CHECK(c->mirrors.at("docker.io") ==
        std::vector<std::string>{"https://m.example", "http://127.0.0.1:5000"});
  CHECK(c->insecure == std::vector<std::string>{"reg.lan:5000"});
  test::write_text(tmp / "typo.json", R"({"mirror":{}})");
  auto typo = fs::load_registries_config(tmp / "typo.json");
  REQUIRE(!typo);
  CHECK(typo.error().message ==
        (tmp / "typo.json").string() + ": unknown key \"mirror\" (mirrors, insecure, blocked)");
  CHECK(fs::is_loopback_registry("127.0.0.1:5000"));
  CHECK(fs::is_loopback_registry("localhost"));
  CHECK(fs::is_loopback_registry("[::1]:5000"));
  CHECK(!fs::is_loopback_registry("128.0.0.1:5000"));
  CHECK(!fs::is_loopback_registry("localhost.example.com"));
}

TEST_CASE("a blocked registry is never contacted: \"*\" leaves only loopback ones") {
  test::TempDir tmp;
  test::write_text(tmp / "b.json", R"({"blocked":["*"],
      "mirrors":{"docker.io":["http://127.0.0.1:5000","https://mirror.example"]}})");
  auto c = fs::load_registries_config(tmp / "b.json");
  REQUIRE(c);
  CHECK(fs::registry_blocked(*c, "docker.io"));
  CHECK(fs::registry_blocked(*c, "ghcr.io"));
  CHECK(!fs::registry_blocked(*c, "127.0.0.1:5000"));
  fs::PullRequest tuning;
  // docker.io itself and its remote mirror are dropped; the loopback mirror remains.
  CHECK(fs::RegistryClient(*fs::parse_reference("busybox"), *c, {}, tuning, {}).reachable());
  c->mirrors.clear();
  CHECK(!fs::RegistryClient(*fs::parse_reference("busybox"), *c, {}, tuning, {}).reachable());
  CHECK(fs::RegistryClient(*fs::parse_reference("127.0.0.1:5000/app"), *c, {}, tuning, {})
            .reachable());
  c->blocked = {"ghcr.io"};
  CHECK(fs::RegistryClient(*fs::parse_reference("busybox"), *c, {}, tuning, {}).reachable());
  CHECK(!fs::RegistryClient(*fs::parse_reference("ghcr.io/org/app"), *c, {}, tuning, {})
             .reachable());
}

TEST_CASE("base64 both ways") {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "alice:s3cret",
                                                       std::string("\0\xff\x10", 3)}) {
    CAPTURE(s);
    auto back = stack::base64_decode(stack::base64_encode(s));
    REQUIRE(back);
    CHECK(*back == s);
  }
  CHECK(stack::base64_encode("alice:s3cret") == "YWxpY2U6czNjcmV0");
  CHECK(!stack::base64_decode("a!b"));
}

TEST_CASE("a blob is never stored under a digest its bytes do not have") {
  test::TempDir tmp;
  auto w = fs::BlobWriter::create(tmp / "images");
  REQUIRE(w);
  REQUIRE(w->write("hello", 5));
  auto wrong = w->commit("sha256:" + std::string(64, '0'));
  REQUIRE(!wrong);
  CHECK(wrong.error().message.find("digest mismatch") != std::string::npos);
  auto w2 = fs::BlobWriter::create(tmp / "images");
  REQUIRE(w2);
  REQUIRE(w2->write("hello", 5));
  auto short_size = w2->commit("", 4);
  REQUIRE(!short_size);
  CHECK(short_size.error().message.find("size mismatch") != std::string::npos);
  {
    auto w3 = fs::BlobWriter::create(tmp / "images");  // abandoned: its temporary file goes
    REQUIRE(w3);
    REQUIRE(w3->write("x", 1));
  }
  CHECK(stdfs::directory_iterator(tmp / "images/blobs/sha256") == stdfs::directory_iterator());
  auto w4 = fs::BlobWriter::create(tmp / "images");
  REQUIRE(w4);
  REQUIRE(w4->write("hello", 5));
  auto hex = w4->commit("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  REQUIRE(hex);
  CHECK(test::read_text(tmp / "images/blobs/sha256" / *hex) == "hello");
  // Read back, a corrupted blob is an error, not a document.
  test::write_text(tmp / "images/blobs/sha256" / *hex, "jello");
  auto read = fs::read_blob(tmp / "images", "sha256:" + *hex);
  REQUIRE(!read);
  CHECK(read.error().message.find("is corrupt") != std::string::npos);
}
