// Real builds with stack's own engine (src/build): Dockerfiles over busybox:latest imported into
// a store of the test's own, RUN steps as containers, the layers and config of the result read
// back. Root (containers, overlay mounts); each test's store, scratch space and cgroups are its
// own and removed, pass or fail.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "build/bridge_network.h"
#include "build/build.h"
#include "common/files.h"
#include "engine/container.h"
#include "fs/image_build.h"
#include "fs/image_store.h"
#include "support/fixtures.h"
#include "support/net_host.h"
#include "support/temp_dir.h"

using namespace stack;
namespace stdfs = std::filesystem;

namespace {

struct BuildFixture {
  test::TempDir dir{"stack-build-test"};
  std::unique_ptr<engine::CgroupDriver> cgroups = engine::detect_cgroup_driver().value();
  engine::Engine eng{stdfs::path(STACK_BUILD_DIR) / "stack-init", *cgroups};
  fs::ImageStore store{dir / "images"};
  build::BuildHost host{store, eng, dir / "builds",
                        "stack/btest-" + std::to_string(::getpid()), {}, nullptr, nullptr};
  stdfs::path ctx = dir / "ctx";
  std::vector<build::BuildEvent> events;

  BuildFixture() {
    auto img = store.import("busybox:latest", test::busybox_rootfs());
    REQUIRE_MESSAGE(img, (img ? "" : img.error().message));
    stdfs::create_directories(ctx);
  }

  build::BuildRequest request(const std::string& dockerfile, const std::string& tag = "built:test") {
    test::write_text(ctx / "Dockerfile", dockerfile);
    build::BuildRequest r;
    r.context = ctx;
    r.tags = {tag};
    r.network = build::NetworkMode::kNone;
    r.name = "test";
    return r;
  }

  Result<build::BuildResult> run(const build::BuildRequest& r) {
    events.clear();
    return build::build(r, host, [&](const build::BuildEvent& e) { events.push_back(e); });
  }

  build::BuildResult ok(const build::BuildRequest& r) {
    auto res = run(r);
    REQUIRE_MESSAGE(res, (res ? "" : res.error().message));
    return *res;
  }

  std::vector<std::string> output() const {
    std::vector<std::string> out;
    for (const auto& e : events)
      if (e.kind == build::BuildEvent::Kind::kOutput) out.push_back(e.text);
    return out;
  }
  // Instructions of the steps that were cache hits.
  std::vector<std::string> cached() const {
    std::vector<std::string> out;
    for (const auto& e : events)
      if (e.kind == build::BuildEvent::Kind::kCached) out.push_back(e.instruction);
    return out;
  }

  // PATH in the image as its layers show it (topmost first; a whiteout hides it): nullopt when
  // absent.
  std::optional<stdfs::path> find(const fs::Image& img, const std::string& path) {
    for (auto it = img.layers.rbegin(); it != img.layers.rend(); ++it) {
      stdfs::path p = *it / path.substr(1);
      struct stat st {};
      if (::lstat(p.c_str(), &st) != 0) continue;
      if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) return std::nullopt;
      return p;
    }
    return std::nullopt;
  }
  std::string read(const fs::Image& img, const std::string& path) {
    auto p = find(img, path);
    REQUIRE_MESSAGE(p.has_value(), (path + " is not in the image"));
    return test::read_text(*p);
  }
};

}  // namespace

TEST_CASE("build: each instruction's effect is in the built image" * doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  BuildFixture f;
  test::write_text(f.ctx / "app/hello.txt", "hello\n");
  test::write_text(f.ctx / "app/sub/deep.txt", "deep\n");
  test::write_text(f.ctx / "tarsrc/inside.txt", "from the tar\n");
  REQUIRE(test::run({"/usr/bin/tar", "-czf", (f.ctx / "bundle.tar.gz").string(), "-C",
                     (f.ctx / "tarsrc").string(), "inside.txt"})
              .code == 0);
  auto r = f.request(
      "# syntax=docker/dockerfile:1\n"
      "ARG BASE=busybox\n"
      "FROM ${BASE}:latest\n"
      "ARG GREETING=hi\n"
      "ENV APP_HOME=/srv/app MODE=\"two words\"\n"
      "WORKDIR $APP_HOME\n"
      "COPY --chown=1000:1000 --chmod=0750 app/ ./\n"
      "ADD bundle.tar.gz /opt/\n"
      "RUN echo \"$GREETING from $MODE\" > greeting && echo built-in-run\n"
      "RUN rm /bin/ls\n"
      "RUN <<EOF\n"
      "echo heredoc-one > /h1\n"
      "echo heredoc-two >> /h1\n"
      "EOF\n"
      "RUN <<SCRIPT\n"
      "#!/bin/sh\n"
      "echo shebang-$((1 + 1)) > /h2\n"
      "SCRIPT\n"
      "COPY <<CONF /etc/app.conf\n"
      "home=${APP_HOME}\n"
      "CONF\n"
      "LABEL org.example.name=demo version=\"1.0\"\n"
      "EXPOSE 8080 53/udp\n"
      "VOLUME [\"/data\"]\n"
      "USER 1000:1000\n"
      "STOPSIGNAL SIGINT\n"
      "HEALTHCHECK --interval=5s --retries=3 CMD wget -q -O- http://localhost:8080/ || exit 1\n"
      "SHELL [\"/bin/sh\", \"-ec\"]\n"
      "ENTRYPOINT [\"/bin/sh\"]\n"
      "CMD echo from-cmd\n");
  r.args = {{"GREETING", "hello"}};
  r.labels = {{"com.example.built-by", "stack"}};
  auto res = f.ok(r);
  CHECK(res.cached == 0);
  auto img = f.store.get("built:test");
  REQUIRE(img);
  CHECK(img->id == res.image_id);
  const auto& c = img->config;
  CHECK(c.working_dir == "/srv/app");
  CHECK(std::count(c.env.begin(), c.env.end(), "MODE=two words") == 1);
  CHECK(std::count(c.env.begin(), c.env.end(), "APP_HOME=/srv/app") == 1);
  CHECK(std::count_if(c.env.begin(), c.env.end(),
                      [](const std::string& e) { return e.rfind("GREETING=", 0) == 0; }) == 0);
  CHECK(c.labels.at("org.example.name") == "demo");
  CHECK(c.labels.at("version") == "1.0");
  CHECK(c.labels.at("com.example.built-by") == "stack");
  CHECK(c.exposed_ports == std::vector<std::string>{"53/udp", "8080/tcp"});
  CHECK(c.volumes == std::vector<std::string>{"/data"});
  CHECK(c.user == "1000:1000");
  CHECK(c.stop_signal == "SIGINT");
  REQUIRE(c.healthcheck);
  CHECK(c.healthcheck->test ==
        std::vector<std::string>{"CMD-SHELL", "wget -q -O- http://localhost:8080/ || exit 1"});
  CHECK(c.healthcheck->interval_ns == 5'000'000'000);
  CHECK(c.healthcheck->retries == 3);
  CHECK(c.entrypoint == std::vector<std::string>{"/bin/sh"});
  CHECK(c.cmd == std::vector<std::string>{"/bin/sh", "-ec", "echo from-cmd"});

  CHECK(f.read(*img, "/srv/app/greeting") == "hello from two words\n");
  CHECK(f.read(*img, "/srv/app/hello.txt") == "hello\n");
  CHECK(f.read(*img, "/srv/app/sub/deep.txt") == "deep\n");
  struct stat st {};
  REQUIRE(::lstat(f.find(*img, "/srv/app/hello.txt")->c_str(), &st) == 0);
  CHECK(st.st_uid == 1000);
  CHECK(st.st_gid == 1000);
  CHECK((st.st_mode & 07777) == 0750);
  CHECK(f.read(*img, "/opt/inside.txt") == "from the tar\n");
  CHECK_FALSE(f.find(*img, "/opt/bundle.tar.gz"));
  CHECK(f.read(*img, "/h1") == "heredoc-one\nheredoc-two\n");
  CHECK(f.read(*img, "/h2") == "shebang-2\n");  // a heredoc with #! runs as a script file
  CHECK(f.read(*img, "/etc/app.conf") == "home=/srv/app\n");
  // A file a RUN deleted is absent from the image (a whiteout in its layer).
  CHECK_FALSE(f.find(*img, "/bin/ls"));
  CHECK(f.find(*img, "/bin/sh"));
  auto out = f.output();
  CHECK(std::count(out.begin(), out.end(), "built-in-run") == 1);
  bool noted = false;
  for (const auto& e : f.events)
    noted |= e.kind == build::BuildEvent::Kind::kNote && e.text.find("syntax=") != std::string::npos;
  CHECK(noted);
}

TEST_CASE("build: an unchanged rebuild is all cache hits and runs no RUN" * doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  BuildFixture f;
  test::write_text(f.ctx / "one.txt", "1\n");
  test::write_text(f.ctx / "two.txt", "2\n");
  std::string df =
      "FROM busybox:latest\n"
      "RUN echo first-run && date +%s%N > /stamp1\n"
      "COPY one.txt /one.txt\n"
      "RUN echo second-run && date +%s%N > /stamp2\n"
      "COPY two.txt /two.txt\n"
      "RUN echo third-run && cat /two.txt > /copy-of-two\n";
  auto first = f.ok(f.request(df));
  CHECK(f.output().size() == 3);
  auto second = f.ok(f.request(df));
  CHECK(f.output().empty());  // no RUN ran
  CHECK(second.cached == 5);
  CHECK(second.image_id == first.image_id);

  // One copied file changed: the steps before it are hits, it and everything after run again.
  test::write_text(f.ctx / "two.txt", "changed\n");
  auto third = f.ok(f.request(df));
  CHECK(f.cached() == std::vector<std::string>{"RUN echo first-run && date +%s%N > /stamp1",
                                               "COPY one.txt /one.txt",
                                               "RUN echo second-run && date +%s%N > /stamp2"});
  CHECK(f.output() == std::vector<std::string>{"third-run"});
  auto img = f.store.get(third.image_id);
  REQUIRE(img);
  CHECK(f.read(*img, "/copy-of-two") == "changed\n");

  // no_cache runs everything again.
  auto r = f.request(df);
  r.no_cache = true;
  auto fourth = f.ok(r);
  CHECK(fourth.cached == 0);
  CHECK(f.output().size() == 3);
}

TEST_CASE("build: the cache survives a new store object (a daemon restart) and garbage collection" * doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  BuildFixture f;
  std::string df = "FROM busybox:latest\nRUN echo ran > /ran\n";
  f.ok(f.request(df, "first:1"));
  // The image is removed and the store pruned: the cached layer stays for the next build.
  REQUIRE(f.store.remove("first:1", {}, false));
  REQUIRE(f.store.prune({}, false));
  fs::ImageStore again(f.dir / "images");
  build::BuildHost host2{again, f.eng, f.dir / "builds", f.host.cgroup_parent, {}, nullptr, nullptr};
  std::vector<std::string> out;
  auto res = build::build(f.request(df, "second:1"), host2, [&](const build::BuildEvent& e) {
    if (e.kind == build::BuildEvent::Kind::kOutput) out.push_back(e.text);
  });
  REQUIRE_MESSAGE(res, (res ? "" : res.error().message));
  CHECK(res->cached == 1);
  CHECK(out.empty());
  auto img = again.get("second:1");
  REQUIRE(img);
  CHECK(f.read(*img, "/ran") == "ran\n");

  // Once the cache is cleared, removing the image and pruning reclaims the layer.
  auto cleared = fs::clear_build_cache(again);
  REQUIRE(cleared);
  CHECK(*cleared == 1);
  auto layer = img->layers.back();
  REQUIRE(again.remove("second:1", {}, false));
  REQUIRE(again.prune({}, false));
  CHECK_FALSE(stdfs::exists(layer));
}

TEST_CASE("build: multi-stage with COPY --from, an unused failing stage and --target" * doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  BuildFixture f;
  std::string df =
      "FROM busybox:latest AS builder\n"
      "RUN mkdir -p /out && echo artifact > /out/app.bin\n"
      "FROM busybox:latest AS broken\n"
      "RUN echo this-stage-fails && exit 3\n"
      "FROM scratch AS final\n"
      "COPY --from=builder /out/app.bin /app.bin\n"
      "COPY --from=busybox:latest /bin/busybox /busybox\n";
  auto res = f.ok(f.request(df));
  auto out = f.output();
  CHECK(std::find(out.begin(), out.end(), "this-stage-fails") == out.end());
  auto img = f.store.get(res.image_id);
  REQUIRE(img);
  CHECK(img->layers.size() == 2);
  CHECK(f.read(*img, "/app.bin") == "artifact\n");
  CHECK(f.find(*img, "/busybox"));
  CHECK_FALSE(f.find(*img, "/bin/sh"));

  // Targeting the failing stage fails, naming its line and exit code.
  auto r = f.request(df, "broken:1");
  r.target = "broken";
  auto bad = f.run(r);
  REQUIRE(!bad);
  CHECK(bad.error().message == "Dockerfile:4: RUN echo this-stage-fails && exit 3: exit code 3");
  CHECK_FALSE(f.store.get("broken:1"));
}

TEST_CASE("build: .dockerignore keeps a file out of the context and out of the cache key" * doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  BuildFixture f;
  test::write_text(f.ctx / ".dockerignore", "*.secret\nlogs/\n!logs/keep.log\n");
  test::write_text(f.ctx / "app.py", "print('app')\n");
  test::write_text(f.ctx / "db.secret", "password\n");
  test::write_text(f.ctx / "logs/old.log", "old\n");
  test::write_text(f.ctx / "logs/keep.log", "keep\n");
  std::string df = "FROM busybox:latest\nCOPY . /app/\nRUN ls -R /app > /listing\n";
  auto first = f.ok(f.request(df));
  auto img = f.store.get(first.image_id);
  REQUIRE(img);
  CHECK(f.find(*img, "/app/app.py"));
  CHECK_FALSE(f.find(*img, "/app/db.secret"));
  CHECK_FALSE(f.find(*img, "/app/logs/old.log"));
  CHECK(f.find(*img, "/app/logs/keep.log"));
  test::write_text(f.ctx / "db.secret", "another password\n");
  test::write_text(f.ctx / "logs/old.log", "older\n");
  auto second = f.ok(f.request(df));
  CHECK(second.cached == 2);
  CHECK(second.image_id == first.image_id);
  auto single = f.run(f.request("FROM busybox:latest\nCOPY db.secret /x\n"));
  REQUIRE(!single);
  CHECK(single.error().message.find("Dockerfile:2: COPY db.secret: not found") == 0);
}

TEST_CASE("build: a bad Dockerfile names its line and changes nothing" * doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  BuildFixture f;
  auto before = f.store.list();
  REQUIRE(before);
  auto r = f.request("FROM busybox:latest\nRUN true\nFORM oops\n");
  auto checked = build::check(r);
  REQUIRE(!checked);
  CHECK(checked.error().message == "Dockerfile:3: unknown instruction FORM");
  auto res = f.run(r);
  REQUIRE(!res);
  CHECK(res.error().message == "Dockerfile:3: unknown instruction FORM");
  auto missing = f.run(f.request("FROM nosuch/image:1\n"));
  REQUIRE(!missing);
  CHECK(missing.error().message.find("Dockerfile:1: image nosuch/image:1 is not in the store") == 0);
  auto plat = f.run(f.request("FROM --platform=linux/arm64 busybox:latest\n"));
  REQUIRE(!plat);
  CHECK(plat.error().message.find("Dockerfile:1: platform linux/arm64 is not supported") == 0);
  auto after = f.store.list();
  REQUIRE(after);
  CHECK(after->size() == before->size());
  // Nothing left of the builds in their scratch space.
  std::error_code ec;
  bool clean = !stdfs::exists(f.dir / "builds") || stdfs::is_empty(f.dir / "builds", ec);
  CHECK(clean);
}

TEST_CASE("build: RUN on the default network reaches the outside through the build's NAT bridge" * doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  // A simulated host (its own namespaces): the "outside" at 192.168.200.2 serves a file.
  test::NetHost h("bld");
  test::TempDir www("stack-build-www");
  test::write_text(www / "index.html", "from outside\n");
  test::Background server(h.outside, {"/usr/bin/busybox", "httpd", "-f", "-p", "8080", "-h",
                                      www.path().string()});
  REQUIRE(test::wait_http(h.outside, "http://127.0.0.1:8080/"));
  BuildFixture f;
  {
    build::BridgeBuildNetwork net(*h.manager, "build-itest", "nameserver 127.0.0.53\nnameserver 192.168.200.2\n");
    f.host.network = &net;
    auto r = f.request(
        "FROM busybox:latest\n"
        "RUN wget -q -O /fetched http://192.168.200.2:8080/index.html && cat /etc/resolv.conf\n");
    r.network = build::NetworkMode::kDefault;
    auto res = f.ok(r);
    auto img = f.store.get(res.image_id);
    REQUIRE(img);
    CHECK(f.read(*img, "/fetched") == "from outside\n");
    auto out = f.output();
    CHECK(std::find(out.begin(), out.end(), "nameserver 192.168.200.2") != out.end());
    CHECK(std::find(out.begin(), out.end(), "nameserver 127.0.0.53") == out.end());
    f.host.network = nullptr;
  }
  // The build's network is gone with it.
  std::string left;
  for (int i = 0; i < 100; i++) {  // the veth goes with the RUN's namespace, asynchronously
    left = h.leftovers();
    if (left.empty()) break;
    ::usleep(10000);
  }
  CHECK(left == "");
}

TEST_CASE("build: a RUN's layer holds what the command changed, nothing the engine mounted" * doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  BuildFixture f;
  auto res = f.ok(f.request("FROM busybox:latest\nRUN echo x > /only-this && mkdir -p /tmp/t && rm -rf /tmp/t\n"));
  auto img = f.store.get(res.image_id);
  REQUIRE(img);
  std::vector<std::string> entries;
  for (auto it = stdfs::recursive_directory_iterator(img->layers.back());
       it != stdfs::recursive_directory_iterator(); ++it)
    entries.push_back(stdfs::relative(it->path(), img->layers.back()).string());
  std::sort(entries.begin(), entries.end());
  std::string all;
  for (const auto& e : entries) all += e + " ";
  const std::vector<std::string> want = {"only-this", "tmp"};
  CHECK_MESSAGE(entries == want, all);
}

TEST_CASE("build: what a build killed half-way left is swept by the next one" * doctest::test_suite("integration")) {
  STACK_REQUIRE_ROOT();
  BuildFixture f;
  // A PID that is surely gone: a child already reaped.
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  stdfs::path stale = f.dir / "builds" / ("b-" + std::to_string(dead) + "-deadbeef");
  stdfs::create_directories(stale / "copy-1" / "merged");
  REQUIRE(::mount("tmpfs", (stale / "copy-1" / "merged").c_str(), "tmpfs", 0, "size=1m") == 0);
  struct Unmount {
    stdfs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }  // pass or fail
  } unmount{stale / "copy-1" / "merged"};
  stdfs::path live = f.dir / "builds" / ("b-" + std::to_string(::getpid()) + "-cafecafe");
  stdfs::create_directories(live);
  f.ok(f.request("FROM busybox:latest\nENV A=1\n"));
  CHECK_FALSE(stdfs::exists(stale));
  auto mounts = test::read_text("/proc/self/mountinfo");
  CHECK(mounts.find(stale.string()) == std::string::npos);
  CHECK(stdfs::exists(live));  // a live process's build is left alone
  stdfs::remove_all(live);
}
