// Paths an API client names must never be opened by the daemon on the host: `image import`,
// `load` and `save` used to take {"path": ...} that the daemon (root) read or wrote, so any
// member of the socket's group (or a container given the socket) could read a root-only file
// as an "image" and create or overwrite any file (a save to /etc/cron.d/x). The CLI now streams
// the user's file with the user's own rights (docker's way): these probes speak the API as an
// attacker would, then check the CLI's round trips still work.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "api/client.h"
#include "e2e/stack_env.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

using namespace stack::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// POST BODY to TARGET: the reply's status and its last JSON line (streamed replies end with
// their result).
std::pair<int, json> post(StackEnv& env, const std::string& target, const json& body) {
  stack::api::Client client(env.run_root() / "stack.sock");
  auto r = client.call("POST", target, body.dump());
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  json last;
  std::string_view text = r->body;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    auto line = text.substr(0, nl);
    auto j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) last = j;
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return {r->status, last};
}

bool image_exists(StackEnv& env, const std::string& ref) {
  auto r = env.stack({"image", "inspect", ref});
  return r.code == 0;
}

std::string error_of(const std::pair<int, json>& reply) {
  return reply.second.is_object() && reply.second.contains("error")
             ? reply.second["error"].get<std::string>()
             : std::string();
}

}  // namespace

TEST_CASE("the daemon reads no host file an image import or load request names") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  // A root-only file (in a root-only directory) that is a valid image tarball: what a group
  // member cannot read itself.
  TempDir secret_dir("stack-sec-hostpath");
  ::chmod(secret_dir.path().c_str(), 0700);
  fs::create_directories(secret_dir / "rootfs");
  write_text(secret_dir / "rootfs/secret", "root-only-content-4711\n");
  auto mk = run({"/bin/tar", "-C", (secret_dir / "rootfs").string(), "-cf",
                 (secret_dir / "secret.tar").string(), "."});
  REQUIRE_MESSAGE(mk.code == 0, mk.err);
  ::chmod((secret_dir / "secret.tar").c_str(), 0600);
  const std::string secret = (secret_dir / "secret.tar").string();

  for (const json& body :
       {json{{"reference", "stolen:1"}, {"path", secret}},
        json{{"reference", "stolen:1"}, {"path", secret}, {"progress", true}}}) {
    auto reply = post(env, "/v1/images/import", body);
    CAPTURE(reply.second.dump());
    CHECK(!error_of(reply).empty());
    CHECK(!image_exists(env, "stolen:1"));
  }
  auto loaded = post(env, "/v1/images/load", {{"path", secret}});
  CAPTURE(loaded.second.dump());
  CHECK(!error_of(loaded).empty());

  // No oracle either: /etc/shadow and a path that does not exist get the same answer.
  auto shadow = post(env, "/v1/images/import", {{"reference", "x:1"}, {"path", "/etc/shadow"}});
  auto missing = post(env, "/v1/images/import",
                      {{"reference", "x:1"}, {"path", "/etc/stack-no-such-file-4711"}});
  std::string a = error_of(shadow), b = error_of(missing);
  CHECK(!a.empty());
  CHECK(a.find("/etc/shadow") == std::string::npos);
  CHECK(b.find("stack-no-such-file") == std::string::npos);
  CHECK(a == b);
  CHECK(shadow.first == missing.first);
  CHECK(a.find("root:") == std::string::npos);
}

TEST_CASE("the daemon writes no host file an image save request names") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  TempDir target_dir("stack-sec-hostpath");
  const fs::path planted = target_dir / "cron.d-x";
  auto reply =
      post(env, "/v1/images/save", {{"references", {"busybox:latest"}}, {"path", planted}});
  CAPTURE(reply.second.dump());
  CHECK(!error_of(reply).empty());
  CHECK(!fs::exists(planted));
  // Nor a temporary file beside it.
  CHECK(fs::is_empty(target_dir.path()));
  // An existing file is not overwritten either.
  write_text(planted, "keep\n");
  (void)post(env, "/v1/images/save", {{"references", {"busybox:latest"}}, {"path", planted}});
  CHECK(read_text(planted) == "keep\n");
}

TEST_CASE("image save load and import stream through the CLI from files and pipes") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  TempDir tmp("stack-sec-stream");
  // save -o FILE, then load -i FILE under another name's absence.
  REQUIRE(env.stack({"image", "tag", "busybox:latest", "streamed:file"}).code == 0);
  auto saved = env.stack({"image", "save", "-o", (tmp / "out.tar").string(), "streamed:file"});
  REQUIRE_MESSAGE(saved.code == 0, saved.err);
  REQUIRE(fs::file_size(tmp / "out.tar") > 1024);
  REQUIRE(env.stack({"image", "rm", "streamed:file"}).code == 0);
  auto loaded = env.stack({"image", "load", "-i", (tmp / "out.tar").string()});
  CHECK_MESSAGE(loaded.code == 0, loaded.err);
  CHECK(loaded.out.find("Loaded image: streamed:file") != std::string::npos);

  // save -o - | load -i -: through a pipe, as docker save | docker load.
  REQUIRE(env.stack({"image", "tag", "busybox:latest", "streamed:pipe"}).code == 0);
  const std::string stack_bin = std::string(STACK_BUILD_DIR) + "/stack";
  const std::string flags = "--root '" + env.root().string() + "' --run-root '" +
                            env.run_root().string() + "'";
  auto piped =
      run({"/bin/sh", "-c",
           "set -e; cd '" + env.project_dir().string() + "'; '" + stack_bin + "' " + flags + " image save -o - streamed:pipe > '" +
               (tmp / "pipe.tar").string() + "'; '" + stack_bin + "' " + flags +
               " image rm streamed:pipe >/dev/null; '" + stack_bin + "' " + flags +
               " image load -i - < '" + (tmp / "pipe.tar").string() + "'"});
  CHECK_MESSAGE(piped.code == 0, piped.err);
  CHECK(fs::file_size(tmp / "pipe.tar") > 1024);  // the tar came out of stdout
  CHECK_FALSE(fs::exists(env.project_dir() / "-"));  // not into a file named "-"
  CHECK(piped.out.find("Loaded image: streamed:pipe") != std::string::npos);
  CHECK(image_exists(env, "streamed:pipe"));

  // import NAME - from stdin (a rootfs tar), and import NAME DIR (packed by the CLI).
  auto tar = run({"/bin/tar", "-C", busybox_rootfs().string(), "-cf", (tmp / "root.tar").string(), "."});
  REQUIRE_MESSAGE(tar.code == 0, tar.err);
  auto from_stdin = run({"/bin/sh", "-c",
                         "cd '" + env.project_dir().string() + "' && '" + stack_bin + "' " +
                             flags + " image import stdin:1 - < '" +
                             (tmp / "root.tar").string() + "'"});
  CHECK_MESSAGE(from_stdin.code == 0, from_stdin.err);
  CHECK(image_exists(env, "stdin:1"));
  CHECK_FALSE(fs::exists(env.project_dir() / "-"));
  auto from_dir = env.stack({"image", "import", "dir:1", busybox_rootfs().string()});
  CHECK_MESSAGE(from_dir.code == 0, from_dir.err);
  CHECK(image_exists(env, "dir:1"));
}
