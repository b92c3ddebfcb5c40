// The JSON documents of images (OCI and Docker schema 2): index / manifest list, manifest and
// image config, parsed into structs and rendered back. Private to src/fs; pure, no I/O.
// nlohmann exceptions stay inside: every entry point returns a Result.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "fs/image_store.h"

namespace stack::fs {

inline constexpr std::string_view kMediaTypeIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kMediaTypeManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kMediaTypeConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";
// containerd's (and docker's) full image name in an OCI archive's index.
inline constexpr std::string_view kContainerdNameAnnotation = "io.containerd.image.name";
// Our own, on index.json entries: when the reference was last pulled, and the digest the
// registry served for it (an index's, for a multi-platform image).
inline constexpr std::string_view kPulledAtAnnotation = "io.stack.pulled-at";
inline constexpr std::string_view kRepoDigestAnnotation = "io.stack.repo-digest";

struct Platform {
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant;                    // "v8" for arm64, "" mostly
  [[nodiscard]] std::string str() const;  // "linux/amd64", "linux/arm64/v8"
};
// "linux/amd64", "linux/arm64/v8", "amd64" (linux implied). Error for an empty part.
[[nodiscard]] Result<Platform> parse_platform(std::string_view s);

struct Descriptor {
  std::string media_type;
  std::string digest;  // "sha256:<hex>"
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;  // in an index
};

// An OCI index or a Docker manifest list (and our own index.json).
struct OciIndex {
  std::string media_type;
  std::vector<Descriptor> manifests;
};

struct Manifest {
  std::string media_type;  // OCI or Docker schema 2
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct ParsedConfig {
  ImageConfig config;
  std::vector<std::string> diff_ids;  // "sha256:<hex>", lowest layer first
  int64_t created = 0;
  Platform platform;
};

// What a document fetched or read is, by its mediaType field (or its shape when absent).
enum class DocumentKind { index, manifest, schema1, unknown };
[[nodiscard]] DocumentKind document_kind(std::string_view json, std::string_view content_type);
[[nodiscard]] bool is_index_type(std::string_view media_type);
[[nodiscard]] bool is_manifest_type(std::string_view media_type);

[[nodiscard]] Result<OciIndex> parse_index(std::string_view json);
[[nodiscard]] std::string render_index(const OciIndex& index);
[[nodiscard]] Result<Manifest> parse_manifest(std::string_view json);
[[nodiscard]] std::string render_manifest(const Manifest& manifest);
[[nodiscard]] Result<ParsedConfig> parse_config(std::string_view json);
// A linux/amd64 config with the default PATH and the given layers.
[[nodiscard]] std::string render_config(const std::vector<std::string>& diff_ids, int64_t created);

// The manifest of INDEX for PLATFORM: exact os/architecture, the variant when asked for (and
// "v8" taken for an unspecified arm64 variant, as containerd does). Error listing what the index
// offers when none fits.
[[nodiscard]] Result<Descriptor> choose_platform(const OciIndex& index, const Platform& platform);

[[nodiscard]] std::string format_rfc3339(int64_t unix_seconds);
// "2024-05-01T12:00:00.123Z" or with a "+02:00" offset -> unix seconds.
[[nodiscard]] Result<int64_t> parse_rfc3339(std::string_view s);

// "sha256:<hex>" -> "<hex>", or an error for anything else.
[[nodiscard]] Result<std::string> digest_hex(std::string_view digest);

}  // namespace stack::fs
