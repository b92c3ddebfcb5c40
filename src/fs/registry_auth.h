// Registry credentials and challenges: the auth file docker and podman write (~/.docker/
// config.json, $REGISTRY_AUTH_FILE: {"auths": {"HOST": {"auth": base64(user:password)}}}) and
// the WWW-Authenticate header of a 401 (Bearer realm/service/scope, or Basic). Private to src/fs;
// pure but for reading the file.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "fs/pull.h"

namespace stack::fs {

// The registry an auth-file key names: "https://index.docker.io/v1/" -> "docker.io",
// "http://reg:5000/v2/" -> "reg:5000", "ghcr.io" -> "ghcr.io".
[[nodiscard]] std::string registry_of_key(std::string_view key);

// The credentials FILE holds for REGISTRY (a reference's domain); none when the file or the
// entry is missing. Error for a file that exists but does not parse.
[[nodiscard]] Result<std::optional<Credentials>> find_credentials(const std::filesystem::path& file,
                                                                  std::string_view registry);

struct Challenge {
  std::string scheme;                         // lower-case: "bearer", "basic"
  std::map<std::string, std::string> params;  // realm, service, scope, error
};
// Every challenge of a WWW-Authenticate value, quoted strings and commas inside them honoured.
[[nodiscard]] std::vector<Challenge> parse_challenges(std::string_view header);

}  // namespace stack::fs
