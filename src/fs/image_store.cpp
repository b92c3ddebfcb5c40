// ImageStore: import, lookup, removal and garbage collection over the OCI layout under root_.
// Slow work (packing, copying, unpacking) happens in ".tmp-<pid>-*" names outside the lock;
// only renames into place, index.json updates and GC run under flock(root_/stack.lock).
#include "fs/image_store.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "common/files.h"
#include "common/log.h"
#include "common/private_root.h"
#include "common/scope_guard.h"
#include "common/unique_fd.h"
#include "fs/import_meter.h"
#include "fs/layer_pack.h"
#include "fs/layer_unpack.h"
#include "fs/oci_layout.h"
#include "fs/sha256.h"

namespace stack::fs {

namespace {

namespace stdfs = std::filesystem;

constexpr std::string_view kTmpPrefix = ".tmp-";

stdfs::path blobs_dir(const stdfs::path& root) { return root / "blobs" / "sha256"; }
stdfs::path layers_dir(const stdfs::path& root) { return root / "layers"; }
stdfs::path index_path(const stdfs::path& root) { return root / "index.json"; }

std::string tmp_template() {
  return std::string(kTmpPrefix) + std::to_string(::getpid()) + "-XXXXXX";
}

// A ".tmp-<pid>-..." name whose process still runs belongs to an import in progress.
bool is_live_temp(std::string_view name) {
  if (!name.starts_with(kTmpPrefix)) return false;
  name.remove_prefix(kTmpPrefix.size());
  pid_t pid = static_cast<pid_t>(std::atol(std::string(name.substr(0, name.find('-'))).c_str()));
  if (pid <= 0) return false;
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

class StoreLock {
 public:
  static Result<StoreLock> acquire(const stdfs::path& root) {
    stdfs::path p = root / "stack.lock";
    UniqueFd fd(::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) return fail_errno("open " + p.string());
    while (::flock(fd.get(), LOCK_EX) != 0)
      if (errno != EINTR) return fail_errno("lock " + p.string());
    return StoreLock(std::move(fd));
  }

 private:
  explicit StoreLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing releases the flock
};

// Root's alone (common/private_root.h): layers hold device nodes and a 1777 /tmp that every
// container of the image shares. A layer's own root directory keeps the image's mode.
Result<void> ensure_dirs(const stdfs::path& root) {
  for (const stdfs::path& d : {root, root / "blobs", blobs_dir(root), layers_dir(root)})
    if (auto r = make_private_dir(d); !r) return r;
  return {};
}

// Caller holds the store lock (write_file_atomic's temp name is fixed).
Result<void> ensure_layout_file(const stdfs::path& root) {
  stdfs::path layout = root / "oci-layout";
  std::error_code ec;
  if (!stdfs::exists(layout, ec))
    return write_file_atomic(layout, "{\"imageLayoutVersion\":\"1.0.0\"}\n", 0600);
  return {};
}

Result<OciIndex> load_index(const stdfs::path& root) {
  auto text = read_file(index_path(root));
  if (!text) {
    if (text.error().sys_errno == ENOENT) return OciIndex{};
    return fail(text.error());
  }
  return parse_index(*text);
}

std::string ref_name(const Descriptor& d) {
  auto it = d.annotations.find(std::string(kRefNameAnnotation));
  return it == d.annotations.end() ? std::string() : it->second;
}

// Writes CONTENT as a blob (temp file, fsync, rename); returns its descriptor.
Result<Descriptor> write_blob(const stdfs::path& root, std::string_view content,
                              std::string_view media_type) {
  std::string hex = sha256_hex(content);
  stdfs::path final_path = blobs_dir(root) / hex;
  if (auto r = write_file_atomic(final_path, content, 0600); !r) return fail(r.error());
  return Descriptor{
      std::string(media_type), "sha256:" + hex, static_cast<int64_t>(content.size()), {}};
}

struct TempBlob {
  stdfs::path path;
  std::string hex;
  int64_t size = 0;
};

Result<void> copy_hashing(int in, int out, const stdfs::path& src, TempBlob& blob,
                          ImportMeter& meter) {
  Sha256 h;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read " + src.string());
    }
    if (n == 0) break;
    if (auto r = meter.add(static_cast<uint64_t>(n)); !r) return r;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(out, buf + off, static_cast<size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return fail_errno("write " + blob.path.string());
      }
      off += w;
    }
    h.update(buf, static_cast<size_t>(n));
    blob.size += n;
  }
  blob.hex = h.hex_digest();
  return {};
}

// The bytes of the regular files under DIR (symlinks not followed); stops counting past LIMIT.
uint64_t tree_size(const stdfs::path& dir, uint64_t limit) {
  uint64_t total = 0;
  std::error_code ec;
  for (stdfs::recursive_directory_iterator it(dir, stdfs::directory_options::none, ec), end;
       !ec && it != end && total <= limit; it.increment(ec)) {
    std::error_code sec;
    auto st = it->symlink_status(sec);
    if (!sec && stdfs::is_regular_file(st)) total += it->file_size(sec);
  }
  return total;
}

// Refuses an import over its size limit, or one whose least need is not free on the images'
// file system (with the reserve kept): before anything is written.
Result<void> check_import_space(const stdfs::path& root, const stdfs::path& src,
                                const ImportOptions& options) {
  struct stat st {};
  if (::stat(src.c_str(), &st) != 0) return fail_errno("stat " + src.string());
  uint64_t size = 0, need = 0;
  std::string why;
  if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
    need = 2 * size;  // the file as a blob, and unpacked: at least as large again
    why = "the " + format_size(size) + " file, kept as a blob and unpacked";
  } else if (S_ISDIR(st.st_mode)) {
    size = tree_size(src, options.max_bytes);
    need = size;  // unpacked again; the compressed blob comes on top
    why = "the " + format_size(size) + " of files, unpacked again, and a compressed copy";
  } else {
    return {};  // make_layer_blob says what is wrong with it
  }
  if (size > options.max_bytes)
    return fail(S_ISDIR(st.st_mode)
                    ? "the files are larger than the import limit of " +
                          format_size(options.max_bytes)
                    : "the file is " + format_size(size) + ", larger than the import limit of " +
                          format_size(options.max_bytes));
  auto free = free_bytes(options, root);
  if (!free) return fail(free.error());
  if (*free < need + options.reserve_bytes)
    return fail("not enough space in " + root.string() + ": the import needs at least " +
                format_size(need) + " (" + why + "), " + format_size(*free) + " is free and " +
                format_size(options.reserve_bytes) + " must stay free");
  return {};
}

// The layer blob for SRC in a temp file under blobs/: a directory is packed as tar+gzip, a
// tarball copied byte for byte (its digest is the file's).
Result<TempBlob> make_layer_blob(const stdfs::path& root, const stdfs::path& src,
                                 const ImportOptions& options) {
  struct stat st {};
  if (::stat(src.c_str(), &st) != 0) return fail_errno("stat " + src.string());
  if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
    return fail(src.string() + " is neither a directory nor a tarball");
  TempBlob blob;
  std::string tmpl = (blobs_dir(root) / tmp_template()).string();
  UniqueFd out(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!out) return fail_errno("create temporary blob in " + blobs_dir(root).string());
  blob.path = tmpl;
  auto guard = ScopeGuard([&] { ::unlink(blob.path.c_str()); });
  ::fchmod(out.get(), 0600);
  if (S_ISDIR(st.st_mode)) {
    ImportMeter meter(options, root, "pack", 0);
    PackedBlob packed = STACK_TRY_CTX(pack_directory(src, out.get(), &meter), "import");
    blob.hex = packed.digest;
    blob.size = packed.size;
  } else {
    UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return fail_errno("open " + src.string());
    ImportMeter meter(options, root, "copy", static_cast<uint64_t>(st.st_size));
    if (auto r = copy_hashing(in.get(), out.get(), src, blob, meter); !r) return fail(r.error());
    meter.done();
  }
  if (::fsync(out.get()) != 0) return fail_errno("fsync " + blob.path.string());
  guard.dismiss();
  return blob;
}

// Blob hex digests and layer diff_id hexes that some manifest in INDEX uses.
struct Referenced {
  std::set<std::string> blobs;
  std::set<std::string> layers;
};

Result<Referenced> collect_referenced(const stdfs::path& root, const OciIndex& index) {
  Referenced ref;
  for (const auto& m : index.manifests) {
    std::string mhex = STACK_TRY_CTX(digest_hex(m.digest), "index.json");
    ref.blobs.insert(mhex);
    auto mtext = STACK_TRY_CTX(read_file(blobs_dir(root) / mhex), "manifest " + m.digest);
    Manifest manifest = STACK_TRY_CTX(parse_manifest(mtext), m.digest);
    std::string chex = STACK_TRY_CTX(digest_hex(manifest.config.digest), m.digest);
    ref.blobs.insert(chex);
    for (const auto& l : manifest.layers)
      ref.blobs.insert(STACK_TRY_CTX(digest_hex(l.digest), m.digest));
    auto ctext = STACK_TRY_CTX(read_file(blobs_dir(root) / chex), "config " + chex);
    ParsedConfig config = STACK_TRY_CTX(parse_config(ctext), "config " + chex);
    for (const auto& d : config.diff_ids)
      ref.layers.insert(STACK_TRY_CTX(digest_hex(d), "config " + chex));
  }
  return ref;
}

std::vector<std::string> dir_names(const stdfs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (stdfs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  return names;
}

// Deletes blobs and layers no manifest in INDEX uses, and temp files of dead processes.
// Caller holds the store lock. A layer is renamed to a temp name before its slow removal, so a
// crash never leaves a half-deleted layer under its final name.
Result<void> collect_garbage(const stdfs::path& root, const OciIndex& index) {
  Referenced ref = STACK_TRY_CTX(collect_referenced(root, index), "garbage collection");
  for (const auto& name : dir_names(blobs_dir(root))) {
    if (is_live_temp(name) || ref.blobs.count(name)) continue;
    stdfs::path p = blobs_dir(root) / name;
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return fail_errno("remove blob " + p.string());
  }
  for (const auto& name : dir_names(layers_dir(root))) {
    if (is_live_temp(name) || ref.layers.count(name)) continue;
    stdfs::path p = layers_dir(root) / name;
    if (!name.starts_with(kTmpPrefix)) {
      stdfs::path doomed = layers_dir(root) / (std::string(kTmpPrefix) + "0-gc-" + name);
      if (::rename(p.c_str(), doomed.c_str()) != 0) return fail_errno("rename " + p.string());
      p = doomed;
    }
    if (auto r = remove_tree(p); !r) return r;
  }
  return {};
}

// Logs instead of failing: GC runs after the index change already succeeded, and leftovers are
// collected by the next run.
void try_collect_garbage(const stdfs::path& root, const OciIndex& index) {
  if (auto r = collect_garbage(root, index); !r)
    log::get("fs")->warn("image garbage collection failed root={} error=\"{}\"", root.string(),
                         r.error().message);
}

Result<Image> load_image(const stdfs::path& root, const Descriptor& desc) {
  Image img;
  img.reference = ref_name(desc);
  img.manifest_digest = desc.digest;
  std::string mhex = STACK_TRY_CTX(digest_hex(desc.digest), "index.json");
  auto mtext = STACK_TRY_CTX(read_file(blobs_dir(root) / mhex), "read manifest");
  Manifest manifest = STACK_TRY_CTX(parse_manifest(mtext), desc.digest);
  img.id = manifest.config.digest;
  std::string chex = STACK_TRY_CTX(digest_hex(manifest.config.digest), desc.digest);
  auto ctext = STACK_TRY_CTX(read_file(blobs_dir(root) / chex), "read image config");
  ParsedConfig config = STACK_TRY_CTX(parse_config(ctext), img.id);
  img.config = std::move(config.config);
  img.created = config.created;
  for (const auto& l : manifest.layers) img.size += l.size;
  for (const auto& d : config.diff_ids) {
    std::string hex = STACK_TRY_CTX(digest_hex(d), img.id);
    stdfs::path layer = layers_dir(root) / hex;
    std::error_code ec;
    if (!stdfs::is_directory(layer, ec))
      return fail("layer " + d + " is missing from " + layers_dir(root).string());
    img.layers.push_back(std::move(layer));
  }
  return img;
}

Error not_found(const std::string& ref) {
  return Error{"image \"" + ref + "\" not found (import it with: stack image import " + ref +
               " PATH)"};
}

}  // namespace

ImageStore::ImageStore(std::filesystem::path root) : root_(std::move(root)) {}

Result<Image> ImageStore::import(std::string_view reference, const std::filesystem::path& path,
                                 const ImportOptions& options) {
  std::string ref = STACK_TRY_CTX(normalize_reference(reference), "import");
  std::string ctx = "import " + ref + " from " + path.string();
  if (auto r = ensure_dirs(root_); !r) return fail(r.error().wrap(ctx));
  if (auto r = check_import_space(root_, path, options); !r) return fail(r.error().wrap(ctx));

  TempBlob blob = STACK_TRY_CTX(make_layer_blob(root_, path, options), ctx);
  auto blob_guard = ScopeGuard([&] { ::unlink(blob.path.c_str()); });

  std::string tmpl = (layers_dir(root_) / tmp_template()).string();
  if (!::mkdtemp(tmpl.data())) return fail(Error::from_errno("create temporary layer").wrap(ctx));
  stdfs::path tmp_layer = tmpl;
  auto layer_guard = ScopeGuard([&] { (void)remove_tree(tmp_layer); });
  ::chmod(tmp_layer.c_str(), 0755);
  // Canonical, so libarchive's symlink checks never trip over a symlink above the store.
  char* real = ::realpath(tmp_layer.c_str(), nullptr);
  if (!real) return fail(Error::from_errno("resolve " + tmp_layer.string()).wrap(ctx));
  stdfs::path real_layer = real;
  ::free(real);
  ImportMeter unpacked(options, root_, "unpack", 0);
  UnpackedLayer layer = STACK_TRY_CTX(unpack_layer(blob.path, real_layer, &unpacked), ctx);

  Manifest manifest;
  manifest.layers.push_back(
      Descriptor{layer_media_type(layer.compression), "sha256:" + blob.hex, blob.size, {}});
  // created is the newest file time, not "now": re-importing the same content gives the same id.
  std::string config_json = render_config({"sha256:" + layer.diff_id}, layer.newest_mtime);

  StoreLock lock = STACK_TRY_CTX(StoreLock::acquire(root_), ctx);
  if (auto r = ensure_layout_file(root_); !r) return fail(r.error().wrap(ctx));
  // Renames into place happen under the lock so a concurrent GC cannot see a blob or layer
  // that exists but is not yet named by index.json.
  stdfs::path final_blob = blobs_dir(root_) / blob.hex;
  if (::rename(blob.path.c_str(), final_blob.c_str()) != 0)
    return fail(Error::from_errno("rename " + blob.path.string()).wrap(ctx));
  blob_guard.dismiss();
  stdfs::path final_layer = layers_dir(root_) / layer.diff_id;
  std::error_code ec;
  if (!stdfs::exists(final_layer, ec)) {  // else: already unpacked by an earlier import
    if (::rename(tmp_layer.c_str(), final_layer.c_str()) != 0)
      return fail(Error::from_errno("rename " + tmp_layer.string()).wrap(ctx));
    layer_guard.dismiss();
  }
  manifest.config = STACK_TRY_CTX(write_blob(root_, config_json, kMediaTypeConfig), ctx);
  Descriptor mdesc =
      STACK_TRY_CTX(write_blob(root_, render_manifest(manifest), kMediaTypeManifest), ctx);
  mdesc.annotations[std::string(kRefNameAnnotation)] = ref;

  OciIndex index = STACK_TRY_CTX(load_index(root_), ctx);
  std::erase_if(index.manifests, [&](const Descriptor& d) { return ref_name(d) == ref; });
  index.manifests.push_back(mdesc);
  std::sort(index.manifests.begin(), index.manifests.end(),
            [](const Descriptor& a, const Descriptor& b) { return ref_name(a) < ref_name(b); });
  if (auto r = write_file_atomic(index_path(root_), render_index(index), 0600); !r)
    return fail(r.error().wrap(ctx));
  try_collect_garbage(root_, index);
  log::get("fs")->info("imported image ref={} layer=sha256:{}", ref, layer.diff_id);
  return load_image(root_, mdesc);
}

Result<Image> ImageStore::get(std::string_view reference) const {
  std::string ref = STACK_TRY_CTX(normalize_reference(reference), "get image");
  OciIndex index = STACK_TRY_CTX(load_index(root_), "get image " + ref);
  for (const auto& d : index.manifests)
    if (ref_name(d) == ref) return STACK_TRY_CTX(load_image(root_, d), "image " + ref);
  return fail(not_found(ref));
}

Result<std::vector<Image>> ImageStore::list() const {
  OciIndex index = STACK_TRY_CTX(load_index(root_), "list images");
  std::vector<Image> out;
  for (const auto& d : index.manifests) {
    if (ref_name(d).empty()) continue;
    out.push_back(STACK_TRY_CTX(load_image(root_, d), "image " + ref_name(d)));
  }
  std::sort(out.begin(), out.end(),
            [](const Image& a, const Image& b) { return a.reference < b.reference; });
  return out;
}

Result<void> ImageStore::remove(std::string_view reference) {
  std::string ref = STACK_TRY_CTX(normalize_reference(reference), "remove image");
  std::string ctx = "remove image " + ref;
  std::error_code ec;
  if (!stdfs::exists(index_path(root_), ec)) return fail(not_found(ref));
  StoreLock lock = STACK_TRY_CTX(StoreLock::acquire(root_), ctx);
  OciIndex index = STACK_TRY_CTX(load_index(root_), ctx);
  size_t erased =
      std::erase_if(index.manifests, [&](const Descriptor& d) { return ref_name(d) == ref; });
  if (erased == 0) return fail(not_found(ref));
  if (auto r = write_file_atomic(index_path(root_), render_index(index), 0600); !r)
    return fail(r.error().wrap(ctx));
  try_collect_garbage(root_, index);
  log::get("fs")->info("removed image ref={}", ref);
  return {};
}

}  // namespace stack::fs
