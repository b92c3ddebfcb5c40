// Small text helpers private to the spec module: shell-like word splitting for command and
// entrypoint strings, and the "did you mean" suggestion for misspelt keys.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stack::spec {

// Splits like a POSIX shell without expansions: blanks separate words, single quotes are
// literal, double quotes and backslashes escape. Error on an unterminated quote.
[[nodiscard]] Result<std::vector<std::string>> split_shell_words(std::string_view text);

[[nodiscard]] size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to WORD, if it is close enough to be a plausible typo.
[[nodiscard]] std::optional<std::string> closest_match(std::string_view word,
                                                       const std::vector<std::string>& candidates);

}  // namespace stack::spec
