// push_image: the stored manifest (read and checked against its digest), its config and layer
// blobs pinned against a concurrent prune, each blob HEADed and uploaded when missing on up to
// max_concurrent_layers threads (the config last among them, as docker does), then the
// manifest PUT by tag with its own bytes.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "fs/push.h"
#include "fs/registry_auth.h"
#include "fs/registry_client.h"
#include "fs/store_internal.h"

namespace stack::fs {

namespace {

using Clock = std::chrono::steady_clock;

// Serialises the push's events; byte counts at most every 100 ms per layer.
class Reporter {
 public:
  Reporter(const PushRequest& req, std::string ref) : req_(req), ref_(std::move(ref)) {}
  void emit(PullEvent e) {
    if (!req_.progress) return;
    e.reference = ref_;
    std::lock_guard lock(mu_);
    req_.progress(e);
  }
  void layer(const std::string& id, const std::string& status, uint64_t current, uint64_t total) {
    if (!req_.progress) return;
    {
      std::lock_guard lock(mu_);
      auto& last = last_[id];
      if (last.first == status && current != total &&
          Clock::now() - last.second < std::chrono::milliseconds(100))
        return;
      last = {status, Clock::now()};
    }
    PullEvent e;
    e.kind = PullEvent::Kind::layer;
    e.id = id;
    e.status = status;
    e.current = current;
    e.total = total;
    emit(std::move(e));
  }

 private:
  const PushRequest& req_;
  std::string ref_;
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, Clock::time_point>> last_;
};

std::string short_id(const std::string& digest) { return digest.substr(7, 12); }

// Blob D onto the registry unless it is there; true when it was there.
Result<bool> push_blob(const stdfs::path& root, RegistryClient& client, const Descriptor& d,
                       Reporter& report, bool quiet) {
  const std::string id = short_id(d.digest);
  const uint64_t total = static_cast<uint64_t>(d.size);
  if (FS_TRY(client.has_blob(d.digest))) {
    if (!quiet) report.layer(id, "Layer already exists", total, total);
    return true;
  }
  if (!quiet) report.layer(id, "Pushing", 0, total);
  auto sent = [&](uint64_t n) {
    if (!quiet) report.layer(id, "Pushing", std::min(n, total), total);
  };
  std::string hex = FS_TRY(digest_hex(d.digest));
  if (auto r = client.upload_blob(d, blob_path(root, hex), sent); !r) return fail(r.error());
  if (!quiet) report.layer(id, "Pushed", total, total);
  return false;
}

}  // namespace

Result<Pushed> push_image(ImageStore& store, const PushRequest& req) {
  Reference ref = FS_TRY(parse_reference(req.reference));
  std::string ctx = "push " + ref.familiar();
  Image image = STACK_TRY_CTX(store.get(ref.str()), ctx);
  RegistryConfig config = STACK_TRY_CTX(load_registries_config(req.registries_config), ctx);
  config.mirrors.clear();  // a push goes to the registry itself
  std::optional<Credentials> creds = req.credentials;
  if (!creds && !req.auth_file.empty())
    creds = STACK_TRY_CTX(find_credentials(req.auth_file, ref.domain), ctx);
  std::atomic<bool> stop{false};
  auto cancelled = [&] { return stop.load() || (req.cancel && req.cancel->load()); };
  PullRequest tuning;
  tuning.retry = req.retry;
  tuning.stall_seconds = req.stall_seconds;
  RegistryClient client(ref, config, creds, tuning, cancelled);
  client.for_push();
  if (!client.reachable())
    return fail(ctx + ": registry " + ref.domain + " is blocked by " +
                req.registries_config.string() + " (\"blocked\")");

  auto& in = store.internal();
  std::string body = STACK_TRY_CTX(read_blob(in.root, image.manifest_digest), ctx);
  Manifest manifest = STACK_TRY_CTX(parse_manifest(body), ctx);
  std::vector<std::string> hexes = {manifest.config.digest.substr(7)};
  for (const auto& l : manifest.layers) hexes.push_back(l.digest.substr(7));
  auto pin = in.pin(hexes);
  for (const auto& l : manifest.layers)
    if (!has_blob(in.root, l.digest.substr(7)))
      return fail(ctx + ": layer " + l.digest + " is not in the image store (only unpacked): " +
                  "it cannot be pushed");

  Reporter report(req, ref.str());
  PullEvent resolved;
  resolved.kind = PullEvent::Kind::resolved;
  resolved.digest = image.manifest_digest;
  resolved.layers = static_cast<int>(manifest.layers.size());
  report.emit(resolved);
  for (const auto& l : manifest.layers)
    report.layer(short_id(l.digest), "Preparing", 0, static_cast<uint64_t>(l.size));

  // The layers on N threads; the first error stops the others.
  std::atomic<size_t> next{0};
  std::atomic<int> existed{0};
  std::mutex mu;
  Result<void> first;
  auto worker = [&] {
    for (size_t i; !stop && (i = next++) < manifest.layers.size();) {
      auto r = push_blob(in.root, client, manifest.layers[i], report, false);
      if (r && *r) existed++;
      if (!r) {
        std::lock_guard lock(mu);
        if (first) first = fail(r.error());
        stop = true;
      }
    }
  };
  std::vector<std::thread> threads;
  int n = std::max(1, std::min<int>(req.max_concurrent_layers,
                                    static_cast<int>(manifest.layers.size())));
  for (int i = 1; i < n; i++) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (!first) return fail(first.error().wrap(ctx));
  if (req.cancel && req.cancel->load()) return fail(ctx + ": cancelled");
  // The config after the layers: a registry may check a manifest's blobs as it is PUT.
  auto config_there = push_blob(in.root, client, manifest.config, report, true);
  if (!config_there) return fail(config_there.error().wrap(ctx));
  existed += *config_there ? 1 : 0;

  std::string media = manifest.media_type.empty() ? std::string(kMediaTypeManifest)
                                                  : manifest.media_type;
  std::string digest = STACK_TRY_CTX(client.put_manifest(ref.tag_or_digest(), body, media), ctx);
  if (digest != image.manifest_digest)
    return fail(ctx + ": the stored manifest's digest is " + image.manifest_digest +
                ", its bytes give " + digest);
  PullEvent done;
  done.kind = PullEvent::Kind::done;
  done.digest = digest;
  report.emit(done);
  log::get("fs")->info("pushed image ref={} digest={} layers={} existed={}", ref.str(), digest,
                       manifest.layers.size(), existed.load());
  return Pushed{ref.str(), digest, static_cast<int64_t>(body.size()),
                static_cast<int>(manifest.layers.size()), existed.load()};
}

}  // namespace stack::fs
