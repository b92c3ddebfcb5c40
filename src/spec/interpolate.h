// Compose variable interpolation ($VAR, ${VAR:-default}, ${VAR:?err}, ..., $$) over the
// scalar values of a parsed file. Pure: variables come from the lookup the loader passes.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "spec/diagnostics.h"
#include "spec/node.h"

namespace stack::spec {

using VarLookup = std::function<std::optional<std::string>(const std::string&)>;

// Substitutes TEXT. Names of variables that were unset and had no default are appended to
// UNSET. The error message carries no position.
[[nodiscard]] Result<std::string> interpolate(std::string_view text, const VarLookup& lookup,
                                              std::vector<std::string>& unset);

// Interpolates every scalar value of NODE in place (mapping keys are left alone); errors and
// unset-variable warnings go to DIAG with the value's position. A key or value holding a NUL
// byte (a "\0" escape, or a variable's value) is an error at its position.
void interpolate_tree(Node& node, const VarLookup& lookup, Diagnostics& diag);

}  // namespace stack::spec
