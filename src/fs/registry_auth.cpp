// Auth files and WWW-Authenticate challenges (registry_auth.h), and where the auth file and the
// registries configuration live. Reads files; no network.
#include "fs/registry_auth.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "fs/registry_http.h"

namespace stack::fs {

namespace {

using nlohmann::json;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::filesystem::path default_auth_file() {
  if (const char* f = std::getenv("REGISTRY_AUTH_FILE"); f && *f) return f;
  if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d)
    return std::filesystem::path(d) / "config.json";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home && *home ? home : "/root") / ".docker" / "config.json";
}

std::filesystem::path default_registries_config() {
  if (const char* f = std::getenv("STACK_REGISTRIES_CONFIG"); f && *f) return f;
  return "/etc/stack/registries.json";
}

Result<RegistryConfig> load_registries_config(const std::filesystem::path& file) {
  auto text = read_file(file, 1 << 20, "the registries configuration");
  if (!text) {
    if (text.error().sys_errno == ENOENT) return RegistryConfig{};
    return fail(text.error());
  }
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object()) return fail(file.string() + ": not a JSON object");
  RegistryConfig out;
  try {
    if (j.contains("mirrors")) {
      if (!j["mirrors"].is_object())
        return fail(file.string() + ": \"mirrors\" must map a registry to a list of URLs");
      for (const auto& [registry, urls] : j["mirrors"].items()) {
        for (const auto& u : urls) {
          std::string url = u.get<std::string>();
          if (!url.starts_with("http://") && !url.starts_with("https://"))
            return fail(file.string() + ": mirror \"" + url + "\" of " + registry +
                        " must start with http:// or https://");
          while (url.ends_with("/")) url.pop_back();
          out.mirrors[registry].push_back(url);
        }
      }
    }
    if (j.contains("insecure")) out.insecure = j["insecure"].get<std::vector<std::string>>();
    if (j.contains("blocked")) out.blocked = j["blocked"].get<std::vector<std::string>>();
    for (const auto& [key, _] : j.items())
      if (key != "mirrors" && key != "insecure" && key != "blocked")
        return fail(file.string() + ": unknown key \"" + key + "\" (mirrors, insecure, blocked)");
  } catch (const std::exception& e) {
    return fail(file.string() + ": " + e.what());
  }
  return out;
}

std::string registry_of_key(std::string_view key) {
  std::string_view k = key;
  if (size_t p = k.find("://"); p != std::string_view::npos) k.remove_prefix(p + 3);
  k = k.substr(0, k.find('/'));
  std::string host = lower(std::string(k));
  if (host == "index.docker.io" || host == "registry-1.docker.io" || host == "docker.io")
    return "docker.io";
  return host;
}

Result<std::optional<Credentials>> find_credentials(const std::filesystem::path& file,
                                                    std::string_view registry) {
  auto text = read_file(file, 1 << 20, "the registry auth file");
  if (!text) {
    if (text.error().sys_errno == ENOENT || text.error().sys_errno == ENOTDIR)
      return std::optional<Credentials>{};
    return fail(text.error());
  }
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object()) return fail(file.string() + ": not a JSON object");
  if (!j.contains("auths") || !j["auths"].is_object()) return std::optional<Credentials>{};
  std::string want = registry_of_key(registry);
  for (const auto& [key, entry] : j["auths"].items()) {
    if (registry_of_key(key) != want || !entry.is_object()) continue;
    Credentials c;
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
    if (c.username.empty() && c.identity_token.empty()) continue;
    return std::optional<Credentials>{c};
  }
  return std::optional<Credentials>{};
}

std::vector<Challenge> parse_challenges(std::string_view h) {
  std::vector<Challenge> out;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t' || h[i] == ',')) i++;
  };
  auto token = [&] {
    size_t start = i;
    while (i < h.size() && h[i] != ' ' && h[i] != '\t' && h[i] != '=' && h[i] != ',') i++;
    return std::string(h.substr(start, i - start));
  };
  while (i < h.size()) {
    skip_space();
    std::string word = token();
    if (word.empty()) break;
    // "key=value" after a scheme belongs to it; a bare word starts a new challenge.
    if (i < h.size() && h[i] == '=' && !out.empty()) {
      i++;
      std::string value;
      if (i < h.size() && h[i] == '"') {
        for (i++; i < h.size() && h[i] != '"'; i++) {
          if (h[i] == '\\' && i + 1 < h.size()) i++;
          value.push_back(h[i]);
        }
        i++;
      } else {
        while (i < h.size() && h[i] != ',') value.push_back(h[i++]);
      }
      out.back().params[lower(word)] = value;
    } else {
      out.push_back({lower(word), {}});
    }
  }
  return out;
}

}  // namespace stack::fs
