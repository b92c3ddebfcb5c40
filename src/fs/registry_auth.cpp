// WWW-Authenticate challenges (registry_auth.h) and the registries configuration (pull.h):
// where it lives and what it holds. Reads files; no network.
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
