// Pure value parsers of the spec module: byte sizes, durations, project names, interpolation,
// shell word splitting and env files.
#include <doctest/doctest.h>

#include "spec/env_file.h"
#include "spec/interpolate.h"
#include "spec/loader.h"
#include "spec/text.h"

using namespace stack::spec;
using namespace std::chrono_literals;

TEST_CASE("parse_bytes") {
  CHECK(parse_bytes("1024") == 1024);
  CHECK(parse_bytes("512m") == 512LL << 20);
  CHECK(parse_bytes("32M") == 32LL << 20);
  CHECK(parse_bytes("1gb") == 1LL << 30);
  CHECK(parse_bytes("1GiB") == 1LL << 30);
  CHECK(parse_bytes("1.5g") == 3LL << 29);
  CHECK(parse_bytes("100k") == 102400);
  CHECK(parse_bytes("10b") == 10);
  CHECK(parse_bytes("lots") == std::nullopt);
  CHECK(parse_bytes("") == std::nullopt);
  CHECK(parse_bytes("-1m") == std::nullopt);
  CHECK(parse_bytes("12x") == std::nullopt);
}

TEST_CASE("parse_duration") {
  CHECK(parse_duration("10s") == 10s);
  CHECK(parse_duration("1m30s") == 90s);
  CHECK(parse_duration("250ms") == 250ms);
  CHECK(parse_duration("1h") == 1h);
  CHECK(parse_duration("2h45m") == 165min);
  CHECK(parse_duration("1.5s") == 1500ms);
  CHECK(parse_duration("0") == 0ms);
  CHECK(parse_duration("10") == std::nullopt);
  CHECK(parse_duration("") == std::nullopt);
  CHECK(parse_duration("10x") == std::nullopt);
  CHECK(parse_duration("s") == std::nullopt);
}

TEST_CASE("normalize_project_name") {
  CHECK(normalize_project_name("My App") == "myapp");
  CHECK(normalize_project_name("_-demo_1") == "demo_1");
  CHECK(normalize_project_name("web.site") == "website");
  CHECK(normalize_project_name("...") == "");
}

namespace {
std::string interp(const std::string& text, std::vector<std::string>* unset_out = nullptr) {
  VarLookup lookup = [](const std::string& name) -> std::optional<std::string> {
    if (name == "SET") return "value";
    if (name == "EMPTY") return "";
    return std::nullopt;
  };
  std::vector<std::string> unset;
  auto r = interpolate(text, lookup, unset);
  if (unset_out) *unset_out = unset;
  return r ? *r : "ERROR: " + r.error().message;
}
}  // namespace

TEST_CASE("interpolation operators") {
  CHECK(interp("$SET") == "value");
  CHECK(interp("${SET}") == "value");
  CHECK(interp("a-$SET-b") == "a-value-b");
  CHECK(interp("$$SET") == "$SET");
  CHECK(interp("cost $$5") == "cost $5");
  // :- and - differ on empty values.
  CHECK(interp("${UNSET:-d}") == "d");
  CHECK(interp("${EMPTY:-d}") == "d");
  CHECK(interp("${SET:-d}") == "value");
  CHECK(interp("${UNSET-d}") == "d");
  CHECK(interp("${EMPTY-d}") == "");
  // :+ and +
  CHECK(interp("${SET:+alt}") == "alt");
  CHECK(interp("${EMPTY:+alt}") == "");
  CHECK(interp("${EMPTY+alt}") == "alt");
  CHECK(interp("${UNSET+alt}") == "");
  // :? and ?
  CHECK(interp("${SET:?boom}") == "value");
  CHECK(interp("${UNSET:?need it}") ==
        "ERROR: required variable UNSET is missing a value: need it");
  CHECK(interp("${EMPTY:?x}") == "ERROR: required variable EMPTY is missing a value: x");
  CHECK(interp("${EMPTY?x}") == "");
  CHECK(interp("${UNSET?}") == "ERROR: required variable UNSET is missing a value");
  // Nesting.
  CHECK(interp("${UNSET:-${SET}}") == "value");
  CHECK(interp("${UNSET:-${ALSO_UNSET:-c}}") == "c");
  CHECK(interp("${UNSET:-pre-${SET}-post}") == "pre-value-post");
  CHECK(interp("${UNSET:-{x}}") == "{x}");
  // Malformed.
  CHECK(interp("${SET").rfind("ERROR: invalid interpolation", 0) == 0);
  CHECK(interp("$").rfind("ERROR: invalid interpolation", 0) == 0);
  CHECK(interp("${1A}").rfind("ERROR: invalid interpolation", 0) == 0);
}

TEST_CASE("interpolation reports unset variables, and defaults are lazy") {
  std::vector<std::string> unset;
  CHECK(interp("x${NOPE}y", &unset) == "xy");
  CHECK(unset == std::vector<std::string>{"NOPE"});
  CHECK(interp("${SET:-${NOPE}}", &unset) == "value");
  CHECK(unset.empty());
}

TEST_CASE("shell word splitting") {
  CHECK(split_shell_words("echo hello world").value() ==
        std::vector<std::string>{"echo", "hello", "world"});
  CHECK(split_shell_words("sh -c 'echo $HOME; ls'").value() ==
        std::vector<std::string>{"sh", "-c", "echo $HOME; ls"});
  CHECK(split_shell_words(R"(a "b \"c\" d" e\ f)").value() ==
        std::vector<std::string>{"a", "b \"c\" d", "e f"});
  CHECK(split_shell_words("  ").value().empty());
  CHECK(split_shell_words("''").value() == std::vector<std::string>{""});
  CHECK(!split_shell_words("echo 'oops"));
}

TEST_CASE("did you mean") {
  CHECK(closest_match("imgae", {"image", "command"}) == "image");
  CHECK(closest_match("zzzzzz", {"image", "command"}) == std::nullopt);
}

TEST_CASE("env file parsing") {
  auto r = parse_env_file(
      "# comment\n\nA=1\nexport B = two \nC=\"quoted # not comment\\n\"\nD='single $x'\n"
      "E=plain # comment\nF=\nG\n");
  REQUIRE(r);
  REQUIRE(r->size() == 7);
  CHECK((*r)[0].key == "A");
  CHECK((*r)[0].value == "1");
  CHECK((*r)[1].key == "B");
  CHECK((*r)[1].value == "two");
  CHECK((*r)[2].value == "quoted # not comment\n");
  CHECK((*r)[3].value == "single $x");
  CHECK((*r)[4].value == "plain");
  CHECK((*r)[5].value == "");
  CHECK((*r)[6].key == "G");
  CHECK((*r)[6].value == std::nullopt);
  auto bad = parse_env_file("A=1\nB=\"open\n");
  REQUIRE(!bad);
  CHECK(bad.error().message == "line 2: unterminated quote");
}
