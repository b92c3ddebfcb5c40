// base64 (RFC 4648, with padding) for registry credentials: Basic authorization headers and the
// "auth" of docker's auth file. Pure; std only, so the CLI and src/fs share it.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace stack {

[[nodiscard]] std::string base64_encode(std::string_view in);
// Accepts the URL-safe alphabet too, and missing padding; an error for any other byte.
[[nodiscard]] Result<std::string> base64_decode(std::string_view in);

}  // namespace stack
