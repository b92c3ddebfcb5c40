// The Dockerfile language: text -> instructions (parser directives, line continuations,
// comments, heredocs, flags, exec and shell forms), and Docker's word expansion ($VAR, ${VAR},
// ${VAR:-word}, ...) with its quoting rules. Pure: no I/O. Private to src/build.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stack::build {

struct Heredoc {
  std::string name;     // "EOF"
  std::string content;  // the lines between, each ending in '\n' (tabs stripped for <<-)
  bool expand = true;   // false when the name was quoted (<<"EOF"): no variable expansion
};

struct Flag {
  std::string name;   // "from" for --from=x
  std::string value;  // "x"; "" for a bare --flag
};

struct Instruction {
  std::string keyword;  // upper case: "RUN"
  int line = 0;         // where it starts (1-based)
  std::string text;     // what follows the keyword and its flags, continuations joined
  std::vector<Flag> flags;
  // Exec form (a JSON array of strings): its elements. Else empty, and TEXT is the shell form.
  bool exec_form = false;
  std::vector<std::string> exec;
  std::vector<Heredoc> heredocs;

  [[nodiscard]] const Flag* flag(std::string_view name) const;
  [[nodiscard]] std::string source() const;  // "RUN --network=none apt-get ..." as written
};

struct Dockerfile {
  std::string name;  // "Dockerfile": errors say "<name>:<line>: ..."
  char escape = '\\';
  std::vector<Instruction> instructions;
  std::vector<std::string> notes;  // "# syntax= is ignored: stack builds with its own engine"
};

// Parses TEXT. Errors: "NAME:LINE: reason". Checks what needs no context: known instructions,
// their flags and argument counts, ONBUILD and RUN --mount refused with the reason.
[[nodiscard]] Result<Dockerfile> parse_dockerfile(std::string_view text, std::string_view name);

// A JSON array of strings (the exec form); nullopt when TEXT is not one.
std::optional<std::vector<std::string>> parse_exec_form(std::string_view text);

// Variables for expansion: set (possibly empty) or absent.
using Vars = std::map<std::string, std::string>;

// Docker's shell-like word processing of TEXT (ENV, ARG, LABEL, COPY, WORKDIR, ...): quotes
// removed, ESCAPE escapes, variables expanded; one word (spaces kept).
[[nodiscard]] Result<std::string> expand_word(std::string_view text, const Vars& vars, char escape);
// The same, split into words on unquoted whitespace.
[[nodiscard]] Result<std::vector<std::string>> expand_words(std::string_view text, const Vars& vars,
                                                            char escape);
// Only variables expanded (quotes and escapes of anything else kept): a heredoc's content.
[[nodiscard]] Result<std::string> expand_vars_only(std::string_view text, const Vars& vars,
                                                   char escape);

// "KEY=VALUE KEY2=VALUE2" or the legacy "KEY VALUE" (ENV, LABEL): each pair, expanded.
[[nodiscard]] Result<std::vector<std::pair<std::string, std::string>>> key_values(
    std::string_view text, const Vars& vars, char escape, bool allow_legacy);

// ARG's declarations: "NAME" or "NAME=default" (the default expanded with VARS), one or more.
[[nodiscard]] Result<std::vector<std::pair<std::string, std::optional<std::string>>>> arg_decls(
    std::string_view text, const Vars& vars, char escape);

}  // namespace stack::build
