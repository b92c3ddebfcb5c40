// A pull or push request that names a file for the daemon (root) to read its registry
// credentials from: anyone in the socket's group could name a root-only file (/etc/shadow, a
// user's ~/.docker/config.json) and read parts of it back in the error, or have its credentials
// sent to a registry. The API refuses the field and never opens the path; the CLI reads its own
// user's auth file and sends only the credential of the registry concerned. Root.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "api/client.h"
#include "common/base64.h"
#include "common/scope_guard.h"
#include "integration/registry_fixture.h"
#include "e2e/stack_env.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

using namespace stack::test;
namespace fs = std::filesystem;

TEST_CASE("a pull or push naming a root-only auth file is refused and the daemon never opens it") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  TempDir tmp("stack-sec-authfile");
  REQUIRE(::chmod(tmp.path().c_str(), 0700) == 0);
  // A root-only file whose content the old daemon quoted back: an auths key of the registry
  // asked for, with an auth that is not base64.
  const std::string secret = "stk-secret-5e1f";
  const fs::path file = tmp / "config.json";
  write_text(file,
             "{\"auths\": {\"127.0.0.1:9/" + secret + "\": {\"auth\": \"" + secret + "!\"}}}");
  REQUIRE(::chmod(file.c_str(), 0600) == 0);
  // A FIFO: whoever opens it for reading is seen by a writer's non-blocking open.
  const fs::path fifo = tmp / "auth.fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  bool fifo_opened = false;
  auto reader_present = [&] {
    int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return false;  // ENXIO: nobody has it open for reading
    ::close(fd);               // the reader sees end of file and goes on
    fifo_opened = true;
    return true;
  };
  const std::string ref = "127.0.0.1:9/stk-probe:1";
  REQUIRE(env.stack({"image", "tag", "busybox", ref}).code == 0);  // a push would reach the file

  stack::api::Client client(env.run_root() / "stack.sock");
  for (const std::string route : {"/v1/images/pull", "/v1/images/push"}) {
    for (const fs::path& named : {file, fifo, fs::path("/etc/shadow")}) {
      CAPTURE(route);
      CAPTURE(named);
      std::string reply;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      auto status = client.stream(
          "POST", route, nlohmann::json{{"reference", ref}, {"auth_file", named}}.dump(),
          [&](std::string_view line) {
            reply.append(line).append("\n");
            return true;
          },
          [&] { return reader_present() || std::chrono::steady_clock::now() > deadline; });
      REQUIRE(status);
      CHECK(*status == 400);
      CHECK(reply.find("auth_file is not accepted") != std::string::npos);
      CHECK(reply.find(secret) == std::string::npos);
      CHECK(reply.find("root:") == std::string::npos);
      CHECK_FALSE(reader_present());
      CHECK_FALSE(fifo_opened);
    }
  }
  CHECK(env.stack({"image", "rm", ref}).code == 0);
}

// A pull through the API without credentials used to fall back to the daemon's own auth file:
// a member of the socket's group pulled a private image with root's login. A client's pull or
// push now carries its own credential or goes anonymous (docker's X-Registry-Auth).
TEST_CASE("a client's pull without credentials does not borrow the daemon's own login") {
  STACK_REQUIRE_ROOT();
  if (!registry_tools_present()) {
    report_skip("needs docker-registry, skopeo and umoci (install-deps.sh)");
    return;
  }
  TempDir tmp("stack-sec-borrow");
  Registry reg;
  Proxy gated(reg.port());  // the private registry: /v2/ needs a token, for owner:s3cret
  gated.gate("owner", "s3cret");
  // The daemon's own login for that registry, as root's `stack login` would have written it.
  write_text(tmp / "config.json", "{\"auths\": {\"" + gated.host() + "\": {\"auth\": \"" +
                                      stack::base64_encode("owner:s3cret") + "\"}}}");
  ::setenv("REGISTRY_AUTH_FILE", (tmp / "config.json").c_str(), 1);
  stack::ScopeGuard unset([] { ::unsetenv("REGISTRY_AUTH_FILE"); });
  StackEnv env;  // its daemon starts now, with that file in its environment
  ::unsetenv("REGISTRY_AUTH_FILE");
  // The private image: pushed to the registry directly, pulled through the gate.
  REQUIRE(env.stack({"image", "tag", "busybox", reg.host() + "/private/app:1"}).code == 0);
  auto pushed = env.stack({"image", "push", reg.host() + "/private/app:1"});
  REQUIRE_MESSAGE(pushed.code == 0, pushed.err);
  const std::string ref = gated.host() + "/private/app:1";

  stack::api::Client client(env.run_root() / "stack.sock");
  auto pull = [&](const nlohmann::json& body) {
    std::string last;
    auto status = client.stream("POST", "/v1/images/pull", body.dump(), [&](std::string_view l) {
      last = std::string(l);
      return true;
    });
    REQUIRE(status);
    return nlohmann::json::parse(last, nullptr, false);
  };
  auto anonymous = pull({{"reference", ref}});
  CAPTURE(anonymous.dump());
  CHECK(anonymous.contains("error"));
  CHECK_FALSE(anonymous.contains("pulled"));
  CHECK(env.stack({"image", "inspect", ref}).code != 0);
  CHECK(gated.count("Authorization: Basic") == 0);  // root's password was not sent either

  // `up` pulls as the client too: a user without a login for the registry gets nothing, its
  // owner (the CLI reads the owner's auth file and sends it) gets the image.
  auto project = unique_project("borrow");
  env.uses(project);
  env.write("name: " + project + "\nservices:\n  app:\n    image: " + ref +
            "\n    command: [sleep, '60']\n");
  auto denied = env.stack({"up", "-d"});
  CHECK(denied.code != 0);
  CHECK(env.stack({"image", "inspect", ref}).code != 0);
  CHECK(gated.count("Authorization: Basic") == 0);
  auto allowed = env.stack({"up", "-d"}, {"REGISTRY_AUTH_FILE=" + (tmp / "config.json").string()});
  CHECK_MESSAGE(allowed.code == 0, allowed.err);
  CHECK(env.stack({"image", "inspect", ref}).code == 0);
  REQUIRE(env.stack({"down"}).code == 0);
  REQUIRE(env.stack({"image", "rm", ref}).code == 0);

  // The owner's own credential, carried by the request, is what opens it.
  auto owned = pull({{"reference", ref}, {"credentials", {{"username", "owner"}, {"password", "s3cret"}}}});
  CAPTURE(owned.dump());
  CHECK(owned.contains("pulled"));
}
