// `build:` as the loader types it: the short and long forms, the context resolved against the
// file's directory, the image name, and what check_supported refuses (with its reason) or
// accepts as a documented no-op.
#include <doctest/doctest.h>

#include "spec/loader.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::spec;

namespace {

struct Project {
  test::TempDir dir{"stack-build-spec"};
  LoadOptions opts;
  Project() { opts.working_dir = dir.path(); }
  // SUBDIR: the file is there, and loaded from there (its display name stays "stack.yaml").
  Result<Stack> load_yaml(const std::string& text, const std::string& subdir = "") {
    std::filesystem::path at = subdir.empty() ? dir.path() : dir / subdir;
    std::filesystem::create_directories(at);
    test::write_text(at / "stack.yaml", text);
    opts.working_dir = at;
    return load(opts);
  }
  std::string supported(const std::string& text) {
    auto r = load_yaml(text);
    if (!r) return "LOAD FAILED: " + r.error().message;
    auto c = check_supported(*r);
    return c ? std::string("SUPPORTED") : c.error().message;
  }
};

const Service& first(const Result<Stack>& r) {
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  REQUIRE(!r->services.empty());
  return r->services[0];
}

}  // namespace

TEST_CASE("build short form: the context is the directory, resolved against the file's") {
  Project p;
  auto r = p.load_yaml("name: demo\nservices:\n  web:\n    build: ./app\n", "sub");
  const Service& s = first(r);
  REQUIRE(s.build);
  CHECK(s.build->context == (p.dir / "sub" / "app").string());
  CHECK(s.build->dockerfile == "Dockerfile");
  CHECK(s.build->pos.str() == "stack.yaml:4:12");
  // No image: named after the project and the service, as compose names it.
  CHECK(s.image == "demo-web:latest");
  CHECK(s.image_pos.line == 4);
  CHECK(p.supported("name: demo\nservices:\n  web:\n    build: ./app\n") == "SUPPORTED");
  // Loaded with -f from another directory: still the file's directory.
  p.opts.files = {p.dir / "sub" / "stack.yaml"};
  p.opts.working_dir = p.dir.path();
  auto from_parent = load(p.opts);
  CHECK(first(from_parent).build->context == (p.dir / "sub" / "app").string());
}

TEST_CASE("build long form: every key typed") {
  Project p;
  auto r = p.load_yaml(
      "name: demo\nservices:\n  web:\n    image: registry.local/web:2\n    build:\n"
      "      context: ctx\n      dockerfile: Dockerfile.dev\n      target: final\n"
      "      args: {A: one, B: 2}\n      labels: {team: core}\n      network: none\n"
      "      no_cache: true\n      pull: true\n      tags: [web-extra, 'other:v1']\n"
      "      shm_size: 64m\n      extra_hosts: ['db=10.0.0.5']\n");
  const Service& s = first(r);
  REQUIRE(s.build);
  const Build& b = *s.build;
  CHECK(b.context == (p.dir / "ctx").string());
  CHECK(b.dockerfile == "Dockerfile.dev");
  CHECK(b.target == "final");
  CHECK(b.args == std::map<std::string, std::string>{{"A", "one"}, {"B", "2"}});
  CHECK(b.labels == std::map<std::string, std::string>{{"team", "core"}});
  CHECK(b.network == "none");
  CHECK(b.no_cache);
  CHECK(b.pull);
  CHECK(b.tags == std::vector<std::string>{"web-extra:latest", "other:v1"});
  CHECK(b.shm_size == 64 * 1024 * 1024);
  REQUIRE(b.extra_hosts.size() == 1);
  CHECK(b.extra_hosts[0].host == "db");
  CHECK(b.extra_hosts[0].ip == "10.0.0.5");
  CHECK(b.extra.empty());
  // image: given, the result is tagged with it.
  CHECK(s.image == "registry.local/web:2");
}

TEST_CASE("build args as a list, a bare name taken from the environment or left out") {
  Project p;
  p.opts.environment = {{"FROM_ENV", "yes"}};
  auto r = p.load_yaml(
      "services:\n  web:\n    build:\n      context: .\n      args: [X=1, FROM_ENV, UNSET_ONE]\n");
  const Service& s = first(r);
  REQUIRE(s.build);
  CHECK(s.build->args ==
        std::map<std::string, std::string>{{"X", "1"}, {"FROM_ENV", "yes"}});
}

TEST_CASE("dockerfile_inline, and it excludes dockerfile") {
  Project p;
  auto r = p.load_yaml(
      "services:\n  web:\n    build:\n      context: .\n      dockerfile_inline: |\n"
      "        FROM busybox:latest\n        CMD [\"true\"]\n");
  const Service& s = first(r);
  REQUIRE(s.build);
  CHECK(s.build->dockerfile_inline == "FROM busybox:latest\nCMD [\"true\"]\n");
  auto both = p.load_yaml(
      "services:\n  web:\n    build:\n      dockerfile: D\n      dockerfile_inline: FROM x\n");
  REQUIRE(!both);
  CHECK(both.error().message ==
        "stack.yaml:5:26: services.web.build: dockerfile and dockerfile_inline exclude each other");
}

TEST_CASE("pull_policy build needs a build section") {
  Project p;
  CHECK(p.supported("services:\n  web:\n    build: .\n    pull_policy: build\n") == "SUPPORTED");
  auto r = p.load_yaml("services:\n  web:\n    image: x\n    pull_policy: build\n");
  REQUIRE(!r);
  CHECK(r.error().message ==
        "stack.yaml:4:5: services.web.pull_policy: build needs a build section");
}

TEST_CASE("build keys stack cannot honour are refused with their reason") {
  Project p;
  CHECK(p.supported("services:\n  web:\n    build: {context: ., ssh: [default]}\n") ==
        "stack.yaml:3:25: refused: services.web.build.ssh (no SSH agent is forwarded into RUN)");
  CHECK(p.supported("services:\n  web:\n    build: {context: ., additional_contexts: {a: ./a}}\n") ==
        "stack.yaml:3:25: refused: services.web.build.additional_contexts (a build has one "
        "context, its directory)");
  CHECK(p.supported("services:\n  web:\n    build: {context: ., privileged: true}\n") ==
        "stack.yaml:3:25: refused: services.web.build.privileged (RUN gets no extra privileges)");
  CHECK(p.supported("services:\n  web:\n    build: https://example.invalid/repo.git\n") ==
        "stack.yaml:3:12: not supported yet: services.web.build.context "
        "https://example.invalid/repo.git (a remote context: clone it and give the directory)");
  CHECK(p.supported("services:\n  web:\n    build: {context: ., platforms: [linux/arm64]}\n") ==
        "stack.yaml:3:12: not supported yet: services.web.build.platforms linux/arm64 (only the "
        "host's, linux/amd64)");
  CHECK(p.supported("services:\n  web:\n    build: {context: ., platforms: [linux/amd64]}\n") ==
        "SUPPORTED");
}

TEST_CASE("cache_from and cache_to load as no-ops, with a warning") {
  Project p;
  auto r = p.load_yaml(
      "services:\n  web:\n    build: {context: ., cache_from: [a], cache_to: [b]}\n");
  REQUIRE(r);
  CHECK(check_supported(*r));
  REQUIRE(r->warnings.size() == 2);
  CHECK(r->warnings[0].find("services.web.build.cache_from is ignored") != std::string::npos);
}
