// Stages, .dockerignore patterns and cache identities of the build engine (src/build): pure, no
// root, no host changes.
#include <doctest/doctest.h>

#include "build/builder.h"
#include "build/context.h"
#include "build/stages.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::build;

namespace {

StagePlan plan_of(const std::string& text, const Vars& args = {}, const std::string& target = "") {
  auto df = parse_dockerfile(text, "Dockerfile");
  REQUIRE_MESSAGE(df, (df ? "" : df.error().message));
  auto plan = plan_stages(*df, args, target);
  REQUIRE_MESSAGE(plan, (plan ? "" : plan.error().message));
  return *plan;
}

std::string plan_error(const std::string& text, const std::string& target = "") {
  auto df = parse_dockerfile(text, "Dockerfile");
  REQUIRE(df);
  auto plan = plan_stages(*df, {}, target);
  REQUIRE(!plan);
  return plan.error().message;
}

bool ignored(const std::string& rules, const std::string& path) {
  auto r = IgnoreRules::parse(rules);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  return r->excluded(path);
}

}  // namespace

TEST_CASE("stages: global ARGs in FROM, build args override their defaults") {
  auto p = plan_of("ARG BASE=busybox\nARG TAG\nFROM ${BASE}:${TAG:-latest} AS one\nRUN true\n");
  CHECK(p.stages[0].base == "busybox:latest");
  auto q = plan_of("ARG BASE=busybox\nFROM $BASE\n", {{"BASE", "alpine"}, {"UNUSED", "1"}});
  CHECK(q.stages[0].base == "alpine");
  CHECK(q.unused_args == std::vector<std::string>{"UNUSED"});
}

TEST_CASE("stages: only what the target needs is built, dependencies first") {
  std::string df =
      "FROM busybox AS base\nRUN true\n"
      "FROM busybox AS broken\nRUN false\n"
      "FROM busybox AS tools\nRUN true\n"
      "FROM base AS final\nCOPY --from=tools /x /x\nCOPY --from=0 /y /y\n";
  auto p = plan_of(df);
  CHECK(p.target == 3);
  CHECK(p.order == std::vector<int>{0, 2, 3});
  auto t = plan_of(df, {}, "TOOLS");  // stage names are case-insensitive
  CHECK(t.order == std::vector<int>{2});
  CHECK(p.stages[3].base_stage == 0);
}

TEST_CASE("stages: errors name the line or the target") {
  CHECK(plan_error("FROM a AS x\nFROM b AS x\n") == "Dockerfile:2: duplicate stage name \"x\"");
  CHECK(plan_error("RUN true\nFROM a\n").find("Dockerfile:1: RUN before the first FROM") == 0);
  CHECK(plan_error("FROM a AS x\n", "nope") ==
        "Dockerfile: target stage \"nope\" not found (stages: x)");
  CHECK(plan_error("FROM a AS x\nCOPY --from=later /a /b\nFROM b AS later\n") ==
        "Dockerfile:2: COPY --from=later names a stage defined later");
  CHECK(plan_error("ARG X\n") == "Dockerfile: no FROM instruction: nothing to build");
}

TEST_CASE("dockerignore: Go patterns with ** and exceptions, parents match their children") {
  CHECK(ignored("*.log", "a.log"));
  CHECK_FALSE(ignored("*.log", "dir/a.log"));  // * does not cross /
  CHECK(ignored("**/*.log", "dir/sub/a.log"));
  CHECK(ignored("**/*.log", "a.log"));
  CHECK(ignored("secret", "secret/key.pem"));  // a matched directory takes its content
  CHECK(ignored("/build/", "build/out"));
  CHECK(ignored("./tmp", "tmp"));
  CHECK(ignored("doc?", "doc1"));
  CHECK_FALSE(ignored("doc?", "doc12"));
  CHECK(ignored("[a-c].txt", "b.txt"));
  CHECK_FALSE(ignored("[^a-c].txt", "b.txt"));
  CHECK(ignored("*.md\n!README.md", "NOTES.md"));
  CHECK_FALSE(ignored("*.md\n!README.md", "README.md"));
  CHECK(ignored("*.md\n!README.md\nREADME*", "README.md"));  // the last match decides
  CHECK_FALSE(ignored("# comment\n\n", "x"));
  CHECK(ignored("dir/**", "dir/a/b"));
  CHECK(ignored("a/**/b", "a/b"));
  CHECK(ignored("a/**/b", "a/x/y/b"));
}

TEST_CASE("context: sources resolve inside the context, ignored files are absent") {
  test::TempDir dir("stack-build-ctx");
  test::write_text(dir / "app/main.py", "print(1)\n");
  test::write_text(dir / "app/secret.key", "k\n");
  test::write_text(dir / "a.txt", "a\n");
  test::write_text(dir / "b.txt", "b\n");
  std::filesystem::create_symlink("/etc/passwd", dir / "escape");
  auto rules = IgnoreRules::parse("**/*.key\n");
  REQUIRE(rules);
  SourceRoot ctx(dir.path(), *rules);

  auto txt = ctx.resolve("*.txt");
  REQUIRE(txt);
  REQUIRE(txt->size() == 2);
  CHECK((*txt)[0].name == "a.txt");
  auto app = ctx.resolve("./app/");
  REQUIRE(app);
  auto entries = ctx.walk(app->front());
  REQUIRE(entries);
  CHECK(*entries == std::vector<std::string>{"", "main.py"});
  CHECK_FALSE(ctx.resolve("app/secret.key"));
  // An absolute symlink resolves inside the context: /etc/passwd of the context, not the host's.
  auto esc = ctx.resolve("escape");
  REQUIRE(!esc);
  CHECK(esc.error().message.find("not found") != std::string::npos);
  CHECK_FALSE(ctx.resolve("../../etc/passwd"));

  // The ignored file is out of the content hash: changing it changes nothing.
  auto before = ctx.content_hash(*app);
  test::write_text(dir / "app/secret.key", "changed\n");
  auto after = ctx.content_hash(*app);
  REQUIRE(before);
  REQUIRE(after);
  CHECK(*before == *after);
  test::write_text(dir / "app/main.py", "print(2)\n");
  auto changed = ctx.content_hash(*app);
  REQUIRE(changed);
  CHECK(*changed != *before);
  std::filesystem::permissions(dir / "app/main.py", std::filesystem::perms::owner_exec,
                               std::filesystem::perm_options::add);
  auto mode = ctx.content_hash(*app);
  REQUIRE(mode);
  CHECK(*mode != *changed);  // the mode is part of it
}

TEST_CASE("cache identity: a chain of parent and step, durations, EXPOSE ports") {
  auto a = next_state_id("image:sha256:1", "RUN make");
  CHECK(a == next_state_id("image:sha256:1", "RUN make"));
  CHECK(a != next_state_id("image:sha256:2", "RUN make"));
  CHECK(a != next_state_id("image:sha256:1", "RUN make all"));
  CHECK(a.size() == 64);
  CHECK(*parse_duration("30s") == 30'000'000'000);
  CHECK(*parse_duration("1m30s") == 90'000'000'000);
  CHECK(*parse_duration("500ms") == 500'000'000);
  CHECK_FALSE(parse_duration("10x"));
  CHECK(*expose_ports("80") == std::vector<std::string>{"80/tcp"});
  CHECK(*expose_ports("53/UDP") == std::vector<std::string>{"53/udp"});
  CHECK(*expose_ports("8000-8002") == std::vector<std::string>{"8000/tcp", "8001/tcp", "8002/tcp"});
  CHECK_FALSE(expose_ports("70000"));
}
