// ImageStore: naming (commit, tag), lookup, removal, pruning and garbage collection over the OCI
// layout under root_. Slow work (copying, unpacking, deleting layers) happens outside the lock
// or under temporary names; only renames into place, index.json changes and GC hold it.
#include "fs/image_store.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "common/files.h"
#include "common/log.h"
#include "fs/image_build.h"
#include "fs/store_internal.h"

namespace stack::fs {

namespace {

Error not_found(const std::string& ref) {
  return Error{"image \"" + familiar_reference(ref) +
               "\" not found (pull it with: stack image pull " + familiar_reference(ref) +
               ", or import it with: stack image import " + familiar_reference(ref) + " PATH)",
               ENOENT};
}

bool is_hex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

// The config digest (image id) of index entry D.
Result<std::string> image_id_of(const stdfs::path& root, const Descriptor& d) {
  std::string mtext = STACK_TRY_CTX(read_blob(root, d.digest), "manifest");
  Manifest m = STACK_TRY_CTX(parse_manifest(mtext), d.digest);
  return m.config.digest;
}

// Entries of INDEX that REF names: the reference itself, or for "name@sha256:D" an entry of that
// name whose manifest or served digest is D.
std::vector<size_t> by_reference(const OciIndex& index, const Reference& ref) {
  std::vector<size_t> out;
  std::string canonical = ref.str();
  for (size_t i = 0; i < index.manifests.size(); i++) {
    const Descriptor& d = index.manifests[i];
    std::string name = ref_name(d);
    if (name == canonical) {
      out.push_back(i);
      continue;
    }
    if (ref.digest.empty() || name.empty()) continue;
    auto other = parse_reference(name);
    if (!other || other->name() != ref.name()) continue;
    auto served = d.annotations.find(std::string(kRepoDigestAnnotation));
    bool same_served = served != d.annotations.end() && served->second.ends_with("@" + ref.digest);
    if (d.digest == ref.digest || same_served) out.push_back(i);
  }
  return out;
}

// Entries whose image id is ID, or starts with the hex prefix ID (at least 4 digits): empty
// when the prefix is ambiguous or nothing matches.
Result<std::vector<size_t>> by_id(const stdfs::path& root, const OciIndex& index,
                                  std::string_view id) {
  std::string_view hex = id.starts_with("sha256:") ? id.substr(7) : id;
  std::vector<size_t> out;
  if (hex.size() < 4 || !is_hex(hex)) return out;
  std::set<std::string> ids;
  for (size_t i = 0; i < index.manifests.size(); i++) {
    auto config = image_id_of(root, index.manifests[i]);
    if (!config) return fail(config.error());
    if (config->substr(7).starts_with(hex)) {
      out.push_back(i);
      ids.insert(*config);
    }
  }
  if (ids.size() > 1) return fail("image id prefix \"" + std::string(id) + "\" is ambiguous");
  return out;
}

// The entries REF names: a reference first, an id (or id prefix) when no reference matches.
Result<std::vector<size_t>> lookup(const stdfs::path& root, const OciIndex& index,
                                   std::string_view ref) {
  auto parsed = parse_reference(ref);
  if (parsed) {
    auto found = by_reference(index, *parsed);
    if (!found.empty()) return found;
  }
  auto ids = by_id(root, index, ref);
  if (!ids) return fail(ids.error());
  if (!ids->empty()) return ids;
  if (!parsed && !ref.starts_with("sha256:")) return fail(parsed.error());
  return std::vector<size_t>{};
}

bool digest_named(const OciIndex& index, const std::string& digest) {
  return std::any_of(index.manifests.begin(), index.manifests.end(),
                     [&](const Descriptor& d) { return d.digest == digest; });
}

Descriptor untagged(const Descriptor& d) {
  return Descriptor{d.media_type, d.digest, d.size, {}, std::nullopt};
}

}  // namespace

// --- pins ------------------------------------------------------------------------------------

ImageStore::Internal::Pin::Pin(Internal* in, std::vector<std::string> hexes)
    : in_(in), hexes_(std::move(hexes)) {
  std::lock_guard lock(in_->mu);
  for (const auto& h : hexes_) in_->pins.insert(h);
}

ImageStore::Internal::Pin::~Pin() {
  if (!in_) return;
  std::lock_guard lock(in_->mu);
  for (const auto& h : hexes_)
    if (auto it = in_->pins.find(h); it != in_->pins.end()) in_->pins.erase(it);
}

void ImageStore::Internal::Pin::add(const std::string& hex) {
  std::lock_guard lock(in_->mu);
  in_->pins.insert(hex);
  hexes_.push_back(hex);
}

std::set<std::string> ImageStore::Internal::pinned() const {
  std::lock_guard lock(mu);
  return {pins.begin(), pins.end()};
}

// --- naming ----------------------------------------------------------------------------------

Result<Image> ImageStore::Internal::commit(const NewImage& image) {
  StoreLock lock = STACK_TRY_CTX(StoreLock::acquire(root), "name image");
  OciIndex index = STACK_TRY_CTX(load_index(root), "name image");
  Descriptor entry = untagged(image.manifest);
  entry.media_type = entry.media_type.empty() ? std::string(kMediaTypeManifest) : entry.media_type;
  if (image.reference.empty()) {
    if (digest_named(index, entry.digest)) {
      for (const auto& d : index.manifests)
        if (d.digest == entry.digest) return load_image(root, index, d);
    }
    index.manifests.push_back(entry);
  } else {
    std::string old_digest;
    std::erase_if(index.manifests, [&](const Descriptor& d) {
      if (ref_name(d) != image.reference) return false;
      old_digest = d.digest;
      return true;
    });
    // The image the name leaves stays, untagged, while nothing else names it: a container may
    // run it, and `image prune` decides.
    if (!old_digest.empty() && old_digest != entry.digest && !digest_named(index, old_digest))
      index.manifests.push_back(Descriptor{std::string(kMediaTypeManifest), old_digest, 0, {}, {}});
    std::erase_if(index.manifests, [&](const Descriptor& d) {
      return d.digest == entry.digest && ref_name(d).empty();
    });
    entry.annotations[std::string(kRefNameAnnotation)] = image.reference;
    if (image.pulled_at > 0)
      entry.annotations[std::string(kPulledAtAnnotation)] = std::to_string(image.pulled_at);
    if (!image.repo_digest.empty())
      entry.annotations[std::string(kRepoDigestAnnotation)] = image.repo_digest;
    index.manifests.push_back(entry);
  }
  // An untagged entry made above lacks its size: take it from the blob.
  for (auto& d : index.manifests)
    if (d.size == 0)
      if (auto hex = digest_hex(d.digest); hex) {
        struct stat st {};
        if (::stat(blob_path(root, *hex).c_str(), &st) == 0) d.size = st.st_size;
      }
  if (auto r = save_index(root, index); !r) return fail(r.error());
  return load_image(root, index, entry);
}

Result<uint64_t> ImageStore::Internal::collect_garbage(const OciIndex& index) {
  std::set<std::string> blobs = pinned(), layers = blobs;
  // The build cache's layers stay until the cache itself is pruned.
  for (const auto& l : cache_layers(root)) {
    if (auto b = digest_hex(l.blob)) blobs.insert(*b);
    if (auto d = digest_hex(l.diff_id)) layers.insert(*d);
  }
  for (const auto& d : index.manifests) {
    std::string mhex = STACK_TRY_CTX(digest_hex(d.digest), "index.json");
    blobs.insert(mhex);
    std::string mtext = STACK_TRY_CTX(read_blob(root, d.digest), "manifest");
    Manifest m = STACK_TRY_CTX(parse_manifest(mtext), d.digest);
    blobs.insert(STACK_TRY_CTX(digest_hex(m.config.digest), d.digest));
    for (const auto& l : m.layers) blobs.insert(STACK_TRY_CTX(digest_hex(l.digest), d.digest));
    std::string ctext = STACK_TRY_CTX(read_blob(root, m.config.digest), "config");
    ParsedConfig c = STACK_TRY_CTX(parse_config(ctext), m.config.digest);
    for (const auto& id : c.diff_ids) layers.insert(STACK_TRY_CTX(digest_hex(id), m.config.digest));
  }
  uint64_t freed = 0;
  std::error_code ec;
  for (stdfs::directory_iterator it(blobs_dir(root), ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (is_live_temp(name) || blobs.count(name)) continue;
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0) freed += static_cast<uint64_t>(st.st_size);
    if (::unlink(it->path().c_str()) != 0 && errno != ENOENT)
      return fail_errno("remove blob " + it->path().string());
  }
  std::vector<std::string> doomed;
  for (stdfs::directory_iterator it(layers_dir(root), ec), end; !ec && it != end;
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!is_live_temp(name) && !layers.count(name)) doomed.push_back(name);
  }
  for (const auto& name : doomed) {
    stdfs::path p = layers_dir(root) / name;
    // Renamed first: a crash during the slow removal never leaves half a layer under its name.
    if (!name.starts_with(kTmpPrefix)) {
      stdfs::path gone = layers_dir(root) / (std::string(kTmpPrefix) + "0-gc-" + name);
      if (::rename(p.c_str(), gone.c_str()) != 0) return fail_errno("rename " + p.string());
      p = gone;
    }
    freed += tree_bytes(p);
    if (auto r = remove_tree(p); !r) return fail(r.error());
  }
  return freed;
}

// --- the public face -------------------------------------------------------------------------

ImageStore::ImageStore(std::filesystem::path root)
    : root_(std::move(root)), internal_(std::make_unique<Internal>()) {
  internal_->root = root_;
}

ImageStore::~ImageStore() = default;

Result<Image> ImageStore::get(std::string_view reference) const {
  OciIndex index = STACK_TRY_CTX(load_index(root_), "get image " + std::string(reference));
  auto found = lookup(root_, index, reference);
  if (!found) return fail(found.error());
  if (found->empty()) {
    auto canonical = normalize_reference(reference);
    return fail(not_found(canonical ? *canonical : std::string(reference)));
  }
  // An id names several entries (its tags): any of them is the image.
  const Descriptor& d = index.manifests[found->front()];
  return STACK_TRY_CTX(load_image(root_, index, d), "image " + familiar_reference(reference));
}

Result<std::vector<Image>> ImageStore::list() const {
  OciIndex index = STACK_TRY_CTX(load_index(root_), "list images");
  std::vector<Image> out;
  for (const auto& d : index.manifests)
    out.push_back(STACK_TRY_CTX(load_image(root_, index, d),
                                "image " + (ref_name(d).empty() ? d.digest : ref_name(d))));
  std::stable_sort(out.begin(), out.end(), [](const Image& a, const Image& b) {
    if (a.reference.empty() != b.reference.empty()) return b.reference.empty();
    return a.reference < b.reference;
  });
  return out;
}

Result<Image> ImageStore::tag(std::string_view source, std::string_view target) {
  std::string ctx = "tag " + std::string(source) + " as " + std::string(target);
  std::string ref = STACK_TRY_CTX(normalize_reference(target), ctx);
  Image img = STACK_TRY_CTX(get(source), ctx);
  auto mtext = STACK_TRY_CTX(read_blob(root_, img.manifest_digest), ctx);
  Manifest m = STACK_TRY_CTX(parse_manifest(mtext), ctx);
  NewImage named{
      ref,
      Descriptor{m.media_type, img.manifest_digest, static_cast<int64_t>(mtext.size()), {}, {}}, 0,
      ""};
  return STACK_TRY_CTX(internal_->commit(named), ctx);
}

Result<Removal> ImageStore::remove(std::string_view reference, const InUse& in_use, bool force) {
  std::string ctx = "remove image " + std::string(reference);
  StoreLock lock = STACK_TRY_CTX(StoreLock::acquire(root_), ctx);
  OciIndex index = STACK_TRY_CTX(load_index(root_), ctx);
  auto found = lookup(root_, index, reference);
  if (!found) return fail(found.error().wrap(ctx));
  if (found->empty()) {
    auto canonical = normalize_reference(reference);
    return fail(not_found(canonical ? *canonical : std::string(reference)));
  }
  auto parsed = parse_reference(reference);
  bool by_name = parsed && !by_reference(index, *parsed).empty();
  const std::string digest = index.manifests[found->front()].digest;
  std::string id = STACK_TRY_CTX(image_id_of(root_, index.manifests[found->front()]), ctx);
  Removal out;
  std::vector<size_t> doomed = *found;
  size_t names_of_image = 0;
  for (const auto& d : index.manifests)
    names_of_image += d.digest == digest && !ref_name(d).empty();
  bool last_name = !by_name || names_of_image <= doomed.size();
  if (last_name && in_use.count(id) && !force)
    return fail("image " + familiar_reference(reference) + " is used by container " +
                in_use.at(id) + " (stack down first, or --force to untag it)");
  std::sort(doomed.rbegin(), doomed.rend());
  for (size_t i : doomed) {
    if (!ref_name(index.manifests[i]).empty()) out.untagged.push_back(ref_name(index.manifests[i]));
    index.manifests.erase(index.manifests.begin() + static_cast<long>(i));
  }
  std::sort(out.untagged.begin(), out.untagged.end());
  if (last_name) {
    // Every name gone: the image too, unless a container runs it (then it stays untagged).
    std::erase_if(index.manifests, [&](const Descriptor& d) { return d.digest == digest; });
    if (in_use.count(id))
      index.manifests.push_back(Descriptor{std::string(kMediaTypeManifest), digest, 0, {}, {}});
    else
      out.deleted.push_back(id);
  }
  if (auto r = save_index(root_, index); !r) return fail(r.error().wrap(ctx));
  auto freed = internal_->collect_garbage(index);
  if (!freed)  // the names are gone already; what is left is collected by the next prune
    log::get("fs")->warn("image garbage collection failed root={} error=\"{}\"", root_.string(),
                         freed.error().message);
  else
    out.reclaimed = *freed;
  log::get("fs")->info("removed image ref={} untagged={} deleted={}", reference,
                       out.untagged.size(), out.deleted.size());
  return out;
}

Result<Removal> ImageStore::prune(const InUse& in_use, bool all) {
  StoreLock lock = STACK_TRY_CTX(StoreLock::acquire(root_), "prune images");
  OciIndex index = STACK_TRY_CTX(load_index(root_), "prune images");
  Removal out;
  std::vector<Descriptor> keep;
  for (const auto& d : index.manifests) {
    std::string id = STACK_TRY_CTX(image_id_of(root_, d), "prune images");
    bool tagged = !ref_name(d).empty();
    if (in_use.count(id) || (tagged && !all)) {
      keep.push_back(d);
      continue;
    }
    if (tagged) out.untagged.push_back(ref_name(d));
    out.deleted.push_back(id);
  }
  std::sort(out.deleted.begin(), out.deleted.end());
  out.deleted.erase(std::unique(out.deleted.begin(), out.deleted.end()), out.deleted.end());
  index.manifests = std::move(keep);
  if (auto r = save_index(root_, index); !r) return fail(r.error().wrap("prune images"));
  out.reclaimed = STACK_TRY_CTX(internal_->collect_garbage(index), "prune images");
  log::get("fs")->info("pruned images deleted={} reclaimed={}", out.deleted.size(), out.reclaimed);
  return out;
}

}  // namespace stack::fs
