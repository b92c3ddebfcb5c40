// `stack push` end to end against a registry on loopback (Debian's docker-registry): a
// service's image uploaded, removed here and pulled back by digest (the same digest, the same
// content), a second push that uploads no layer, -q, --include-deps and --ignore-push-failures.
// Root; traffic stays on 127.0.0.1.
#include <doctest/doctest.h>

#include <filesystem>

#include "e2e/stack_env.h"
#include "integration/registry_fixture.h"

using namespace stack::test;

namespace {

nlohmann::json inspect(StackEnv& env, const std::string& ref) {
  auto r = env.stack({"image", "inspect", ref});
  INFO(r.err);
  REQUIRE(r.code == 0);
  return nlohmann::json::parse(r.out)[0];
}

}  // namespace

TEST_CASE("push uploads a service's image, pulled back by digest it is the same image") {
  STACK_REQUIRE_ROOT();
  if (!registry_tools_present()) {
    report_skip("needs docker-registry, skopeo and umoci (install-deps.sh)");
    return;
  }
  StackEnv env;
  TempDir tmp("stack-e2e-push");
  Registry reg;
  // A layer of its own (BusyBox and one file no other image has): its blob goes away with it.
  REQUIRE(run({"/bin/cp", "-a", busybox_rootfs().string(), (tmp / "root").string()}).code == 0);
  const std::string marker = "pushed " + std::to_string(::getpid()) + "\n";
  write_text(tmp / "root/marker", marker);
  const std::string ref = reg.host() + "/t/busybox:x";
  const std::string web = reg.host() + "/t/web:1";
  REQUIRE(env.stack({"image", "import", ref, (tmp / "root").string()}).code == 0);
  REQUIRE(env.stack({"image", "tag", ref, web}).code == 0);
  const std::string digest = inspect(env, ref)["digest"];

  auto p = unique_project("push");
  env.uses(p);
  env.write("name: " + p + "\nservices:\n  app:\n    image: " + ref +
            "\n  web:\n    image: " + web + "\n    depends_on: [app]\n"
            "  absent:\n    image: " + reg.host() + "/t/absent:1\n");

  // Only the service named: its blobs and its manifest, by tag.
  auto pushed = env.stack({"push", "app"});
  REQUIRE_MESSAGE(pushed.code == 0, pushed.err);
  CHECK(pushed.err.find("Pushed") != std::string::npos);
  CHECK(pushed.err.find("\033[") == std::string::npos);  // a pipe: plain lines
  CHECK(reg.count("\"PUT /v2/t/busybox/manifests/x ") == 1);
  CHECK(reg.count("\"PUT /v2/t/web/") == 0);
  int uploads = reg.count("\"PUT /v2/t/busybox/blobs/uploads/");
  CHECK(uploads == 2);  // the layer and the config

  // Again: every layer is there already, nothing is uploaded.
  auto again = env.stack({"push", "app"});
  REQUIRE_MESSAGE(again.code == 0, again.err);
  CHECK(again.err.find("Layer already exists") != std::string::npos);
  CHECK(reg.count("\"PUT /v2/t/busybox/blobs/uploads/") == uploads);

  // -q: nothing said. --include-deps: what web depends on too (its layers are there).
  auto deps = env.stack({"push", "-q", "--include-deps", "web"});
  REQUIRE_MESSAGE(deps.code == 0, deps.err);
  CHECK(deps.err.empty());
  CHECK(reg.count("\"PUT /v2/t/web/manifests/1 ") == 1);
  CHECK(reg.count("\"PUT /v2/t/busybox/manifests/x ") == 3);

  // An image that is not here fails the push, unless told to go on.
  auto failed = env.stack({"push", "absent"});
  CHECK(failed.code == 1);
  CHECK(failed.err.find("absent") != std::string::npos);
  auto ignored = env.stack({"push", "--ignore-push-failures", "absent", "app"});
  CHECK_MESSAGE(ignored.code == 0, ignored.err);
  CHECK(ignored.err.find("1 image(s) could not be pushed") != std::string::npos);

  // Removed here (its layer with it), pulled back by digest: the same digest, the same file.
  REQUIRE(env.stack({"image", "rm", ref}).code == 0);
  REQUIRE(env.stack({"image", "rm", web}).code == 0);
  int blob_gets = reg.count("\"GET /v2/t/busybox/blobs/");
  const std::string by_digest = reg.host() + "/t/busybox@" + digest;
  auto back = env.stack({"image", "pull", by_digest});
  REQUIRE_MESSAGE(back.code == 0, back.err);
  CHECK(back.err.find("Pull complete") != std::string::npos);
  CHECK(reg.count("\"GET /v2/t/busybox/blobs/") > blob_gets);
  CHECK(inspect(env, by_digest)["digest"] == digest);
  auto pulled = env.stack({"pull", "app"});
  REQUIRE_MESSAGE(pulled.code == 0, pulled.err);
  CHECK(inspect(env, ref)["digest"] == digest);
  auto cat = env.stack({"run", "--rm", "-T", "--no-deps", "app", "cat", "/marker"});
  CHECK_MESSAGE(cat.code == 0, cat.err);
  CHECK(cat.out == marker);
  CHECK(env.stack({"down"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
