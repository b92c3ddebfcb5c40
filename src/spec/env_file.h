// Parsing of dotenv-style files (`.env` and `env_file:`): KEY=VALUE lines, `#` comments,
// blank lines, optional `export ` and quotes. Pure text in, pairs out.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace stack::spec {

struct EnvLine {
  std::string key;
  std::optional<std::string> value;  // nullopt: a bare KEY, to be taken from the environment
  int line = 0;
};

// Error messages are "line N: problem" ("line N column C: ..." for a NUL byte, refused
// anywhere).
[[nodiscard]] Result<std::vector<EnvLine>> parse_env_file(std::string_view text);

}  // namespace stack::spec
