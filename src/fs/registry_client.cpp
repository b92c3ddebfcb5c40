// RegistryClient (registry_client.h). Each request tries the mirrors, then the registry; a 401
// gets one authentication (a bearer token from the challenge's realm, or basic credentials) and
// one more try; transient failures are retried with doubling delays, blobs resumed with Range.
#include "fs/registry_client.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/base64.h"
#include "fs/registry_auth.h"
#include "fs/sha256.h"
#include "fs/store_internal.h"

namespace stack::fs {

namespace {

const std::string kAcceptManifests =
    "Accept: " + std::string(kMediaTypeManifest) + ", " + std::string(kMediaTypeIndex) + ", " +
    std::string(kDockerManifest) + ", " + std::string(kDockerManifestList);

std::string url_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string status_error(const HttpResponse& r) {
  // The registry's error body: {"errors": [{"code": "...", "message": "..."}]}.
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  std::string what;
  if (j.is_object() && j.contains("errors") && j["errors"].is_array())
    for (const auto& e : j["errors"])
      if (e.is_object())
        what += (what.empty() ? "" : "; ") + e.value("code", std::string()) + " " +
                e.value("message", std::string());
  return "HTTP " + std::to_string(r.status) + (what.empty() ? "" : " (" + what + ")");
}

bool retryable_status(long s) { return s == 429 || s >= 500; }

}  // namespace

bool is_loopback_registry(std::string_view host) {
  std::string_view h = host;
  if (h.starts_with("[")) {
    size_t close = h.find(']');
    return close != std::string_view::npos && h.substr(1, close - 1) == "::1";
  }
  h = h.substr(0, h.find(':'));
  return h == "localhost" || h.starts_with("127.");
}

bool registry_blocked(const RegistryConfig& config, std::string_view host) {
  for (const auto& b : config.blocked)
    if (b == host || (b == "*" && !is_loopback_registry(host))) return true;
  return false;
}

RegistryClient::RegistryClient(Reference ref, const RegistryConfig& config,
                               std::optional<Credentials> creds, const PullRequest& tuning,
                               std::function<bool()> cancelled)
    : ref_(std::move(ref)),
      blocked_(config.blocked),
      creds_(std::move(creds)),
      cancelled_(std::move(cancelled)),
      retry_(tuning.retry),
      stall_seconds_(tuning.stall_seconds) {
  if (auto it = config.mirrors.find(ref_.domain); it != config.mirrors.end())
    for (const auto& url : it->second) {
      std::string host = url.substr(url.find("://") + 3);
      host = host.substr(0, host.find('/'));
      if (registry_blocked(config, host)) continue;
      bool insecure =
          is_loopback_registry(host) ||
          std::find(config.insecure.begin(), config.insecure.end(), host) != config.insecure.end();
      endpoints_.push_back({url, !insecure, false, true});
    }
  std::string host = ref_.domain == kDockerHub ? "registry-1.docker.io" : ref_.domain;
  bool insecure = is_loopback_registry(host) ||
                  std::find(config.insecure.begin(), config.insecure.end(), ref_.domain) !=
                      config.insecure.end();
  if (!registry_blocked(config, ref_.domain) && !registry_blocked(config, host))
    endpoints_.push_back({"https://" + host, !insecure, insecure, false});
}

bool RegistryClient::backoff(int attempt) {
  auto delay = retry_.first_delay;
  for (int i = 1; i < attempt && delay < retry_.max_delay; i++) delay *= 2;
  delay = std::min(delay, retry_.max_delay);
  auto until = std::chrono::steady_clock::now() + delay;
  while (std::chrono::steady_clock::now() < until) {
    if (cancelled_ && cancelled_()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

Result<HttpResponse> RegistryClient::send_at(Endpoint& shared, const std::string& path,
                                             HttpRequest req) {
  Endpoint e;
  std::string auth;
  {
    std::lock_guard lock(mu_);
    e = shared;
    auth = authorization_;
  }
  bool absolute = path.starts_with("http://") || path.starts_with("https://");
  req.url = absolute ? path : e.base + path;
  if (absolute) {
    // An upload's Location: the registry's own (the usual case) or another service, which is
    // held to the blocked list as the registry is and gets none of its credentials.
    std::string host = path.substr(path.find("://") + 3);
    host = host.substr(0, host.find('/'));
    RegistryConfig blocked{{}, {}, blocked_};
    if (registry_blocked(blocked, host))
      return fail("the registry sent stack to " + host + ", which is blocked");
    if (!path.starts_with(e.base + "/")) auth.clear();
  }
  req.verify_tls = e.verify_tls;
  req.cancelled = cancelled_;
  req.stall_seconds = stall_seconds_;
  if (!auth.empty()) req.headers.push_back("Authorization: " + auth);
  // Probing an insecure registry for TLS: a plain-HTTP server may never answer the handshake.
  bool probing = !absolute && e.http_fallback && e.base.starts_with("https://");
  if (probing) req.connect_seconds = 3;
  auto r = http_request(req);
  if (!r && probing) {
    // An insecure registry that does not speak TLS: plain HTTP from now on, as docker does.
    std::string http = "http://" + e.base.substr(8);
    req.url = http + path;
    auto plain = http_request(req);
    if (plain) {
      std::lock_guard lock(mu_);
      shared.base = http;
    }
    return plain;
  }
  return r;
}

Result<HttpResponse> RegistryClient::get(const std::string& path, std::vector<std::string> headers,
                                         std::function<bool(const char*, size_t)> on_body,
                                         int64_t resume_from) {
  HttpRequest proto;
  proto.headers = std::move(headers);
  proto.on_body = std::move(on_body);
  proto.resume_from = resume_from;
  return send(path, proto);
}

Result<HttpResponse> RegistryClient::send(const std::string& path, const HttpRequest& proto) {
  size_t count;
  {
    std::lock_guard lock(mu_);
    count = endpoints_.size();
  }
  Result<HttpResponse> last = fail("no registry endpoint");
  for (size_t i = 0; i < count; i++) {
    Endpoint& e = endpoints_[i];
    bool mirror = e.mirror;
    for (int round = 0; round < 2; round++) {
      last = send_at(e, path, proto);
      if (!last || last->status != 401 || round == 1) break;
      std::string challenge = last->headers.count("www-authenticate")
                                  ? last->headers.at("www-authenticate")
                                  : std::string();
      if (auto a = authenticate(challenge, e.base); !a) return fail(a.error());
    }
    // A mirror that fails or lacks it: the next one, then the registry itself.
    if (mirror && (!last || last->status == 404 || last->status >= 500)) continue;
    return last;
  }
  return last;
}

Result<void> RegistryClient::authenticate(const std::string& header, const std::string& endpoint) {
  auto challenges = parse_challenges(header);
  std::string who = ref_.domain;
  for (const auto& c : challenges) {
    if (c.scheme == "basic") {
      if (!creds_)
        return fail("unauthorized: " + who + " asks for a login (stack login " + who + ")");
      std::lock_guard lock(mu_);
      authorization_ = "Basic " + base64_encode(creds_->username + ":" + creds_->password);
      return {};
    }
    if (c.scheme != "bearer") continue;
    auto realm = c.params.find("realm");
    if (realm == c.params.end() ||
        (!realm->second.starts_with("https://") && !realm->second.starts_with("http://")))
      return fail(who + ": a bearer challenge without an http(s) realm");
    std::string url = realm->second;
    std::string sep = url.find('?') == std::string::npos ? "?" : "&";
    if (auto s = c.params.find("service"); s != c.params.end()) {
      url += sep + "service=" + url_escape(s->second);
      sep = "&";
    }
    auto scope = c.params.find("scope");
    // A login (no repository) asks for no scope, as docker login does.
    if (scope != c.params.end() || !ref_.path.empty())
      url +=
          sep + "scope=" +
          url_escape(scope != c.params.end() ? scope->second
                                             : "repository:" + ref_.path + ":" + actions_);
    HttpRequest req{url, {}, true, 0, {}, cancelled_, stall_seconds_};
    // The token service of an insecure (loopback) registry is as trusted as the registry.
    req.verify_tls = endpoint.starts_with("http://") || !is_loopback_registry(ref_.domain);
    if (creds_ && !creds_->username.empty())
      req.headers.push_back("Authorization: Basic " +
                            base64_encode(creds_->username + ":" + creds_->password));
    auto r = http_request(req);
    if (!r) return fail(r.error().wrap("token from " + realm->second));
    if (r->status == 401 || r->status == 403)
      return fail("unauthorized: the token service of " + who + " refused " +
                  (creds_ ? "the credentials (stack login " + who + ")"
                          : "an anonymous " + std::string(actions_ == "pull" ? "pull" : "push")));
    if (r->status != 200)
      return fail("token from " + realm->second + ": " + status_error(*r),
                  retryable_status(r->status) ? kTransient : 0);
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    std::string token;
    if (j.is_object()) {
      if (j.contains("token") && j["token"].is_string())
        token = j["token"];
      else if (j.contains("access_token") && j["access_token"].is_string())
        token = j["access_token"];
    }
    if (token.empty()) return fail("token from " + realm->second + ": no token in the answer");
    std::lock_guard lock(mu_);
    authorization_ = "Bearer " + token;
    return {};
  }
  return fail("unauthorized: " + who + " answered 401 without a challenge stack knows (" +
              (header.empty() ? "none" : header) + ")");
}

Result<RegistryClient::Document> RegistryClient::manifest(std::string_view tag_or_digest) {
  std::string path = "/v2/" + ref_.path + "/manifests/" + std::string(tag_or_digest);
  std::string ctx = "manifest " + ref_.name() + ":" + std::string(tag_or_digest);
  for (int attempt = 1;; attempt++) {
    auto r = get(path, {kAcceptManifests});
    bool transient =
        (!r && r.error().sys_errno == kTransient) || (r && retryable_status(r->status));
    if (transient && attempt < retry_.attempts) {
      if (!backoff(attempt)) return fail(ctx + ": cancelled");
      continue;
    }
    if (!r) return fail(r.error().wrap(ctx));
    if (r->status == 404) return fail(ctx + ": not found (" + status_error(*r) + ")");
    if (r->status != 200) return fail(ctx + ": " + status_error(*r));
    Document doc{std::move(r->body), r->headers["content-type"], ""};
    doc.digest = "sha256:" + sha256_hex(doc.body);
    if (tag_or_digest.starts_with("sha256:") && doc.digest != tag_or_digest)
      return fail(ctx + ": the registry sent a document whose digest is " + doc.digest);
    if (auto d = r->headers.find("docker-content-digest");
        d != r->headers.end() && d->second.starts_with("sha256:") && d->second != doc.digest)
      return fail(ctx + ": the registry announced " + d->second + " but sent " + doc.digest);
    return doc;
  }
}

Result<void> RegistryClient::blob(const Descriptor& d, BlobWriter& w,
                                  const BlobProgress& progress) {
  std::string path = "/v2/" + ref_.path + "/blobs/" + d.digest;
  std::string ctx = "blob " + d.digest;
  bool overflow = false;
  auto sink = [&](const char* data, size_t n) {
    if (d.size >= 0 && w.size() + n > static_cast<uint64_t>(d.size)) {
      overflow = true;
      return false;
    }
    if (!w.write(data, n)) return false;
    if (progress) progress(w.size(), "");
    return true;
  };
  for (int attempt = 1;; attempt++) {
    int64_t from = static_cast<int64_t>(w.size());
    if (d.size >= 0 && from >= d.size) break;  // all there: the digest decides
    auto r = get(path, {}, sink, from);
    if (overflow)
      return fail(ctx + ": the registry sent more than the " + std::to_string(d.size) +
                  " bytes the manifest gives");
    if (r && from > 0 && (r->status == 200 || r->status == 416)) {
      // The server ignored (or refused) the range: start again from the first byte.
      if (auto t = w.restart(); !t) return fail(t.error());
      continue;
    }
    if (r && (r->status == 200 || r->status == 206)) break;
    bool transient =
        (!r && r.error().sys_errno == kTransient) || (r && retryable_status(r->status));
    std::string why = r ? status_error(*r) : r.error().message;
    if (!transient || attempt >= retry_.attempts)
      return fail(ctx + (attempt > 1 ? " (after " + std::to_string(attempt) + " attempts)" : "") +
                  ": " + why);
    if (progress) progress(w.size(), why);
    if (!backoff(attempt)) return fail(ctx + ": cancelled");
  }
  auto committed = w.commit(d.digest, d.size);
  if (!committed) return fail(committed.error().wrap(ctx));
  return {};
}

Result<bool> RegistryClient::has_blob(const std::string& digest) {
  HttpRequest head;
  head.method = "HEAD";
  std::string ctx = "blob " + digest;
  for (int attempt = 1;; attempt++) {
    auto r = send("/v2/" + ref_.path + "/blobs/" + digest, head);
    bool transient =
        (!r && r.error().sys_errno == kTransient) || (r && retryable_status(r->status));
    if (transient && attempt < retry_.attempts) {
      if (!backoff(attempt)) return fail(ctx + ": cancelled");
      continue;
    }
    if (!r) return fail(r.error().wrap(ctx));
    if (r->status == 200) return true;
    if (r->status == 404) return false;
    return fail(ctx + ": " + status_error(*r));
  }
}

Result<HttpResponse> RegistryClient::upload_once(const Descriptor& d,
                                                 const std::filesystem::path& file,
                                                 const std::function<void(uint64_t)>& sent) {
  HttpRequest post;
  post.method = "POST";
  auto started = send("/v2/" + ref_.path + "/blobs/uploads/", post);
  if (!started || started->status != 202) return started;
  auto location = started->headers.find("location");
  if (location == started->headers.end() || location->second.empty())
    return fail("the registry started an upload without a Location");
  std::string url = location->second;
  url += (url.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") +
         url_escape(d.digest);
  HttpRequest put;
  put.method = "PUT";
  put.headers = {"Content-Type: application/octet-stream"};
  put.body_file = file;
  put.on_sent = sent;
  return send(url, put);
}

Result<void> RegistryClient::upload_blob(const Descriptor& d, const std::filesystem::path& file,
                                         const std::function<void(uint64_t)>& sent) {
  std::string ctx = "upload blob " + d.digest;
  for (int attempt = 1;; attempt++) {
    auto r = upload_once(d, file, sent);
    if (r && r->status == 201) return {};
    bool transient =
        (!r && r.error().sys_errno == kTransient) || (r && retryable_status(r->status));
    std::string why = r ? status_error(*r) : r.error().message;
    if (r && (r->status == 401 || r->status == 403))
      why = "denied: " + why + (creds_ ? "" : " (stack login " + ref_.domain + ")");
    if (!transient || attempt >= retry_.attempts)
      return fail(ctx + (attempt > 1 ? " (after " + std::to_string(attempt) + " attempts)" : "") +
                  ": " + why);
    if (!backoff(attempt)) return fail(ctx + ": cancelled");
  }
}

Result<std::string> RegistryClient::put_manifest(std::string_view tag_or_digest,
                                                 const std::string& body,
                                                 const std::string& media_type) {
  std::string ctx = "manifest " + ref_.name() + ":" + std::string(tag_or_digest);
  std::string digest = "sha256:" + sha256_hex(body);
  HttpRequest put;
  put.method = "PUT";
  put.headers = {"Content-Type: " + media_type};
  put.body = body;
  for (int attempt = 1;; attempt++) {
    auto r = send("/v2/" + ref_.path + "/manifests/" + std::string(tag_or_digest), put);
    bool transient =
        (!r && r.error().sys_errno == kTransient) || (r && retryable_status(r->status));
    if (transient && attempt < retry_.attempts) {
      if (!backoff(attempt)) return fail(ctx + ": cancelled");
      continue;
    }
    if (!r) return fail(r.error().wrap(ctx));
    if (r->status != 201 && r->status != 200) return fail(ctx + ": " + status_error(*r));
    if (auto a = r->headers.find("docker-content-digest");
        a != r->headers.end() && a->second.starts_with("sha256:") && a->second != digest)
      return fail(ctx + ": the registry stored it as " + a->second + ", not " + digest);
    return digest;
  }
}

Result<void> RegistryClient::ping() {
  for (int attempt = 1;; attempt++) {
    auto r = get("/v2/", {});
    bool transient =
        (!r && r.error().sys_errno == kTransient) || (r && retryable_status(r->status));
    if (transient && attempt < retry_.attempts) {
      if (!backoff(attempt)) return fail("cancelled");
      continue;
    }
    if (!r) return fail(r.error());
    if (r->status == 200) return {};
    if (r->status == 401) return fail("login to " + ref_.domain + " failed: unauthorized");
    return fail("login to " + ref_.domain + ": " + status_error(*r));
  }
}

}  // namespace stack::fs
