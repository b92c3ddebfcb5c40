// `stack cp` (issue 15): both directions through the daemon's API, binary-safe (a file of every
// byte value, bigger than one frame), directories and their contents (`dir/.`), tar streams
// on stdin and stdout (`-`), owners kept with -a and the container's user without, and clear
// errors. Root; each test has its own instance.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "e2e/stack_env.h"

using namespace stack::test;
namespace fs = std::filesystem;

namespace {

// 300 KiB: every byte value, many times, in an order that is not a repetition of one block.
std::string binary_blob() {
  std::string s;
  for (int i = 0; i < 300 * 1024; i++) s.push_back(static_cast<char>((i * 7 + i / 256) & 0xff));
  for (int i = 0; i < 256; i++) s.push_back(static_cast<char>(i));
  return s;
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void up_sleeper(StackEnv& env, const std::string& project) {
  env.uses(project);
  env.write("name: " + project + "\nservices:\n  app:\n    image: busybox\n"
            "    command: [sleep, '300']\n");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
}

}  // namespace

TEST_CASE("cp copies a binary file into a container and back byte for byte") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  up_sleeper(env, unique_project("cpbin"));
  auto blob = binary_blob();
  write_bytes(env.project_dir() / "blob.bin", blob);

  auto in = env.stack({"cp", "blob.bin", "app:/tmp/"});
  REQUIRE_MESSAGE(in.code == 0, in.err);
  auto size = env.stack({"exec", "-T", "app", "wc", "-c", "/tmp/blob.bin"});
  CHECK(size.out.find(std::to_string(blob.size())) != std::string::npos);
  auto cat = env.stack({"exec", "-T", "app", "cat", "/tmp/blob.bin"});
  CHECK(cat.out == blob);  // what the container reads is what was sent

  auto out = env.stack({"cp", "app:/tmp/blob.bin", "back.bin"});
  REQUIRE_MESSAGE(out.code == 0, out.err);
  CHECK(read_bytes(env.project_dir() / "back.bin") == blob);
}

TEST_CASE("cp copies directories, their contents with dir/., and tar streams with -") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  up_sleeper(env, unique_project("cpdir"));
  fs::create_directories(env.project_dir() / "site/css");
  write_text(env.project_dir() / "site/index.html", "<h1>hi</h1>");
  write_text(env.project_dir() / "site/css/a.css", "a{}");

  REQUIRE(env.stack({"cp", "site", "app:/srv"}).code == 0);  // /srv missing: becomes site
  CHECK(env.stack({"exec", "-T", "app", "cat", "/srv/css/a.css"}).out == "a{}");
  REQUIRE(env.stack({"cp", "site", "app:/srv"}).code == 0);  // /srv exists: site goes in it
  CHECK(env.stack({"exec", "-T", "app", "cat", "/srv/site/index.html"}).out == "<h1>hi</h1>");
  REQUIRE(env.stack({"cp", "site/.", "app:/www"}).code == 0);  // the contents
  CHECK(env.stack({"exec", "-T", "app", "cat", "/www/index.html"}).out == "<h1>hi</h1>");

  auto back = env.stack({"cp", "app:/srv/css", "got"});
  REQUIRE_MESSAGE(back.code == 0, back.err);
  CHECK(read_text(env.project_dir() / "got/a.css") == "a{}");

  // A tar to stdout, as docker cp writes it: tar(1) reads it.
  auto tar_out = env.stack({"cp", "app:/www", "-"});
  REQUIRE_MESSAGE(tar_out.code == 0, tar_out.err);
  auto listed = run({"/bin/tar", "-tf", "-"}, {}, tar_out.out);
  CHECK_MESSAGE(listed.out.find("www/css/a.css") != std::string::npos, (listed.out + listed.err));
  // A tar from stdin, as tar(1) writes it, unpacked into the directory named.
  auto made = run({"/bin/tar", "-cf", "-", "-C", (env.project_dir() / "site").string(), "."});
  REQUIRE(made.code == 0);
  auto tar_in = run({std::string(STACK_BUILD_DIR) + "/stack", "--root", env.root().string(),
                     "--run-root", env.run_root().string(), "-f",
                     (env.project_dir() / "stack.yaml").string(), "cp", "-", "app:/fromtar"},
                    {}, made.out);
  REQUIRE_MESSAGE(tar_in.code == 0, tar_in.err);
  CHECK(env.stack({"exec", "-T", "app", "cat", "/fromtar/css/a.css"}).out == "a{}");
}

TEST_CASE("cp -a keeps owners, plain cp gives files to the container's user") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  up_sleeper(env, unique_project("cpown"));
  auto f = env.project_dir() / "owned.txt";
  write_text(f, "x");
  REQUIRE(::chown(f.c_str(), 1234, 5678) == 0);
  ::chmod(f.c_str(), 0640);
  REQUIRE(env.stack({"cp", "-a", "owned.txt", "app:/tmp/kept.txt"}).code == 0);
  REQUIRE(env.stack({"cp", "owned.txt", "app:/tmp/given.txt"}).code == 0);
  CHECK(env.stack({"exec", "-T", "app", "stat", "-c", "%u:%g %a", "/tmp/kept.txt"}).out ==
        "1234:5678 640\n");
  CHECK(env.stack({"exec", "-T", "app", "stat", "-c", "%u:%g %a", "/tmp/given.txt"}).out ==
        "0:0 640\n");
  // Out of the container with -a (as root here): the container's owner comes along.
  REQUIRE(env.stack({"exec", "-T", "app", "chown", "42:43", "/tmp/given.txt"}).code == 0);
  REQUIRE(env.stack({"cp", "-a", "app:/tmp/given.txt", "out.txt"}).code == 0);
  struct stat st {};
  REQUIRE(::stat((env.project_dir() / "out.txt").c_str(), &st) == 0);
  CHECK(st.st_uid == 42);
  CHECK(st.st_gid == 43);
}

TEST_CASE("cp says what is wrong: a missing path, a missing service, a relative path") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  up_sleeper(env, unique_project("cperr"));
  auto missing = env.stack({"cp", "app:/no/such/file", "x"});
  CHECK(missing.code == 1);
  CHECK_MESSAGE(missing.err.find("/no/such/file") != std::string::npos, missing.err);
  auto nodir = env.stack({"cp", "stack.yaml", "app:/no/such/dir/file"});
  CHECK(nodir.code == 1);
  CHECK_MESSAGE(nodir.err.find("no such directory: /no/such/dir") != std::string::npos,
                nodir.err);
  auto service = env.stack({"cp", "stack.yaml", "nosuch:/tmp"});
  CHECK(service.code == 1);
  CHECK_MESSAGE(service.err.find("nosuch") != std::string::npos, service.err);
  auto relative = env.stack({"cp", "stack.yaml", "app:tmp"});
  CHECK(relative.code == 2);
  CHECK_MESSAGE(relative.err.find("absolute") != std::string::npos, relative.err);
  auto hostmissing = env.stack({"cp", "nothere.txt", "app:/tmp"});
  CHECK(hostmissing.code == 1);
  CHECK_MESSAGE(hostmissing.err.find("nothere.txt") != std::string::npos, hostmissing.err);
}
