// Finding 2 of issue 9, the loader's half: a NUL byte anywhere a stack file's value can carry
// one (a "\0" escape in double-quoted YAML, a raw NUL in an env_file or .env, a variable's value)
// is refused at load with file:line:column, before anything reaches the engine.
#include <doctest/doctest.h>

#include "spec/loader.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::spec;

namespace {

struct Project {
  test::TempDir dir{"stack-spec-nul"};
  LoadOptions opts;
  Project() { opts.working_dir = dir.path(); }
  Project& file(const std::string& name, const std::string& text) {
    test::write_text(dir / name, text);
    return *this;
  }
  std::string error_of(const std::string& yaml) {
    file("stack.yaml", yaml);
    auto r = load(opts);
    return r ? "LOADED" : r.error().message;
  }
};

std::string service(const std::string& body) {
  return "services:\n  web:\n    image: busybox\n" + body;
}

}  // namespace

TEST_CASE("the issue's injection: a NUL in an environment value is refused with its position") {
  Project p;
  auto e = p.error_of(
      service("    environment:\n      X: \"a\\x00bind\\x00/tmp/x\\x00bind_dst\\x00/injected\"\n"));
  CHECK(e ==
        "stack.yaml:5:10: services.web.environment.X: the value contains a NUL byte (at "
        "byte 2), which is not allowed");
}

TEST_CASE("a NUL is refused in every kind of field: arguments, paths, labels, names") {
  struct Case {
    const char* yaml;
    const char* where;
  };
  const Case cases[] = {
      {"    environment: [\"A=b\\0c\"]\n", "stack.yaml:4:19: services.web.environment"},
      {"    command: [\"sh\", \"-c\", \"echo\\u0000hi\"]\n",
       "stack.yaml:4:27: services.web.command"},
      {"    command: \"echo a\\0b\"\n", "stack.yaml:4:14: services.web.command"},
      {"    entrypoint: [\"/bin/s\\0h\"]\n", "stack.yaml:4:18: services.web.entrypoint"},
      {"    healthcheck:\n      test: [\"CMD\", \"true\\0\"]\n",
       "stack.yaml:5:21: services.web.healthcheck.test"},
      {"    volumes: [\"/tmp/a\\0b:/data\"]\n", "stack.yaml:4:15: services.web.volumes"},
      {"    volumes:\n      - {type: bind, source: /srv, target: \"/da\\0ta\"}\n",
       "stack.yaml:5:44: services.web.volumes.target"},
      {"    env_file: \"app\\0.env\"\n", "stack.yaml:4:15: services.web.env_file"},
      {"    working_dir: \"/sr\\0v\"\n", "stack.yaml:4:18: services.web.working_dir"},
      {"    build: {context: \"./ap\\0p\"}\n", "stack.yaml:4:22: services.web.build.context"},
      {"    labels: {team: \"a\\0b\"}\n", "stack.yaml:4:20: services.web.labels.team"},
      {"    labels: {\"te\\0am\": x}\n", "stack.yaml:4:14: services.web.labels: the key"},
      {"    hostname: \"we\\0b\"\n", "stack.yaml:4:15: services.web.hostname"},
      {"    user: \"1000\\0\"\n", "stack.yaml:4:11: services.web.user"},
  };
  for (const Case& c : cases) {
    Project p;
    auto e = p.error_of(service(c.yaml));
    CAPTURE(std::string(c.yaml));
    CAPTURE(e);
    CHECK(e.find(c.where) == 0);
    CHECK(e.find("NUL byte") != std::string::npos);
  }
  Project p;
  auto e = p.error_of("services:\n  \"we\\0b\":\n    image: busybox\n");
  CHECK(e.find("stack.yaml:2:3: services: the key contains a NUL byte") == 0);
  e = p.error_of(service("networks:\n  \"fr\\0nt\": {}\n"));
  CHECK(e.find("stack.yaml:5:3: networks: the key contains a NUL byte") != std::string::npos);
  e = p.error_of("name: \"pro\\0ject\"\n" + service(""));
  CHECK(e.find("stack.yaml:1:7: name: the value contains a NUL byte") == 0);
}

TEST_CASE("a raw NUL in an env_file or in .env is refused with its line and column") {
  Project p;
  p.file("app.env", std::string("A=1\nTOKEN=ab\0cd\n", 14));
  auto e = p.error_of(service("    env_file: app.env\n"));
  CHECK(e ==
        "stack.yaml:4:15: services.web.env_file: app.env: line 2 column 9: a NUL byte is "
        "not allowed");

  Project q;
  q.file(".env", std::string("TAG=1\0\n", 7));
  auto f = q.error_of(service(""));
  CHECK(f.find(".env: line 1 column 6: a NUL byte is not allowed") != std::string::npos);
}

TEST_CASE("a NUL that arrives through a variable is refused where it lands") {
  Project p;
  p.opts.environment["SECRET"] = std::string("a\0b", 3);
  auto e = p.error_of(service("    environment:\n      X: ${SECRET}\n"));
  CHECK(e ==
        "stack.yaml:5:10: services.web.environment.X: the value contains a NUL byte (at "
        "byte 2), which is not allowed");
  // A bare KEY takes the shell's value as it is: no interpolation sees it.
  e = p.error_of(service("    environment:\n      SECRET:\n"));
  CHECK(e ==
        "stack.yaml:5:7: services.web.environment: the value of SECRET contains a NUL "
        "byte, which is not allowed");
}

TEST_CASE("a raw NUL in the YAML itself is a syntax error with its position") {
  Project p;
  auto e = p.error_of(std::string("services:\n  web:\n    image: busy\0box\n", 34));
  CAPTURE(e);
  CHECK(e == "stack.yaml:3:16: control characters are not allowed");
}

TEST_CASE("file names with a NUL are refused before anything is opened") {
  Project p;
  p.file("stack.yaml", service(""));
  p.opts.files = {std::string("stack.yaml\0.evil", 16)};
  auto r = load(p.opts);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("NUL byte") != std::string::npos);
}
