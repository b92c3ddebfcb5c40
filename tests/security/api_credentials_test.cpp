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
