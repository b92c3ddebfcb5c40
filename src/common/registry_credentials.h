// Registry credentials from the auth file docker and podman write ($REGISTRY_AUTH_FILE,
// $DOCKER_CONFIG/config.json, ~/.docker/config.json: {"auths": {"HOST": {"auth": base64}}}).
// Read by the CLI for its user (which sends the daemon only the credential a transfer needs)
// and by the daemon for its own pulls; never a path from an API request. Reads files only.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace stack {

struct RegistryCredentials {
  std::string username;
  std::string password;
  std::string identity_token;  // an OAuth2 refresh token (docker's "identitytoken")
};

// $REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json of the
// calling process (what `docker login`, `podman login` and `stack login` write).
[[nodiscard]] std::filesystem::path default_auth_file();

// The registry an auth-file key names: "https://index.docker.io/v1/" -> "docker.io",
// "http://reg:5000/v2/" -> "reg:5000", "ghcr.io" -> "ghcr.io".
[[nodiscard]] std::string registry_of_key(std::string_view key);

// The registry an image reference is pulled from, by Docker's rule: the first component when it
// has a '.' or a ':' or is "localhost" ("127.0.0.1:5000/app" -> "127.0.0.1:5000"), else
// "docker.io" ("busybox", "org/app").
[[nodiscard]] std::string registry_of_reference(std::string_view reference);

// The credentials FILE holds for REGISTRY (a reference's domain); none when the file or the
// entry is missing. Error for a file that exists but does not parse (naming the file, never
// quoting it).
[[nodiscard]] Result<std::optional<RegistryCredentials>> find_credentials(
    const std::filesystem::path& file, std::string_view registry);

// Credentials by registry ("docker.io", "127.0.0.1:5000").
using RegistryAuths = std::map<std::string, RegistryCredentials>;

// Every registry's credentials FILE holds, by registry (registry_of_key); none when the file
// is missing. The CLI sends them with `up`, `build` and `run`: the daemon pulls what a client
// asked for with that client's credentials only.
[[nodiscard]] Result<RegistryAuths> all_credentials(
    const std::filesystem::path& file);

}  // namespace stack
