// A client of one repository on a registry (its mirrors first): manifests and blobs by the OCI
// distribution API, read (pull) and written (push: blob HEAD, monolithic upload, manifest PUT),
// with token or basic authentication on a 401, HTTPS (HTTP for loopback and insecure
// registries), retries with backoff and Range resumption. Private to src/fs; blocking; one
// client may serve several threads (a pull's or a push's layers).
#pragma once

#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "fs/oci_layout.h"
#include "fs/pull.h"
#include "fs/reference.h"
#include "fs/registry_http.h"

namespace stack::fs {

class BlobWriter;

class RegistryClient {
 public:
  // CANCELLED is asked often; true stops every request of the client.
  RegistryClient(Reference ref, const RegistryConfig& config, std::optional<Credentials> creds,
                 const PullRequest& tuning, std::function<bool()> cancelled);

  struct Document {
    std::string body;
    std::string content_type;
    std::string digest;  // "sha256:<hex>" of BODY
  };
  // The manifest or index TAG_OR_DIGEST names. By digest, the body must have it; by tag, the
  // Docker-Content-Digest the registry announces must match the body.
  [[nodiscard]] Result<Document> manifest(std::string_view tag_or_digest);

  // PROGRESS hears bytes received and, before a retry, why and when.
  using BlobProgress = std::function<void(uint64_t current, const std::string& retrying)>;
  // Downloads blob D into W (resuming from what W holds after a dropped connection), then
  // commits it: size and digest checked.
  [[nodiscard]] Result<void> blob(const Descriptor& d, BlobWriter& w, const BlobProgress& progress);

  // Pushing: tokens are asked for "pull,push" on the repository. Make the client with a
  // configuration without mirrors (a push goes to the registry itself).
  void for_push() { actions_ = "pull,push"; }
  // HEAD of blob DIGEST: whether the repository has it.
  [[nodiscard]] Result<bool> has_blob(const std::string& digest);
  // Uploads FILE as blob D (POST, then one PUT of the whole file with ?digest=), retried whole
  // after a transient failure. SENT hears the bytes sent of the current try.
  [[nodiscard]] Result<void> upload_blob(const Descriptor& d, const std::filesystem::path& file,
                                         const std::function<void(uint64_t sent)>& sent);
  // PUT of manifest BODY (exactly these bytes: its digest is kept) as TAG_OR_DIGEST; returns
  // its digest, checked against the one the registry announces.
  [[nodiscard]] Result<std::string> put_manifest(std::string_view tag_or_digest,
                                                 const std::string& body,
                                                 const std::string& media_type);

  // GET /v2/ with the credentials: 200 (after a token exchange when the registry asks).
  [[nodiscard]] Result<void> ping();
  // False when the registries configuration blocks the registry and every mirror of it.
  [[nodiscard]] bool reachable() const { return !endpoints_.empty(); }

 private:
  struct Endpoint {
    std::string base;  // "https://registry-1.docker.io"
    bool verify_tls = true;
    bool http_fallback = false;  // insecure: plain HTTP when HTTPS fails
    bool mirror = false;
  };
  Result<HttpResponse> get(const std::string& path, std::vector<std::string> headers,
                           std::function<bool(const char*, size_t)> on_body = {},
                           int64_t resume_from = 0);
  // PROTO (method, headers, body...) to PATH on each endpoint in turn, authenticating on a 401.
  // PATH is "/v2/..." or an absolute URL the registry gave (an upload's Location).
  Result<HttpResponse> send(const std::string& path, const HttpRequest& proto);
  Result<HttpResponse> send_at(Endpoint& e, const std::string& path, HttpRequest req);
  // One upload session: POST, then PUT of the whole FILE.
  Result<HttpResponse> upload_once(const Descriptor& d, const std::filesystem::path& file,
                                   const std::function<void(uint64_t)>& sent);
  Result<void> authenticate(const std::string& challenge_header, const std::string& endpoint);
  // Sleeps before retry ATTEMPT; false when cancelled meanwhile.
  bool backoff(int attempt);

  Reference ref_;
  std::vector<std::string> blocked_;  // the configuration's: an upload's Location is checked
  std::string actions_ = "pull";      // a token's scope on the repository
  std::optional<Credentials> creds_;
  std::function<bool()> cancelled_;
  RetryPolicy retry_;
  long stall_seconds_;
  std::mutex mu_;  // guards the two below: the pull's threads share the token
  std::vector<Endpoint> endpoints_;
  std::string authorization_;  // "Bearer ..." or "Basic ..."
};

// True for localhost, 127.0.0.0/8 and ::1 (with or without a port).
[[nodiscard]] bool is_loopback_registry(std::string_view host);
// HOST (or a registry name) is in CONFIG's "blocked", or "*" is and HOST is not on loopback.
[[nodiscard]] bool registry_blocked(const RegistryConfig& config, std::string_view host);

}  // namespace stack::fs
