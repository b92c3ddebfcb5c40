// Registry pulls (the OCI distribution protocol over HTTPS, or HTTP for loopback and insecure
// registries): a reference resolved to a manifest (an index gives the platform's one), its
// config and layers downloaded in parallel, verified against their digests, resumed after a
// dropped connection, unpacked once into the store. Blocking: callers run it on a worker thread.
// The registries configuration (mirrors, insecure registries) is a JSON file, see below.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/registry_credentials.h"
#include "common/result.h"
#include "fs/image_store.h"

namespace stack::fs {

using Credentials = RegistryCredentials;  // common/registry_credentials.h

// /etc/stack/registries.json, or the file $STACK_REGISTRIES_CONFIG names:
//   {"mirrors":  {"docker.io": ["https://mirror.example.com", "http://127.0.0.1:5000"]},
//    "insecure": ["registry.lan:5000"],
//    "blocked":  ["docker.io"]}
// Mirrors are tried in order before the registry itself. A blocked registry (or mirror) is never
// contacted; "*" blocks every one not on loopback (what the tests use: they may send traffic
// only to this machine). An insecure registry is reached over
// HTTPS without certificate checks, or over plain HTTP; loopback registries are insecure
// without being listed, as in Docker.
struct RegistryConfig {
  std::map<std::string, std::vector<std::string>> mirrors;  // registry -> base URLs
  std::vector<std::string> insecure;                        // "host[:port]"
  std::vector<std::string> blocked;  // "host[:port]" or registry name; "*": all but loopback
};
[[nodiscard]] std::filesystem::path default_registries_config();
// An absent file is an empty configuration; a malformed one an error naming it.
[[nodiscard]] Result<RegistryConfig> load_registries_config(const std::filesystem::path& file);

// What a pull reports as it goes, from its worker threads, one call at a time.
struct PullEvent {
  enum class Kind { resolving, resolved, layer, done } kind = Kind::resolving;
  std::string reference;  // canonical
  std::string digest;     // resolved: the manifest's; layer: the layer blob's
  std::string id;         // layer: its short id (12 hex digits of the blob digest)
  // layer: "Waiting", "Already exists", "Downloading", "Retrying", "Verifying", "Extracting",
  // "Pull complete"
  std::string status;
  uint64_t current = 0, total = 0;  // bytes of this layer
  std::string message;              // "Retrying in 2s: connection reset"
  int layers = 0;                   // resolved: how many layers the image has
};

struct RetryPolicy {
  int attempts = 6;  // per request: the first and 5 more
  std::chrono::milliseconds first_delay{250};
  std::chrono::milliseconds max_delay{8'000};
};

struct PullRequest {
  std::string reference;  // "busybox", "reg:5000/app@sha256:..."
  std::string platform = "linux/amd64";
  std::optional<Credentials> credentials;  // else looked up in AUTH_FILE
  // The daemon's own (its user's), for its own pulls only; never a path from an API request
  // (the CLI sends credentials). Empty: none looked up (a client's pull or push uses only the
  // credential its request carries, as docker's X-Registry-Auth).
  std::filesystem::path auth_file = default_auth_file();
  std::filesystem::path registries_config = default_registries_config();
  std::function<void(const PullEvent&)> progress;
  const std::atomic<bool>* cancel = nullptr;  // set: the pull stops at its next read
  RetryPolicy retry;
  int max_concurrent_layers = 3;  // as docker's max-concurrent-downloads
  long stall_seconds = 30;        // a connection idle this long counts as dropped
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();  // pulled_at
};

// Pulls REQUEST.reference into STORE and names it (a previous image of the name stays,
// untagged). Layers whose blob and unpacked directory are present are not downloaded again.
[[nodiscard]] Result<Image> pull_image(ImageStore& store, const PullRequest& request);

// `stack login`: CREDENTIALS are accepted by REGISTRY ("docker.io", "reg:5000"): its /v2/
// answers 200 with them (after a token exchange, for a token-authenticating registry).
[[nodiscard]] Result<void> check_login(
    const std::string& registry, const Credentials& credentials,
    const std::filesystem::path& registries_config = default_registries_config());

}  // namespace stack::fs
