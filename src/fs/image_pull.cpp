// pull_image: resolve the reference (an index gives the platform's manifest), fetch the config,
// then the layers on up to max_concurrent_layers threads, each downloaded (unless its blob is
// here), verified and unpacked (unless its layer is here); then the name is committed. Blobs and
// layers in place are pinned until then, so a concurrent prune cannot take them.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "fs/import_meter.h"
#include "fs/pull.h"
#include "fs/registry_auth.h"
#include "fs/registry_client.h"
#include "fs/store_internal.h"

namespace stack::fs {

namespace {

using Clock = std::chrono::steady_clock;

bool supported_layer(std::string_view t) {
  return t == "application/vnd.oci.image.layer.v1.tar" ||
         t == "application/vnd.oci.image.layer.v1.tar+gzip" ||
         t == "application/vnd.oci.image.layer.v1.tar+zstd" || t == kDockerLayerGzip ||
         t == "application/vnd.docker.image.rootfs.diff.tar";
}

// Serialises the pull's events and spaces out byte counts (one per layer every 100 ms).
class Reporter {
 public:
  Reporter(const PullRequest& req, std::string ref) : req_(req), ref_(std::move(ref)) {}
  void emit(PullEvent e) {
    if (!req_.progress) return;
    e.reference = ref_;
    std::lock_guard lock(mu_);
    req_.progress(e);
  }
  void layer(const std::string& id, std::string status, uint64_t current, uint64_t total,
             std::string message = {}) {
    if (!req_.progress) return;
    {
      std::lock_guard lock(mu_);
      auto& last = last_[id];
      bool same = last.status == status && message.empty();
      if (same && current != total && Clock::now() - last.at < std::chrono::milliseconds(100))
        return;
      last = {status, Clock::now()};
    }
    PullEvent e;
    e.kind = PullEvent::Kind::layer;
    e.id = id;
    e.status = std::move(status);
    e.current = current;
    e.total = total;
    e.message = std::move(message);
    emit(std::move(e));
  }

 private:
  struct Last {
    std::string status;
    Clock::time_point at;
  };
  const PullRequest& req_;
  std::string ref_;
  std::mutex mu_;
  std::map<std::string, Last> last_;
};

std::string short_id(const std::string& digest) { return digest.substr(7, 12); }

// The blob D into the store, unless there.
Result<void> fetch(ImageStore::Internal& store, RegistryClient& client, const Descriptor& d,
                   const RegistryClient::BlobProgress& progress) {
  std::string hex = FS_TRY(digest_hex(d.digest));
  if (has_blob(store.root, hex)) return {};
  BlobWriter w = FS_TRY(BlobWriter::create(store.root));
  return client.blob(d, w, progress);
}

struct LayerJob {
  Descriptor blob;
  std::string diff;  // hex
};

Result<void> pull_layer(ImageStore::Internal& store, RegistryClient& client, const LayerJob& job,
                        Reporter& report) {
  const std::string id = short_id(job.blob.digest);
  const uint64_t total = static_cast<uint64_t>(job.blob.size);
  std::string blob_hex = job.blob.digest.substr(7);
  if (has_blob(store.root, blob_hex) && has_layer(store.root, job.diff)) {
    report.layer(id, "Already exists", total, total);
    return {};
  }
  if (!has_blob(store.root, blob_hex)) {
    report.layer(id, "Downloading", 0, total);
    auto progress = [&](uint64_t current, const std::string& retrying) {
      if (retrying.empty())
        report.layer(id, "Downloading", current, total);
      else
        report.layer(id, "Retrying", current, total, retrying);
    };
    if (auto r = fetch(store, client, job.blob, progress); !r) return r;
    report.layer(id, "Verifying", total, total);
  }
  report.layer(id, "Extracting", 0, total);
  ImportOptions options;
  options.progress = [&](std::string_view, uint64_t done, uint64_t) {
    report.layer(id, "Extracting", std::min(done, total), total);
  };
  ImportMeter meter(options, store.root, "unpack", 0);
  auto r = ensure_layer(store.root, blob_path(store.root, blob_hex), job.diff, &meter);
  if (!r) return fail(r.error().wrap("layer " + job.blob.digest));
  report.layer(id, "Pull complete", total, total);
  return {};
}

// Runs JOBS on up to N threads; the first error stops the others (through STOP).
Result<void> pull_layers(ImageStore::Internal& store, RegistryClient& client,
                         const std::vector<LayerJob>& jobs, int n, Reporter& report,
                         std::atomic<bool>& stop) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  Result<void> first;
  auto worker = [&] {
    for (size_t i; !stop && (i = next++) < jobs.size();) {
      auto r = pull_layer(store, client, jobs[i], report);
      if (!r) {
        std::lock_guard lock(mu);
        if (first) first = r;
        stop = true;
      }
    }
  };
  std::vector<std::thread> threads;
  int count = std::max(1, std::min<int>(n, static_cast<int>(jobs.size())));
  for (int i = 1; i < count; i++) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  return first;
}

}  // namespace

Result<Image> pull_image(ImageStore& store, const PullRequest& req) {
  Reference ref = FS_TRY(parse_reference(req.reference));
  std::string ctx = "pull " + ref.familiar();
  Platform platform = STACK_TRY_CTX(parse_platform(req.platform), ctx);
  RegistryConfig config = STACK_TRY_CTX(load_registries_config(req.registries_config), ctx);
  std::optional<Credentials> creds = req.credentials;
  if (!creds && !req.auth_file.empty())
    creds = STACK_TRY_CTX(find_credentials(req.auth_file, ref.domain), ctx);
  std::atomic<bool> stop{false};
  auto cancelled = [&] { return stop.load() || (req.cancel && req.cancel->load()); };
  RegistryClient client(ref, config, creds, req, cancelled);
  if (!client.reachable())
    return fail(ctx + ": registry " + ref.domain + " is blocked by " +
                req.registries_config.string() + " (\"blocked\"), and no mirror of it is allowed");
  Reporter report(req, ref.str());
  report.emit(PullEvent{});

  auto top = STACK_TRY_CTX(client.manifest(ref.tag_or_digest()), ctx);
  std::string repo_digest = ref.name() + "@" + top.digest;
  RegistryClient::Document doc = top;
  switch (document_kind(top.body, top.content_type)) {
    case DocumentKind::index: {
      OciIndex index = STACK_TRY_CTX(parse_index(top.body), ctx);
      Descriptor chosen = STACK_TRY_CTX(choose_platform(index, platform), ctx);
      doc = STACK_TRY_CTX(client.manifest(chosen.digest), ctx);
      if (document_kind(doc.body, doc.content_type) != DocumentKind::manifest)
        return fail(ctx + ": the index entry for " + platform.str() + " is not an image manifest");
      break;
    }
    case DocumentKind::manifest:
      break;
    case DocumentKind::schema1:
      return fail(ctx +
                  ": a Docker schema 1 manifest (deprecated since 2019, not supported): "
                  "push the image again with a current tool");
    case DocumentKind::unknown:
      return fail(ctx + ": the registry answered with something that is no image manifest (" +
                  top.content_type + ")");
  }
  Manifest manifest = STACK_TRY_CTX(parse_manifest(doc.body), ctx);
  for (const auto& l : manifest.layers)
    if (!supported_layer(l.media_type))
      return fail(ctx + ": layer " + l.digest + " has media type " + l.media_type +
                  ", which stack cannot unpack");

  auto& in = store.internal();
  auto pin = in.pin({doc.digest.substr(7), manifest.config.digest.substr(7)});
  if (auto r = put_blob(in.root, doc.body, doc.digest); !r) return fail(r.error().wrap(ctx));
  if (auto r = fetch(in, client, manifest.config, {}); !r) return fail(r.error().wrap(ctx));
  std::string ctext = STACK_TRY_CTX(read_blob(in.root, manifest.config.digest), ctx);
  ParsedConfig parsed = STACK_TRY_CTX(parse_config(ctext), ctx);
  if (parsed.diff_ids.size() != manifest.layers.size())
    return fail(ctx + ": the manifest has " + std::to_string(manifest.layers.size()) +
                " layers, its config " + std::to_string(parsed.diff_ids.size()) + " diff_ids");
  if (!parsed.platform.os.empty() && parsed.platform.os != platform.os)
    return fail(ctx + ": the image is for " + parsed.platform.str() + ", not " + platform.str());

  std::vector<LayerJob> jobs;
  for (size_t i = 0; i < manifest.layers.size(); i++) {
    LayerJob job{manifest.layers[i], parsed.diff_ids[i].substr(7)};
    pin.add(job.blob.digest.substr(7));
    pin.add(job.diff);
    jobs.push_back(std::move(job));
  }
  PullEvent resolved;
  resolved.kind = PullEvent::Kind::resolved;
  resolved.digest = doc.digest;
  resolved.layers = static_cast<int>(jobs.size());
  report.emit(resolved);
  for (const auto& j : jobs)
    report.layer(short_id(j.blob.digest), "Waiting", 0, static_cast<uint64_t>(j.blob.size));
  if (auto r = pull_layers(in, client, jobs, req.max_concurrent_layers, report, stop); !r)
    return fail(r.error().wrap(ctx));
  if (req.cancel && req.cancel->load()) return fail(ctx + ": cancelled");

  auto pulled_at = std::chrono::duration_cast<std::chrono::seconds>(req.now.time_since_epoch());
  Descriptor mdesc{manifest.media_type, doc.digest, static_cast<int64_t>(doc.body.size()), {}, {}};
  Image img =
      STACK_TRY_CTX(in.commit(NewImage{ref.str(), mdesc, pulled_at.count(), repo_digest}), ctx);
  PullEvent done;
  done.kind = PullEvent::Kind::done;
  done.digest = repo_digest;
  report.emit(done);
  log::get("fs")->info("pulled image ref={} digest={} layers={}", ref.str(), doc.digest,
                       jobs.size());
  return img;
}

Result<void> check_login(const std::string& registry, const Credentials& credentials,
                         const std::filesystem::path& registries_config) {
  RegistryConfig config = FS_TRY(load_registries_config(registries_config));
  Reference ref{registry == "index.docker.io" ? std::string(kDockerHub) : registry, "", "", ""};
  config.mirrors.clear();  // a login is for the registry itself
  PullRequest tuning;
  tuning.retry.attempts = 2;
  RegistryClient client(ref, config, credentials, tuning, {});
  if (!client.reachable())
    return fail("login " + registry + ": the registry is blocked by " + registries_config.string());
  return client.ping();
}

}  // namespace stack::fs
