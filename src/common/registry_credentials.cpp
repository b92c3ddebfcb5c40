// The auth file's credentials (registry_credentials.h).
#include "common/registry_credentials.h"

#include <cctype>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/files.h"

namespace stack {

using nlohmann::json;

std::filesystem::path default_auth_file() {
  if (const char* f = std::getenv("REGISTRY_AUTH_FILE"); f && *f) return f;
  if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d)
    return std::filesystem::path(d) / "config.json";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home && *home ? home : "/root") / ".docker" / "config.json";
}

std::string registry_of_key(std::string_view key) {
  std::string_view k = key;
  if (size_t p = k.find("://"); p != std::string_view::npos) k.remove_prefix(p + 3);
  k = k.substr(0, k.find('/'));
  std::string host(k);
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (host == "index.docker.io" || host == "registry-1.docker.io" || host == "docker.io")
    return "docker.io";
  return host;
}

namespace {

// The auths object of FILE; null when the file is missing or has none.
Result<json> auths_of(const std::filesystem::path& file) {
  auto text = read_file(file, 1 << 20, "the registry auth file");
  if (!text) {
    if (text.error().sys_errno == ENOENT || text.error().sys_errno == ENOTDIR) return json();
    return fail(text.error());
  }
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object()) return fail(file.string() + ": not a JSON object");
  if (!j.contains("auths") || !j["auths"].is_object()) return json();
  return j["auths"];
}

// The credential of one auths entry; none when it has none.
Result<std::optional<RegistryCredentials>> entry_credentials(const std::filesystem::path& file,
                                                             const std::string& key,
                                                             const json& entry) {
  if (!entry.is_object()) return std::optional<RegistryCredentials>{};
  RegistryCredentials c;
  if (entry.contains("identitytoken") && entry["identitytoken"].is_string())
    c.identity_token = entry["identitytoken"].get<std::string>();
  if (entry.contains("auth") && entry["auth"].is_string()) {
    auto decoded = base64_decode(entry["auth"].get<std::string>());
    if (!decoded) return fail(file.string() + ": the auth of " + key + " is not base64");
    size_t colon = decoded->find(':');
    if (colon == std::string::npos)
      return fail(file.string() + ": the auth of " + key + " is not user:password");
    c.username = decoded->substr(0, colon);
    c.password = decoded->substr(colon + 1);
  } else if (entry.contains("username") && entry["username"].is_string()) {
    c.username = entry["username"].get<std::string>();
    c.password = entry.value("password", "");
  }
  if (c.username.empty() && c.identity_token.empty()) return std::optional<RegistryCredentials>{};
  return std::optional<RegistryCredentials>{c};
}

}  // namespace

Result<std::optional<RegistryCredentials>> find_credentials(const std::filesystem::path& file,
                                                            std::string_view registry) {
  auto auths = auths_of(file);
  if (!auths) return fail(auths.error());
  if (auths->is_null()) return std::optional<RegistryCredentials>{};
  std::string want = registry_of_key(registry);
  for (const auto& [key, entry] : auths->items()) {
    if (registry_of_key(key) != want) continue;
    auto c = entry_credentials(file, key, entry);
    if (!c) return fail(c.error());
    if (*c) return c;
  }
  return std::optional<RegistryCredentials>{};
}

Result<RegistryAuths> all_credentials(
    const std::filesystem::path& file) {
  std::map<std::string, RegistryCredentials> out;
  auto auths = auths_of(file);
  if (!auths) return fail(auths.error());
  if (auths->is_null()) return out;
  for (const auto& [key, entry] : auths->items()) {
    auto c = entry_credentials(file, key, entry);
    // A malformed entry is another registry's problem: said when a pull of it needs it.
    if (c && *c) out.emplace(registry_of_key(key), **c);
  }
  return out;
}

std::string registry_of_reference(std::string_view reference) {
  size_t slash = reference.find('/');
  if (slash == std::string_view::npos) return "docker.io";
  std::string_view first = reference.substr(0, slash);
  if (first.find_first_of(".:") == std::string_view::npos && first != "localhost")
    return "docker.io";
  return registry_of_key(first);
}

}  // namespace stack
