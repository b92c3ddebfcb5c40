// ImageStore against a temp root: import of directories and tarballs, idempotence, list/remove/
// prune with garbage collection, and reference normalization. Safety of unpacking and whiteouts
// are in image_unpack_test.cpp, archives (OCI layouts, docker save) in image_archive_test.cpp.
#include "fs/image_store.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "fs/sha256.h"
#include "image_test_tar.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

using namespace stack;
namespace stdfs = std::filesystem;

namespace {

std::string slurp(const stdfs::path& p) { return read_file(p).value(); }

size_t count_entries(const stdfs::path& dir) {
  size_t n = 0;
  for (auto it = stdfs::directory_iterator(dir); it != stdfs::directory_iterator(); ++it) ++n;
  return n;
}

// A small rootfs: a file, an executable, a symlink, a hardlink and a subdirectory.
void make_rootfs(const stdfs::path& dir, const std::string& greeting) {
  test::write_text(dir / "hello.txt", greeting);
  test::write_text(dir / "bin" / "run", "#!/bin/sh\necho hi\n");
  stdfs::permissions(dir / "bin" / "run", stdfs::perms(0755));
  test::write_text(dir / "etc" / "conf" / "app.conf", "key=value\n");
  stdfs::create_symlink("hello.txt", dir / "greeting");
  stdfs::create_hard_link(dir / "hello.txt", dir / "hello-again.txt");
}

nlohmann::json manifest_of(const fs::ImageStore& store, const fs::Image& img) {
  std::string hex = img.manifest_digest.substr(7);
  return nlohmann::json::parse(slurp(store.root() / "blobs" / "sha256" / hex));
}

}  // namespace

TEST_CASE("image store imports a directory as one layer with its files") {
  test::TempDir tmp;
  make_rootfs(tmp / "rootfs", "hello\n");
  fs::ImageStore store(tmp / "images");

  auto imported = store.import("demo", tmp / "rootfs");
  REQUIRE_MESSAGE(imported, (imported ? "" : imported.error().message));
  auto img = store.get("demo:latest");
  REQUIRE(img);
  CHECK(img->reference == "docker.io/library/demo:latest");
  CHECK(img->id == imported->id);
  CHECK(img->id.starts_with("sha256:"));
  CHECK(img->manifest_digest.starts_with("sha256:"));
  CHECK(img->size > 0);
  CHECK(img->config.env ==
        std::vector<std::string>{
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"});
  REQUIRE(img->layers.size() == 1);

  stdfs::path layer = img->layers[0];
  CHECK(layer.parent_path() == store.root() / "layers");
  CHECK(slurp(layer / "hello.txt") == "hello\n");
  CHECK(slurp(layer / "etc" / "conf" / "app.conf") == "key=value\n");
  CHECK(stdfs::is_symlink(layer / "greeting"));
  CHECK(stdfs::read_symlink(layer / "greeting") == "hello.txt");
  CHECK((stdfs::status(layer / "bin" / "run").permissions() & stdfs::perms::owner_exec) !=
        stdfs::perms::none);
  struct stat a {
  }, b{};
  REQUIRE(::stat((layer / "hello.txt").c_str(), &a) == 0);
  REQUIRE(::stat((layer / "hello-again.txt").c_str(), &b) == 0);
  CHECK(a.st_ino == b.st_ino);  // hardlink kept

  // The OCI layout around it.
  CHECK(stdfs::exists(store.root() / "oci-layout"));
  auto index = nlohmann::json::parse(slurp(store.root() / "index.json"));
  REQUIRE(index["manifests"].size() == 1);
  CHECK(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] ==
        "docker.io/library/demo:latest");
  auto manifest = manifest_of(store, *img);
  CHECK(manifest["schemaVersion"] == 2);
  CHECK(manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip");
  auto config = nlohmann::json::parse(slurp(store.root() / "blobs" / "sha256" / img->id.substr(7)));
  CHECK(config["architecture"] == "amd64");
  CHECK(config["os"] == "linux");
  CHECK(config["rootfs"]["diff_ids"][0] == "sha256:" + layer.filename().string());
}

TEST_CASE("image store re-import of the same directory gives the same layer and id") {
  test::TempDir tmp;
  make_rootfs(tmp / "rootfs", "same\n");
  fs::ImageStore store(tmp / "images");
  auto first = store.import("one", tmp / "rootfs");
  REQUIRE(first);
  size_t blobs = count_entries(store.root() / "blobs" / "sha256");
  auto second = store.import("two:v1", tmp / "rootfs");
  REQUIRE(second);
  CHECK(second->id == first->id);
  CHECK(second->layers == first->layers);
  CHECK(second->manifest_digest == first->manifest_digest);
  CHECK(count_entries(store.root() / "blobs" / "sha256") == blobs);
  CHECK(count_entries(store.root() / "layers") == 1);
}

TEST_CASE("image store detects tarball compression by content, not by name") {
  test::TempDir tmp;
  std::vector<test::TarEntry> entries = {
      test::tar_dir("etc/"),
      test::tar_file("etc/os-release", "NAME=test\n"),
      test::tar_dir("bin/"),
      test::tar_file("bin/sh", "binary", 0755),
      test::tar_symlink("bin/ash", "sh"),
  };
  struct Case {
    const char* file;
    test::TarCompression compression;
    const char* media_type;
  };
  const Case cases[] = {
      {"plain.tar.gz", test::TarCompression::none, "application/vnd.oci.image.layer.v1.tar"},
      {"layer.bin", test::TarCompression::gzip, "application/vnd.oci.image.layer.v1.tar+gzip"},
      {"layer.tar", test::TarCompression::zstd, "application/vnd.oci.image.layer.v1.tar+zstd"},
  };
  fs::ImageStore store(tmp / "images");
  std::string diff_id;
  for (const auto& c : cases) {
    INFO(c.file);
    test::write_tar(tmp / c.file, entries, c.compression);
    auto img = store.import(std::string("t-") + std::to_string(int(c.compression)), tmp / c.file);
    REQUIRE_MESSAGE(img, (img ? "" : img.error().message));
    REQUIRE(img->layers.size() == 1);
    CHECK(slurp(img->layers[0] / "etc" / "os-release") == "NAME=test\n");
    CHECK(stdfs::read_symlink(img->layers[0] / "bin" / "ash") == "sh");
    CHECK(img->created == test::kTarMtime);
    auto manifest = manifest_of(store, *img);
    CHECK(manifest["layers"][0]["mediaType"] == c.media_type);
    // The blob is the file as given.
    CHECK(manifest["layers"][0]["digest"] == "sha256:" + fs::sha256_file_hex(tmp / c.file).value());
    // Same tar stream inside, whatever the compression: same diff_id and layer directory.
    if (diff_id.empty()) diff_id = img->layers[0].filename().string();
    CHECK(img->layers[0].filename() == diff_id);
  }
  // diff_id of the plain tarball is the digest of the file itself.
  CHECK(diff_id == fs::sha256_file_hex(tmp / "plain.tar.gz").value());

  auto again = store.import("t-again", tmp / "layer.tar");
  auto before = store.get("t-2");
  REQUIRE(again);
  REQUIRE(before);
  CHECK(again->id == before->id);
}

TEST_CASE("image store rejects a file that is no tarball") {
  test::TempDir tmp;
  test::write_text(tmp / "junk", std::string(2000, 'x'));
  fs::ImageStore store(tmp / "images");
  auto r = store.import("junk", tmp / "junk");
  REQUIRE(!r);
  CHECK(r.error().message.find("import junk:latest") != std::string::npos);
  CHECK(count_entries(store.root() / "layers") == 0);
  CHECK(count_entries(store.root() / "blobs" / "sha256") == 0);
  CHECK(!store.import("missing", tmp / "nope"));
}

TEST_CASE("image store lists sorted and remove collects unreferenced blobs and layers") {
  test::TempDir tmp;
  make_rootfs(tmp / "r1", "one\n");
  make_rootfs(tmp / "r2", "two\n");
  fs::ImageStore store(tmp / "images");
  REQUIRE(store.import("zeta", tmp / "r1"));
  REQUIRE(store.import("alpha", tmp / "r2"));
  auto beta = store.import("beta", tmp / "r1");  // shares everything with zeta
  REQUIRE(beta);

  auto all = store.list();
  REQUIRE(all);
  REQUIRE(all->size() == 3);
  CHECK((*all)[0].reference == "docker.io/library/alpha:latest");
  CHECK((*all)[1].reference == "docker.io/library/beta:latest");
  CHECK((*all)[2].reference == "docker.io/library/zeta:latest");
  CHECK((*all)[1].tags ==
        std::vector<std::string>{"docker.io/library/beta:latest", "docker.io/library/zeta:latest"});

  auto blobs = store.root() / "blobs" / "sha256";
  size_t blob_count = count_entries(blobs);  // 2 images x (layer, config, manifest)
  CHECK(blob_count == 6);
  auto untag = store.remove("zeta", {});
  REQUIRE(untag);
  CHECK(untag->untagged == std::vector<std::string>{"docker.io/library/zeta:latest"});
  CHECK(untag->deleted.empty());
  CHECK(count_entries(blobs) == blob_count);  // beta still uses them
  CHECK(stdfs::exists(beta->layers[0]));

  std::string layer_blob = manifest_of(store, *beta)["layers"][0]["digest"].get<std::string>();
  auto gone = store.remove("beta:latest", {});
  REQUIRE(gone);
  CHECK(gone->deleted == std::vector<std::string>{beta->id});
  CHECK(gone->reclaimed > 0);
  CHECK(!stdfs::exists(beta->layers[0]));
  CHECK(!stdfs::exists(blobs / layer_blob.substr(7)));
  CHECK(!stdfs::exists(blobs / beta->id.substr(7)));
  CHECK(!stdfs::exists(blobs / beta->manifest_digest.substr(7)));
  CHECK(count_entries(blobs) == 3);
  CHECK(count_entries(store.root() / "layers") == 1);

  auto again = store.remove("beta", {});
  REQUIRE(!again);
  CHECK(again.error().message ==
        "image \"beta:latest\" not found (pull it with: stack image pull beta:latest, or import it "
        "with: stack image import beta:latest PATH)");
  REQUIRE(store.list()->size() == 1);
}

TEST_CASE("image store import over a name keeps the old image untagged until pruned") {
  test::TempDir tmp;
  make_rootfs(tmp / "r1", "old\n");
  make_rootfs(tmp / "r2", "new\n");
  fs::ImageStore store(tmp / "images");
  auto old_img = store.import("app:1", tmp / "r1");
  REQUIRE(old_img);
  auto new_img = store.import("app:1", tmp / "r2");
  REQUIRE(new_img);
  CHECK(new_img->id != old_img->id);
  auto got = store.get("app:1");
  REQUIRE(got);
  CHECK(slurp(got->layers[0] / "hello.txt") == "new\n");
  // As docker's <none>: a container may still run it.
  auto all = store.list();
  REQUIRE(all);
  REQUIRE(all->size() == 2);
  CHECK((*all)[1].reference.empty());
  CHECK((*all)[1].id == old_img->id);
  CHECK(stdfs::exists(old_img->layers[0]));
  // By its id, still.
  auto by_id = store.get(old_img->id.substr(7, 12));
  REQUIRE(by_id);
  CHECK(by_id->id == old_img->id);

  // A container uses it: prune keeps it.
  auto kept = store.prune({{old_img->id, "p-a-1"}});
  REQUIRE(kept);
  CHECK(kept->deleted.empty());
  CHECK(stdfs::exists(old_img->layers[0]));
  auto pruned = store.prune({});
  REQUIRE(pruned);
  CHECK(pruned->deleted == std::vector<std::string>{old_img->id});
  CHECK(!stdfs::exists(old_img->layers[0]));
  CHECK(!stdfs::exists(store.root() / "blobs" / "sha256" / old_img->id.substr(7)));
  CHECK(store.list()->size() == 1);
  CHECK(stdfs::exists(new_img->layers[0]));
}

TEST_CASE("image store rm refuses an image a container uses, --force untags it") {
  test::TempDir tmp;
  make_rootfs(tmp / "r1", "one\n");
  fs::ImageStore store(tmp / "images");
  auto img = store.import("app", tmp / "r1");
  REQUIRE(img);
  REQUIRE(store.tag("app", "other:2"));
  fs::InUse used = {{img->id, "proj-web-1"}};
  // Another name keeps it: untagging one name is fine.
  auto one = store.remove("other:2", used);
  REQUIRE(one);
  CHECK(one->untagged == std::vector<std::string>{"docker.io/library/other:2"});
  auto refused = store.remove("app", used);
  REQUIRE(!refused);
  CHECK(refused.error().message ==
        "image app:latest is used by container proj-web-1 (stack down first, or --force to untag "
        "it)");
  auto forced = store.remove("app", used, true);
  REQUIRE(forced);
  CHECK(forced->deleted.empty());
  CHECK(stdfs::exists(img->layers[0]));  // the container's layers stay
  CHECK(store.list()->size() == 1);      // untagged
  auto later = store.prune({});          // the container is gone
  REQUIRE(later);
  CHECK(later->deleted == std::vector<std::string>{img->id});
  CHECK(!stdfs::exists(img->layers[0]));
}

TEST_CASE("image store reads a store of the first version (short names)") {
  test::TempDir tmp;
  make_rootfs(tmp / "r1", "one\n");
  fs::ImageStore store(tmp / "images");
  auto img = store.import("busybox", tmp / "r1");
  REQUIRE(img);
  // What the first version wrote: "busybox:latest" as the ref name.
  auto index = nlohmann::json::parse(slurp(store.root() / "index.json"));
  index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = "busybox:latest";
  test::write_text(store.root() / "index.json", index.dump());
  auto got = store.get("busybox");
  REQUIRE(got);
  CHECK(got->reference == "docker.io/library/busybox:latest");
  CHECK(got->id == img->id);
  REQUIRE(store.tag("busybox", "bb:2"));  // a write puts it back canonical
  index = nlohmann::json::parse(slurp(store.root() / "index.json"));
  CHECK(index["manifests"][1]["annotations"]["org.opencontainers.image.ref.name"] ==
        "docker.io/library/busybox:latest");
}

TEST_CASE("image store survives two processes importing at once") {
  test::TempDir tmp;
  make_rootfs(tmp / "r1", "one\n");
  make_rootfs(tmp / "r2", "two\n");
  fs::ImageStore store(tmp / "images");
  pid_t kids[2];
  for (int k = 0; k < 2; ++k) {
    kids[k] = ::fork();
    REQUIRE(kids[k] >= 0);
    if (kids[k] == 0) {  // child: no doctest assertions, only an exit code
      stdfs::path src = tmp / (k == 0 ? "r1" : "r2");
      for (int i = 0; i < 5; ++i) {
        // Built by appending: g++ 12 warns falsely (-Wrestrict) on "literal" + std::string.
        std::string ref = "p";
        ref.append(std::to_string(k)).append(":").append(std::to_string(i % 2));
        if (auto r = store.import(ref, src); !r) {
          std::fprintf(stderr, "child: %s\n", r.error().message.c_str());
          _exit(1);
        }
      }
      _exit(0);
    }
  }
  for (pid_t kid : kids) {
    int status = 0;
    REQUIRE(::waitpid(kid, &status, 0) == kid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto all = store.list();
  REQUIRE(all);
  CHECK(all->size() == 4);
  CHECK(count_entries(store.root() / "layers") == 2);
  CHECK(count_entries(store.root() / "blobs" / "sha256") == 6);
}

TEST_CASE("image store get of an unknown image says how to import it") {
  test::TempDir tmp;
  fs::ImageStore store(tmp / "images");
  auto r = store.get("busybox");
  REQUIRE(!r);
  CHECK(r.error().message ==
        "image \"busybox:latest\" not found (pull it with: stack image pull busybox:latest, or "
        "import it with: stack image import busybox:latest PATH)");
  CHECK(store.list()->empty());
  CHECK(!store.get("Bad Name"));
}

TEST_CASE("image store keeps owners and device nodes of a directory (root only)") {
  if (::geteuid() != 0) {
    test::report_skip("needs root for chown and mknod");
    return;
  }
  test::TempDir tmp;
  test::write_text(tmp / "rootfs" / "owned", "x");
  REQUIRE(::chown((tmp / "rootfs" / "owned").c_str(), 1234, 5678) == 0);
  stdfs::create_directories(tmp / "rootfs" / "dev");
  REQUIRE(::mknod((tmp / "rootfs" / "dev" / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
  fs::ImageStore store(tmp / "images");
  auto img = store.import("owned", tmp / "rootfs");
  REQUIRE_MESSAGE(img, (img ? "" : img.error().message));
  struct stat st {};
  REQUIRE(::stat((img->layers[0] / "owned").c_str(), &st) == 0);
  CHECK(st.st_uid == 1234);
  CHECK(st.st_gid == 5678);
  REQUIRE(::lstat((img->layers[0] / "dev" / "null").c_str(), &st) == 0);
  CHECK(S_ISCHR(st.st_mode));
  CHECK(st.st_rdev == makedev(1, 3));
}

TEST_CASE("image reference normalization follows the distribution grammar") {
  struct Ok {
    const char* in;
    const char* out;
  };
  // Docker's rule: docker.io and library/ for short names, latest for no tag; a digest wins
  // over a tag (the image is pulled and named by it).
  const Ok ok[] = {
      {"busybox", "docker.io/library/busybox:latest"},
      {"busybox:1.36", "docker.io/library/busybox:1.36"},
      {"library/busybox", "docker.io/library/busybox:latest"},
      {"docker.io/busybox", "docker.io/library/busybox:latest"},
      {"index.docker.io/library/busybox:1", "docker.io/library/busybox:1"},
      {"bitnami/redis:7", "docker.io/bitnami/redis:7"},
      {"ghcr.io/org/app:1", "ghcr.io/org/app:1"},
      {"127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest"},
      {"127.0.0.1:5000/a/b:v2", "127.0.0.1:5000/a/b:v2"},
      {"localhost/app", "localhost/app:latest"},
      {"localhost:5000/app", "localhost:5000/app:latest"},
      {"registry.example.com/team/my_app-x.y:1.0-rc_1",
       "registry.example.com/team/my_app-x.y:1.0-rc_1"},
      {"a__b/c---d", "docker.io/a__b/c---d:latest"},
      {"[::1]:5000/app", "[::1]:5000/app:latest"},
      {"x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
       "docker.io/library/"
       "x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
      {"x:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
       "docker.io/library/"
       "x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
  };
  for (const auto& c : ok) {
    INFO(c.in);
    auto r = fs::normalize_reference(c.in);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK(*r == c.out);
  }
  struct Bad {
    const char* in;
    const char* why;
  };
  const Bad bad[] = {
      {"", "empty"},
      {"Busybox", "lowercase"},
      {"library/Busybox", "lowercase"},
      {"busy box", "invalid"},
      {"busybox:", "invalid tag"},
      {"busybox:-x", "invalid tag"},
      {"a//b", "empty path component"},
      {"/busybox", "empty path component"},
      {"busybox/", "empty path component"},
      {"a-/b", "invalid"},
      {"_a", "invalid"},
      {"a..b", "invalid"},
      {"reg:port/a", "invalid registry port"},
      {"x@sha256:abc", "invalid"},
      {"x@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "lower-case"},
      {"x@", "invalid digest"},
  };
  for (const auto& c : bad) {
    INFO(c.in);
    auto r = fs::normalize_reference(c.in);
    REQUIRE(!r);
    CHECK(r.error().message.starts_with("invalid image reference \"" + std::string(c.in) + "\""));
    CHECK(r.error().message.find(c.why) != std::string::npos);
  }
  CHECK(!fs::normalize_reference(std::string(300, 'a')));
  CHECK(!fs::normalize_reference("a:" + std::string(129, 't')));

  // As `docker images` shows them.
  CHECK(fs::familiar_reference("docker.io/library/busybox:latest") == "busybox:latest");
  CHECK(fs::familiar_reference("docker.io/bitnami/redis:7") == "bitnami/redis:7");
  CHECK(fs::familiar_reference("ghcr.io/org/app:1") == "ghcr.io/org/app:1");
  auto r = fs::parse_reference("127.0.0.1:5000/team/app:2");
  REQUIRE(r);
  CHECK(r->domain == "127.0.0.1:5000");
  CHECK(r->path == "team/app");
  CHECK(r->tag == "2");
}

// A packed layer ends with the gzip trailer: no zero padding after it, which Go's gzip reader
// (docker, podman, skopeo) takes for a broken second member and refuses.
TEST_CASE("image store packs a directory into a gzip stream with nothing after it") {
  test::TempDir tmp;
  make_rootfs(tmp / "rootfs", "hello\n");
  fs::ImageStore store(tmp / "images");
  auto img = store.import("packed", tmp / "rootfs");
  REQUIRE(img);
  std::string hex = manifest_of(store, *img)["layers"][0]["digest"].get<std::string>().substr(7);
  std::string blob = slurp(store.root() / "blobs" / "sha256" / hex);
  REQUIRE(blob.size() > 18);
  // RFC 1952: the last four bytes are the uncompressed size (mod 2^32), here a tar of some KiB.
  uint32_t isize = 0;
  for (int i = 0; i < 4; i++)
    isize |= static_cast<uint32_t>(static_cast<unsigned char>(blob[blob.size() - 4 + i]))
             << (8 * i);
  CHECK(isize > 0);
  CHECK(isize % 512 == 0);
}
