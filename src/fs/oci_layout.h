// The JSON documents of an OCI image layout (index, manifest, image config): parsing into
// structs and rendering back. Private to src/fs; pure, no I/O. nlohmann exceptions stay inside.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "fs/image_store.h"

namespace stack::fs {

inline constexpr std::string_view kMediaTypeIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kMediaTypeManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kMediaTypeConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";

struct Descriptor {
  std::string media_type;
  std::string digest;  // "sha256:<hex>"
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
};

struct OciIndex {
  std::vector<Descriptor> manifests;
};

struct Manifest {
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct ParsedConfig {
  ImageConfig config;
  std::vector<std::string> diff_ids;  // "sha256:<hex>", lowest layer first
  int64_t created = 0;
};

[[nodiscard]] Result<OciIndex> parse_index(std::string_view json);
[[nodiscard]] std::string render_index(const OciIndex& index);
[[nodiscard]] Result<Manifest> parse_manifest(std::string_view json);
[[nodiscard]] std::string render_manifest(const Manifest& manifest);
[[nodiscard]] Result<ParsedConfig> parse_config(std::string_view json);
// A linux/amd64 config with the default PATH and the given layers.
[[nodiscard]] std::string render_config(const std::vector<std::string>& diff_ids, int64_t created);

[[nodiscard]] std::string format_rfc3339(int64_t unix_seconds);
// "2024-05-01T12:00:00.123Z" or with a "+02:00" offset -> unix seconds.
[[nodiscard]] Result<int64_t> parse_rfc3339(std::string_view s);

// "sha256:<hex>" -> "<hex>", or an error for anything else.
[[nodiscard]] Result<std::string> digest_hex(std::string_view digest);

}  // namespace stack::fs
