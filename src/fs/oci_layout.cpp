// OCI layout JSON via nlohmann/json. Every entry point catches json exceptions and returns an
// Error, so nothing throws past this file. Output keys are sorted, so rendering is deterministic.
#include "fs/oci_layout.h"

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "fs/sha256.h"

namespace stack::fs {

namespace {

using nlohmann::json;

json to_json(const Descriptor& d) {
  json j = {{"mediaType", d.media_type}, {"digest", d.digest}, {"size", d.size}};
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  return j;
}

Descriptor descriptor_from(const json& j) {
  Descriptor d;
  d.media_type = j.value("mediaType", "");
  d.digest = j.at("digest").get<std::string>();
  d.size = j.at("size").get<int64_t>();
  if (j.contains("annotations"))
    d.annotations = j.at("annotations").get<std::map<std::string, std::string>>();
  return d;
}

std::vector<std::string> strings_or_empty(const json& obj, const char* key) {
  if (!obj.contains(key) || obj.at(key).is_null()) return {};
  return obj.at(key).get<std::vector<std::string>>();
}

std::string string_or_empty(const json& obj, const char* key) {
  if (!obj.contains(key) || obj.at(key).is_null()) return {};
  return obj.at(key).get<std::string>();
}

}  // namespace

Result<OciIndex> parse_index(std::string_view text) {
  try {
    json j = json::parse(text);
    OciIndex index;
    if (j.contains("manifests"))
      for (const auto& m : j.at("manifests")) index.manifests.push_back(descriptor_from(m));
    return index;
  } catch (const json::exception& e) {
    return fail(std::string("parse index.json: ") + e.what());
  }
}

std::string render_index(const OciIndex& index) {
  json manifests = json::array();
  for (const auto& m : index.manifests) manifests.push_back(to_json(m));
  json j = {{"schemaVersion", 2}, {"mediaType", kMediaTypeIndex}, {"manifests", manifests}};
  return j.dump(2) + "\n";
}

Result<Manifest> parse_manifest(std::string_view text) {
  try {
    json j = json::parse(text);
    Manifest m;
    m.config = descriptor_from(j.at("config"));
    for (const auto& l : j.at("layers")) m.layers.push_back(descriptor_from(l));
    return m;
  } catch (const json::exception& e) {
    return fail(std::string("parse manifest: ") + e.what());
  }
}

std::string render_manifest(const Manifest& m) {
  json layers = json::array();
  for (const auto& l : m.layers) layers.push_back(to_json(l));
  json j = {{"schemaVersion", 2},
            {"mediaType", kMediaTypeManifest},
            {"config", to_json(m.config)},
            {"layers", layers}};
  return j.dump();
}

Result<ParsedConfig> parse_config(std::string_view text) {
  try {
    json j = json::parse(text);
    ParsedConfig p;
    if (j.contains("config") && j.at("config").is_object()) {
      const json& c = j.at("config");
      p.config.env = strings_or_empty(c, "Env");
      p.config.entrypoint = strings_or_empty(c, "Entrypoint");
      p.config.cmd = strings_or_empty(c, "Cmd");
      p.config.working_dir = string_or_empty(c, "WorkingDir");
      p.config.user = string_or_empty(c, "User");
      p.config.stop_signal = string_or_empty(c, "StopSignal");
    }
    p.diff_ids = strings_or_empty(j.at("rootfs"), "diff_ids");
    if (std::string created = string_or_empty(j, "created"); !created.empty())
      p.created = STACK_TRY_CTX(parse_rfc3339(created), "parse image config");
    return p;
  } catch (const json::exception& e) {
    return fail(std::string("parse image config: ") + e.what());
  }
}

std::string render_config(const std::vector<std::string>& diff_ids, int64_t created) {
  json j = {
      {"created", format_rfc3339(created)},
      {"architecture", "amd64"},
      {"os", "linux"},
      {"config", {{"Env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}}},
      {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}},
  };
  return j.dump();
}

std::string format_rfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<int64_t> parse_rfc3339(std::string_view s) {
  std::tm tm{};
  int consumed = 0;
  std::string str(s);
  if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6)
    return fail("invalid timestamp \"" + str + "\"");
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t t = static_cast<int64_t>(timegm(&tm));
  std::string_view rest = s.substr(static_cast<size_t>(consumed));
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') rest.remove_prefix(1);
  }
  if (rest == "Z" || rest == "z" || rest.empty()) return t;
  int oh = 0, om = 0;
  std::string off(rest.substr(1));
  if ((rest.front() != '+' && rest.front() != '-') ||
      std::sscanf(off.c_str(), "%2d:%2d", &oh, &om) != 2)
    return fail("invalid timestamp \"" + str + "\"");
  int64_t offset = oh * 3600 + om * 60;
  return rest.front() == '+' ? t - offset : t + offset;
}

Result<std::string> digest_hex(std::string_view digest) {
  if (!digest.starts_with("sha256:") || !is_sha256_hex(digest.substr(7)))
    return fail("unsupported digest \"" + std::string(digest) + "\"");
  return std::string(digest.substr(7));
}

}  // namespace stack::fs
