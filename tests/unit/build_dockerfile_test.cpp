// The Dockerfile parser and Docker's word expansion (src/build/dockerfile.h): pure, no root.
#include <doctest/doctest.h>

#include "build/dockerfile.h"

using namespace stack::build;

namespace {

Dockerfile parse(const std::string& text) {
  auto df = parse_dockerfile(text, "Dockerfile");
  REQUIRE_MESSAGE(df, (df ? "" : df.error().message));
  return *df;
}

std::string error_of(const std::string& text) {
  auto df = parse_dockerfile(text, "Dockerfile");
  REQUIRE(!df);
  return df.error().message;
}

}  // namespace

TEST_CASE("dockerfile: instructions with their lines, case-insensitive keywords, comments") {
  auto df = parse("# a comment\n\nfrom busybox\n  # indented comment\nRUN echo hi\ncmd [\"sh\"]\n");
  REQUIRE(df.instructions.size() == 3);
  CHECK(df.instructions[0].keyword == "FROM");
  CHECK(df.instructions[0].line == 3);
  CHECK(df.instructions[1].keyword == "RUN");
  CHECK(df.instructions[1].text == "echo hi");
  CHECK(df.instructions[1].line == 5);
  CHECK(df.instructions[2].exec_form);
  CHECK(df.instructions[2].exec == std::vector<std::string>{"sh"});
}

TEST_CASE("dockerfile: line continuations skip comment and empty lines") {
  auto df = parse("FROM x\nRUN echo a \\\n  # inside\n\n  && echo b \\\n  && echo c\nENV A=1\n");
  REQUIRE(df.instructions.size() == 3);
  CHECK(df.instructions[1].text == "echo a   && echo b   && echo c");
  CHECK(df.instructions[2].line == 7);
}

TEST_CASE("dockerfile: the escape directive changes the continuation character") {
  auto df = parse("# escape=`\nFROM x\nRUN echo a `\n  b\nCOPY c:\\dir\\ /d\n");
  CHECK(df.escape == '`');
  REQUIRE(df.instructions.size() == 3);
  CHECK(df.instructions[1].text == "echo a   b");
  CHECK(df.instructions[2].text == "c:\\dir\\ /d");
}

TEST_CASE("dockerfile: syntax directive is ignored with a note, directives only at the top") {
  auto df = parse("# syntax=docker/dockerfile:1\nFROM x\n# escape=`\nRUN a \\\n b\n");
  REQUIRE(df.notes.size() == 1);
  CHECK(df.notes[0].find("syntax=docker/dockerfile:1 is ignored") != std::string::npos);
  CHECK(df.escape == '\\');  // the later "# escape=" is a comment
  CHECK(df.instructions[1].text == "a  b");
  CHECK(error_of("# escape=x\nFROM a\n").find("Dockerfile:1: invalid escape") == 0);
}

TEST_CASE("dockerfile: heredocs for RUN and COPY, quoted and tab-stripping forms") {
  auto df = parse(
      "FROM x\nRUN <<EOF\necho one\necho two\nEOF\nCOPY <<-\"END\" /file\n\tkeep $X\n\tEND\nENV A=1\n");
  REQUIRE(df.instructions.size() == 4);
  const auto& run = df.instructions[1];
  REQUIRE(run.heredocs.size() == 1);
  CHECK(run.heredocs[0].name == "EOF");
  CHECK(run.heredocs[0].content == "echo one\necho two\n");
  CHECK(run.heredocs[0].expand);
  const auto& copy = df.instructions[2];
  REQUIRE(copy.heredocs.size() == 1);
  CHECK(copy.heredocs[0].content == "keep $X\n");
  CHECK_FALSE(copy.heredocs[0].expand);
  CHECK(df.instructions[3].line == 9);
  CHECK(error_of("FROM x\nRUN <<EOF\necho\n").find("Dockerfile:2: heredoc <<EOF is not terminated") == 0);
}

TEST_CASE("dockerfile: flags, exec and shell forms") {
  auto df = parse("FROM --platform=linux/amd64 x AS b\nCOPY --from=b --chown=1:2 /a /b\n"
                  "RUN --network=none [\"echo\", \"a b\", \"\\u00e9\"]\nRUN [not json\n");
  CHECK(df.instructions[0].flag("platform")->value == "linux/amd64");
  CHECK(df.instructions[0].text == "x AS b");
  CHECK(df.instructions[1].flag("from")->value == "b");
  CHECK(df.instructions[1].flag("chown")->value == "1:2");
  CHECK(df.instructions[2].exec == std::vector<std::string>{"echo", "a b", "\xc3\xa9"});
  CHECK_FALSE(df.instructions[3].exec_form);  // not JSON: the shell form, as Docker does
  CHECK(df.instructions[1].source() == "COPY --from=b --chown=1:2 /a /b");
}

TEST_CASE("dockerfile: bad input names the line and the reason") {
  CHECK(error_of("FROM x\n\nFORM y\n") == "Dockerfile:3: unknown instruction FORM");
  CHECK(error_of("FROM x\nONBUILD RUN make\n").find("Dockerfile:2: ONBUILD is not supported") == 0);
  CHECK(error_of("FROM x\nRUN --mount=type=cache,target=/root/.cache make\n")
            .find("Dockerfile:2: RUN --mount (type=cache,target=/root/.cache) is not supported") == 0);
  CHECK(error_of("FROM x\nCOPY --bogus=1 a b\n") == "Dockerfile:2: unknown flag --bogus for COPY");
  CHECK(error_of("FROM x\nCOPY onlyone\n").find("Dockerfile:2: COPY needs at least a source") == 0);
  CHECK(error_of("FROM x\nSHELL /bin/bash\n").find("Dockerfile:2: SHELL requires the exec form") == 0);
  CHECK(error_of("FROM x\nRUN --network=bridge true\n").find("Dockerfile:2: RUN --network=bridge") == 0);
}

TEST_CASE("expansion: Docker's variable forms and quoting") {
  Vars v = {{"A", "1"}, {"E", ""}, {"SP", "x y"}};
  auto w = [&](const std::string& t) {
    auto r = expand_word(t, v, '\\');
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    return *r;
  };
  CHECK(w("$A") == "1");
  CHECK(w("${A}b") == "1b");
  CHECK(w("${UNSET:-def}") == "def");
  CHECK(w("${E:-def}") == "def");
  CHECK(w("${E-def}") == "");
  CHECK(w("${UNSET-def}") == "def");
  CHECK(w("${A:+set}") == "set");
  CHECK(w("${UNSET:+set}") == "");
  CHECK(w("${UNSET:-${A}x}") == "1x");
  CHECK(w("'$A'") == "$A");
  CHECK(w("\"$A two\"") == "1 two");
  CHECK(w("\\$A") == "$A");
  CHECK(w("$") == "$");
  CHECK(w("a$UNSET.b") == "a.b");
  auto bad = expand_word("${UNSET:?needed here}", v, '\\');
  REQUIRE(!bad);
  CHECK(bad.error().message == "UNSET: needed here");
  auto words = expand_words("a \"b c\" $SP '${A}'", v, '\\');
  REQUIRE(words);
  CHECK(*words == std::vector<std::string>{"a", "b c", "x", "y", "${A}"});
}

TEST_CASE("expansion: ENV and LABEL pairs, legacy form, ARG declarations") {
  Vars v = {{"A", "1"}};
  auto kv = key_values("X=$A Y=\"two words\" Z=a\\ b", v, '\\', true);
  REQUIRE(kv);
  REQUIRE(kv->size() == 3);
  CHECK((*kv)[0] == std::pair<std::string, std::string>{"X", "1"});
  CHECK((*kv)[1].second == "two words");
  CHECK((*kv)[2].second == "a b");
  auto legacy = key_values("KEY value with $A", v, '\\', true);
  REQUIRE(legacy);
  CHECK((*legacy)[0] == std::pair<std::string, std::string>{"KEY", "value with 1"});
  auto decls = arg_decls("V1 V2=${A}x", v, '\\');
  REQUIRE(decls);
  CHECK((*decls)[0].first == "V1");
  CHECK_FALSE((*decls)[0].second);
  CHECK(*(*decls)[1].second == "1x");
  CHECK(!arg_decls("bad-name=1", v, '\\'));
}
