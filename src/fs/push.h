// Registry pushes (the OCI distribution protocol, as fs/pull.h's pulls): an image of the store
// uploaded to the registry its name gives — each blob asked for first (HEAD) and uploaded only
// when missing (POST, then one PUT of the whole blob), then the stored manifest PUT by tag,
// byte for byte, so the registry serves it under the digest the store has. Blocking: callers
// run it on a worker thread. Credentials and registries configuration as for pulls.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "common/result.h"
#include "fs/image_store.h"
#include "fs/pull.h"

namespace stack::fs {

struct PushRequest {
  std::string reference;  // a name in the store: "127.0.0.1:5000/team/app:1"
  std::optional<Credentials> credentials;  // else looked up in AUTH_FILE
  // The daemon's own (its user's), for its own pulls only; never a path from an API request
  // (the CLI sends credentials). Empty: none looked up (a client's pull or push uses only the
  // credential its request carries, as docker's X-Registry-Auth).
  std::filesystem::path auth_file = default_auth_file();
  std::filesystem::path registries_config = default_registries_config();
  // Events of kind resolved (the manifest's digest, the layer count), layer ("Preparing",
  // "Waiting", "Pushing", "Retrying", "Layer already exists", "Pushed"), done (the digest).
  std::function<void(const PullEvent&)> progress;
  const std::atomic<bool>* cancel = nullptr;  // set: the push stops at its next request
  RetryPolicy retry;
  int max_concurrent_layers = 3;  // as docker's max-concurrent-uploads (5) on 2 cores
  long stall_seconds = 30;
};

struct Pushed {
  std::string reference;  // canonical
  std::string digest;     // the manifest's, as stored and as the registry now serves it
  int64_t size = 0;       // of the manifest
  int layers = 0;
  int existed = 0;  // blobs (layers and config) the registry had already
};

// Pushes REQUEST.reference (an image of STORE; its layer blobs must be there) to its registry.
[[nodiscard]] Result<Pushed> push_image(ImageStore& store, const PushRequest& request);

}  // namespace stack::fs
