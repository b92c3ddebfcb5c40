// Registry challenges: the WWW-Authenticate header of a 401 (Bearer realm/service/scope, or
// Basic); the auth file's credentials are common/registry_credentials.h's (the CLI reads them
// too). Private to src/fs; pure but for reading the registries configuration.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/registry_credentials.h"
#include "common/result.h"
#include "fs/pull.h"

namespace stack::fs {

struct Challenge {
  std::string scheme;                         // lower-case: "bearer", "basic"
  std::map<std::string, std::string> params;  // realm, service, scope, error
};
// Every challenge of a WWW-Authenticate value, quoted strings and commas inside them honoured.
[[nodiscard]] std::vector<Challenge> parse_challenges(std::string_view header);

}  // namespace stack::fs
