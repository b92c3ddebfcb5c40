// Compose verbs, part 5 (issue 15's last remainder): `cp` from a container that does not run
// (exited, or created and never started): its own filesystem (upper over the image's layers,
// deletions included) mounted read-only for the copy, owners kept, links resolved inside its
// root, never on the host; its volumes refused by name; nothing left mounted. Root.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "e2e/stack_env.h"

using namespace stack::test;
namespace fs = std::filesystem;

namespace {

// Lines of /proc/self/mountinfo naming NEEDLE.
int mounts_naming(const std::string& needle) {
  int n = 0;
  std::string text = read_text("/proc/self/mountinfo");
  for (size_t p = 0; (p = text.find(needle, p)) != std::string::npos; p += needle.size()) n++;
  return n;
}

}  // namespace

TEST_CASE("cp copies out of an exited or created container, read-only and inside its root") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("cpstop");
  env.uses(p);
  // A host file the container's link names by its host path: never what cp reaches.
  auto host = env.project_dir() / "host-only.txt";
  write_text(host, "host-secret\n");
  env.write("name: " + p + "\nservices:\n  app:\n    image: busybox\n"
            "    volumes: [data:/data]\n"
            "    command: [sh, -c, 'mkdir /out && echo made > /out/file && "
            "chown 1234:5678 /out/file && rm /etc/group && echo v > /data/v && "
            "ln -s ../../../../../../.." + host.string() + " /out/escape']\n"
            "  never:\n    image: busybox\n    command: [sleep, '300']\n"
            "volumes:\n  data: {}\n");
  auto up = env.stack({"up", "-d", "app"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto exited = env.wait_for(p, p + "-app-1", [](const nlohmann::json& c) {
    return c.value("state", "") == "exited";
  });
  REQUIRE_MESSAGE(exited.value("state", "") == "exited", exited.dump());
  REQUIRE(exited["exit_code"] == 0);
  int mounts_before = mounts_naming(env.root().string());

  // What the container wrote, its owner kept (-a, as root here).
  auto out = env.stack({"cp", "-a", "app:/out", "got"});
  REQUIRE_MESSAGE(out.code == 0, out.err);
  CHECK(read_text(env.project_dir() / "got/file") == "made\n");
  struct stat st {};
  REQUIRE(::stat((env.project_dir() / "got/file").c_str(), &st) == 0);
  CHECK(st.st_uid == 1234);
  CHECK(st.st_gid == 5678);
  // The link comes as a link; -L follows it inside the container's root: not the host file.
  std::error_code ec;
  CHECK(fs::is_symlink(env.project_dir() / "got/escape", ec));
  auto followed = env.stack({"cp", "-L", "app:/out/escape", "followed"});
  CHECK(followed.code == 1);
  CHECK(!fs::exists(env.project_dir() / "followed"));
  // What it deleted is gone: the upper's whiteout hides the image's file.
  auto deleted = env.stack({"cp", "app:/etc/group", "group"});
  CHECK(deleted.code == 1);
  CHECK(!fs::exists(env.project_dir() / "group"));
  // The image's files are there too.
  REQUIRE(env.stack({"cp", "app:/etc/passwd", "passwd"}).code == 0);
  CHECK(read_text(env.project_dir() / "passwd").find("root:") != std::string::npos);
  // Its volume is not in its filesystem: refused, named.
  auto volume = env.stack({"cp", "app:/data/v", "v"});
  CHECK(volume.code == 1);
  CHECK_MESSAGE(volume.err.find("/data") != std::string::npos, volume.err);
  // Into it: refused with the reason, nothing written.
  auto in = env.stack({"cp", "stack.yaml", "app:/out/"});
  CHECK(in.code == 1);
  CHECK_MESSAGE(in.err.find("start it") != std::string::npos, in.err);
  // Nothing stays mounted on the host.
  CHECK(mounts_naming(env.root().string()) == mounts_before);

  // Created, never started: the image's filesystem.
  REQUIRE(env.stack({"create", "never"}).code == 0);
  auto fresh = env.stack({"cp", "never:/etc/group", "fresh-group"});
  CHECK_MESSAGE(fresh.code == 0, fresh.err);
  CHECK(read_text(env.project_dir() / "fresh-group").find("root:") != std::string::npos);
  CHECK(mounts_naming(env.root().string()) == mounts_before);
  REQUIRE(env.stack({"down", "-v"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
