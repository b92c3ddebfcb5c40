// OCI and Docker schema 2 JSON via nlohmann/json. Every entry point catches json exceptions and
// returns an Error, so nothing throws past this file. Output keys are sorted, so rendering is
// deterministic (a re-rendered document has the same digest).
#include "fs/oci_layout.h"

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "fs/sha256.h"

namespace stack::fs {

namespace {

using nlohmann::json;

json to_json(const Descriptor& d) {
  json j = {{"mediaType", d.media_type}, {"digest", d.digest}, {"size", d.size}};
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  if (d.platform) {
    json p = {{"os", d.platform->os}, {"architecture", d.platform->architecture}};
    if (!d.platform->variant.empty()) p["variant"] = d.platform->variant;
    j["platform"] = p;
  }
  return j;
}

std::string string_or_empty(const json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || obj.at(key).is_null()) return {};
  return obj.at(key).get<std::string>();
}

std::vector<std::string> strings_or_empty(const json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || obj.at(key).is_null()) return {};
  return obj.at(key).get<std::vector<std::string>>();
}

// The keys of an object ({"80/tcp": {}}), sorted: ExposedPorts and Volumes.
std::vector<std::string> keys_or_empty(const json& obj, const char* key) {
  std::vector<std::string> out;
  if (!obj.is_object() || !obj.contains(key) || !obj.at(key).is_object()) return out;
  for (const auto& [k, _] : obj.at(key).items()) out.push_back(k);
  return out;
}

int64_t int_or_zero(const json& obj, const char* key) {
  if (!obj.contains(key) || !obj.at(key).is_number()) return 0;
  return obj.at(key).get<int64_t>();
}

Descriptor descriptor_from(const json& j) {
  Descriptor d;
  d.media_type = string_or_empty(j, "mediaType");
  d.digest = j.at("digest").get<std::string>();
  d.size = j.at("size").get<int64_t>();
  if (j.contains("annotations") && j.at("annotations").is_object())
    d.annotations = j.at("annotations").get<std::map<std::string, std::string>>();
  if (j.contains("platform") && j.at("platform").is_object()) {
    const json& p = j.at("platform");
    d.platform = Platform{string_or_empty(p, "os"), string_or_empty(p, "architecture"),
                          string_or_empty(p, "variant")};
  }
  if (auto hex = digest_hex(d.digest); !hex) throw std::runtime_error(hex.error().message);
  if (d.size < 0) throw std::runtime_error("negative size in a descriptor");
  return d;
}

std::optional<HealthConfig> health_from(const json& c) {
  if (!c.contains("Healthcheck") || !c.at("Healthcheck").is_object()) return std::nullopt;
  const json& h = c.at("Healthcheck");
  HealthConfig out;
  out.test = strings_or_empty(h, "Test");
  out.interval_ns = int_or_zero(h, "Interval");
  out.timeout_ns = int_or_zero(h, "Timeout");
  out.start_period_ns = int_or_zero(h, "StartPeriod");
  out.start_interval_ns = int_or_zero(h, "StartInterval");
  out.retries = static_cast<int>(int_or_zero(h, "Retries"));
  return out;
}

}  // namespace

std::string Platform::str() const {
  return os + "/" + architecture + (variant.empty() ? "" : "/" + variant);
}

Result<Platform> parse_platform(std::string_view s) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t slash = s.find('/', start);
    parts.emplace_back(s.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() == 1) parts.insert(parts.begin(), "linux");
  if (parts.size() > 3) return fail("invalid platform \"" + std::string(s) + "\"");
  for (const auto& p : parts)
    if (p.empty()) return fail("invalid platform \"" + std::string(s) + "\"");
  Platform out{parts[0], parts[1], parts.size() == 3 ? parts[2] : ""};
  if (out.architecture == "x86_64") out.architecture = "amd64";
  if (out.architecture == "aarch64") out.architecture = "arm64";
  return out;
}

bool is_index_type(std::string_view t) { return t == kMediaTypeIndex || t == kDockerManifestList; }
bool is_manifest_type(std::string_view t) {
  return t == kMediaTypeManifest || t == kDockerManifest;
}

DocumentKind document_kind(std::string_view text, std::string_view content_type) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return DocumentKind::unknown;
  std::string mt = j.contains("mediaType") && j["mediaType"].is_string()
                       ? j["mediaType"].get<std::string>()
                       : std::string(content_type.substr(0, content_type.find(';')));
  if (is_index_type(mt)) return DocumentKind::index;
  if (is_manifest_type(mt)) return DocumentKind::manifest;
  if (j.value("schemaVersion", 0) == 1 || mt.find("prettyjws") != std::string::npos ||
      mt == "application/vnd.docker.distribution.manifest.v1+json")
    return DocumentKind::schema1;
  // An OCI document may omit mediaType: its shape says what it is.
  if (j.contains("manifests")) return DocumentKind::index;
  if (j.contains("config") && j.contains("layers")) return DocumentKind::manifest;
  return DocumentKind::unknown;
}

Result<OciIndex> parse_index(std::string_view text) {
  try {
    json j = json::parse(text);
    OciIndex index;
    index.media_type = string_or_empty(j, "mediaType");
    if (j.contains("manifests"))
      for (const auto& m : j.at("manifests")) index.manifests.push_back(descriptor_from(m));
    return index;
  } catch (const std::exception& e) {
    return fail(std::string("parse index: ") + e.what());
  }
}

std::string render_index(const OciIndex& index) {
  json manifests = json::array();
  for (const auto& m : index.manifests) manifests.push_back(to_json(m));
  json j = {
      {"schemaVersion", 2},
      {"mediaType", index.media_type.empty() ? std::string(kMediaTypeIndex) : index.media_type},
      {"manifests", manifests}};
  return j.dump(2) + "\n";
}

Result<Manifest> parse_manifest(std::string_view text) {
  try {
    json j = json::parse(text);
    Manifest m;
    m.media_type = string_or_empty(j, "mediaType");
    if (m.media_type.empty()) m.media_type = kMediaTypeManifest;
    m.config = descriptor_from(j.at("config"));
    for (const auto& l : j.at("layers")) m.layers.push_back(descriptor_from(l));
    return m;
  } catch (const std::exception& e) {
    return fail(std::string("parse manifest: ") + e.what());
  }
}

std::string render_manifest(const Manifest& m) {
  json layers = json::array();
  for (const auto& l : m.layers) layers.push_back(to_json(l));
  json j = {{"schemaVersion", 2},
            {"mediaType", m.media_type.empty() ? std::string(kMediaTypeManifest) : m.media_type},
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
      p.config.exposed_ports = keys_or_empty(c, "ExposedPorts");
      p.config.volumes = keys_or_empty(c, "Volumes");
      p.config.healthcheck = health_from(c);
      if (c.contains("Labels") && c.at("Labels").is_object())
        for (const auto& [k, v] : c.at("Labels").items())
          if (v.is_string()) p.config.labels[k] = v.get<std::string>();
    }
    p.platform = Platform{string_or_empty(j, "os"), string_or_empty(j, "architecture"),
                          string_or_empty(j, "variant")};
    p.diff_ids = strings_or_empty(j.at("rootfs"), "diff_ids");
    for (const auto& d : p.diff_ids)
      if (auto hex = digest_hex(d); !hex) return fail(hex.error().wrap("parse image config"));
    if (std::string created = string_or_empty(j, "created"); !created.empty())
      p.created = STACK_TRY_CTX(parse_rfc3339(created), "parse image config");
    return p;
  } catch (const std::exception& e) {
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

Result<Descriptor> choose_platform(const OciIndex& index, const Platform& want) {
  auto variant_fits = [&](const Platform& p) {
    if (want.variant.empty()) return true;
    if (p.variant == want.variant) return true;
    return want.architecture == "arm64" && want.variant == "v8" && p.variant.empty();
  };
  const Descriptor* best = nullptr;
  std::string offered;
  for (const auto& d : index.manifests) {
    if (!d.platform) continue;
    const Platform& p = *d.platform;
    if (p.architecture == "unknown") continue;  // buildkit's attestation manifests
    offered += (offered.empty() ? "" : ", ") + p.str();
    if (p.os != want.os || p.architecture != want.architecture || !variant_fits(p)) continue;
    if (!is_manifest_type(d.media_type) && !d.media_type.empty()) continue;
    if (!best) best = &d;
  }
  if (best) return *best;
  if (index.manifests.size() == 1 && !index.manifests[0].platform) return index.manifests[0];
  return fail("no image for platform " + want.str() +
              " (the index has: " + (offered.empty() ? "no platforms" : offered) + ")");
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
