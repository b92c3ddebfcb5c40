// The store's building blocks (store_internal.h): paths and temporary names, the lock, verified
// blobs, layers unpacked once, index.json and reading an image back from it. No policy here:
// what to name, keep or delete is image_store.cpp's.
#include "fs/store_internal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "common/files.h"
#include "common/private_root.h"
#include "common/scope_guard.h"
#include "fs/import_meter.h"
#include "fs/layer_unpack.h"

namespace stack::fs {

namespace {

constexpr size_t kMaxDocument = 4 << 20;

// fsync of a directory: a rename in it survives a crash.
void sync_dir(const stdfs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd) ::fsync(fd.get());
}

}  // namespace

stdfs::path blobs_dir(const stdfs::path& root) { return root / "blobs" / "sha256"; }
stdfs::path layers_dir(const stdfs::path& root) { return root / "layers"; }
stdfs::path index_path(const stdfs::path& root) { return root / "index.json"; }
stdfs::path blob_path(const stdfs::path& root, std::string_view hex) {
  return blobs_dir(root) / std::string(hex);
}

std::string tmp_template() {
  return std::string(kTmpPrefix) + std::to_string(::getpid()) + "-XXXXXX";
}

bool is_live_temp(std::string_view name) {
  if (!name.starts_with(kTmpPrefix)) return false;
  name.remove_prefix(kTmpPrefix.size());
  pid_t pid = static_cast<pid_t>(std::atol(std::string(name.substr(0, name.find('-'))).c_str()));
  if (pid <= 0) return false;
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

Result<void> ensure_dirs(const stdfs::path& root) {
  for (const stdfs::path& d : {root, root / "blobs", blobs_dir(root), layers_dir(root)})
    if (auto r = make_private_dir(d); !r) return r;
  return {};
}

Result<StoreLock> StoreLock::acquire(const stdfs::path& root) {
  if (auto r = ensure_dirs(root); !r) return fail(r.error());
  stdfs::path p = root / "stack.lock";
  UniqueFd fd(::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("open " + p.string());
  while (::flock(fd.get(), LOCK_EX) != 0)
    if (errno != EINTR) return fail_errno("lock " + p.string());
  return StoreLock(std::move(fd));
}

// --- blobs -----------------------------------------------------------------------------------

Result<BlobWriter> BlobWriter::create(const stdfs::path& root,
                                      std::function<void(const std::string&)> on_digest) {
  if (auto r = ensure_dirs(root); !r) return fail(r.error());
  std::string tmpl = (blobs_dir(root) / tmp_template()).string();
  UniqueFd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!fd) return fail_errno("create a temporary blob in " + blobs_dir(root).string());
  ::fchmod(fd.get(), 0600);
  BlobWriter w(root, tmpl, std::move(fd));
  w.on_digest_ = std::move(on_digest);
  return w;
}

BlobWriter::BlobWriter(BlobWriter&& o) noexcept
    : root_(std::move(o.root_)),
      path_(std::move(o.path_)),
      on_digest_(std::move(o.on_digest_)),
      fd_(std::move(o.fd_)),
      hash_(std::move(o.hash_)),
      size_(o.size_),
      done_(std::exchange(o.done_, true)) {}

BlobWriter::~BlobWriter() {
  if (!done_ && !path_.empty()) ::unlink(path_.c_str());
}

Result<void> BlobWriter::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  for (size_t left = n; left > 0;) {
    ssize_t w = ::write(fd_.get(), p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail_errno("write " + path_.string());
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  hash_->update(data, n);
  size_ += n;
  return {};
}

Result<void> BlobWriter::restart() {
  if (::ftruncate(fd_.get(), 0) != 0 || ::lseek(fd_.get(), 0, SEEK_SET) != 0)
    return fail_errno("truncate " + path_.string());
  hash_->reset();
  size_ = 0;
  return {};
}

Result<std::string> BlobWriter::commit(std::string_view expected, int64_t expected_size,
                                       bool* existed) {
  std::string hex = hash_->hex_digest();
  auto refuse = [&](std::string why) {
    ::unlink(path_.c_str());  // bytes that are not what they should be are of no use
    done_ = true;
    return fail(std::move(why));
  };
  if (!expected.empty() && expected != "sha256:" + hex)
    return refuse("digest mismatch: expected " + std::string(expected) + ", got sha256:" + hex +
                  " (" + std::to_string(size_) + " bytes)");
  if (expected_size >= 0 && static_cast<uint64_t>(expected_size) != size_)
    return refuse("size mismatch: expected " + std::to_string(expected_size) + " bytes, got " +
                  std::to_string(size_));
  if (::fsync(fd_.get()) != 0) return fail_errno("fsync " + path_.string());
  fd_.reset();
  if (on_digest_) on_digest_(hex);
  stdfs::path final_path = blob_path(root_, hex);
  bool there = ::access(final_path.c_str(), F_OK) == 0;
  if (existed) *existed = there;
  if (there) {
    ::unlink(path_.c_str());  // the same bytes are there already
  } else if (::rename(path_.c_str(), final_path.c_str()) != 0) {
    return fail_errno("rename " + path_.string());
  }
  done_ = true;
  sync_dir(blobs_dir(root_));
  return hex;
}

Result<std::string> put_blob(const stdfs::path& root, std::string_view content,
                             std::string_view expected) {
  auto w = BlobWriter::create(root);
  if (!w) return fail(w.error());
  if (auto r = w->write(content.data(), content.size()); !r) return fail(r.error());
  return w->commit(expected);
}

bool has_blob(const stdfs::path& root, std::string_view hex) {
  return ::access(blob_path(root, hex).c_str(), F_OK) == 0;
}

Result<std::string> read_blob(const stdfs::path& root, std::string_view digest) {
  std::string hex = STACK_TRY_CTX(digest_hex(digest), "read blob");
  std::string text =
      STACK_TRY_CTX(read_file(blob_path(root, hex), kMaxDocument, "an image document"),
                    "read blob " + std::string(digest));
  if (sha256_hex(text) != hex)
    return fail("blob " + std::string(digest) + " is corrupt (its content has another digest)");
  return text;
}

// --- layers ----------------------------------------------------------------------------------

bool has_layer(const stdfs::path& root, std::string_view diff_hex) {
  struct stat st {};
  return ::lstat((layers_dir(root) / std::string(diff_hex)).c_str(), &st) == 0 &&
         S_ISDIR(st.st_mode);
}

Result<std::string> ensure_layer(const stdfs::path& root, const stdfs::path& blob,
                                 std::string_view expected_diff, ImportMeter* meter) {
  if (!expected_diff.empty() && has_layer(root, expected_diff)) return std::string(expected_diff);
  if (auto r = ensure_dirs(root); !r) return fail(r.error());
  std::string tmpl = (layers_dir(root) / tmp_template()).string();
  if (!::mkdtemp(tmpl.data())) return fail_errno("create a temporary layer directory");
  stdfs::path tmp = tmpl;
  auto guard = ScopeGuard([&] { (void)remove_tree(tmp); });
  ::chmod(tmp.c_str(), 0755);
  auto unpacked = unpack_layer(blob, tmp, meter);
  if (!unpacked) return fail(unpacked.error());
  const UnpackedLayer& layer = *unpacked;
  if (!expected_diff.empty() && layer.diff_id != expected_diff)
    return fail("layer content does not match its diff_id: the config says sha256:" +
                std::string(expected_diff) + ", the tar stream is sha256:" + layer.diff_id);
  auto lock = StoreLock::acquire(root);
  if (!lock) return fail(lock.error());
  stdfs::path final_path = layers_dir(root) / layer.diff_id;
  if (!has_layer(root, layer.diff_id)) {  // else unpacked meanwhile by someone else
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) return fail_errno("rename " + tmp.string());
    guard.dismiss();
    sync_dir(layers_dir(root));
  }
  return layer.diff_id;
}

// --- index.json ------------------------------------------------------------------------------

std::string ref_name(const Descriptor& d) {
  auto it = d.annotations.find(std::string(kRefNameAnnotation));
  return it == d.annotations.end() ? std::string() : it->second;
}

Result<OciIndex> load_index(const stdfs::path& root) {
  auto text = read_file(index_path(root));
  if (!text) {
    if (text.error().sys_errno == ENOENT) return OciIndex{};
    return fail(text.error());
  }
  OciIndex index = STACK_TRY_CTX(parse_index(*text), index_path(root).string());
  // The first version stored "busybox:latest": the same name, canonical now.
  for (auto& d : index.manifests) {
    std::string name = ref_name(d);
    if (name.empty()) continue;
    if (auto canonical = normalize_reference(name); canonical && *canonical != name)
      d.annotations[std::string(kRefNameAnnotation)] = *canonical;
  }
  return index;
}

Result<void> save_index(const stdfs::path& root, const OciIndex& index) {
  OciIndex sorted = index;
  // Named entries by name, untagged ones after them by digest: a stable file.
  std::stable_sort(sorted.manifests.begin(), sorted.manifests.end(),
                   [](const Descriptor& a, const Descriptor& b) {
                     std::string na = ref_name(a), nb = ref_name(b);
                     if (na.empty() != nb.empty()) return nb.empty();
                     return na != nb ? na < nb : a.digest < b.digest;
                   });
  std::error_code ec;
  if (!stdfs::exists(root / "oci-layout", ec))
    if (auto r =
            write_file_atomic(root / "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}\n", 0600);
        !r)
      return r;
  return write_file_atomic(index_path(root), render_index(sorted), 0600);
}

Result<Image> load_image(const stdfs::path& root, const OciIndex& index, const Descriptor& desc) {
  Image img;
  img.reference = ref_name(desc);
  img.manifest_digest = desc.digest;
  for (const auto& d : index.manifests)
    if (d.digest == desc.digest && !ref_name(d).empty()) img.tags.push_back(ref_name(d));
  std::sort(img.tags.begin(), img.tags.end());
  img.tags.erase(std::unique(img.tags.begin(), img.tags.end()), img.tags.end());
  if (auto it = desc.annotations.find(std::string(kPulledAtAnnotation));
      it != desc.annotations.end())
    img.pulled_at = std::atoll(it->second.c_str());
  if (auto it = desc.annotations.find(std::string(kRepoDigestAnnotation));
      it != desc.annotations.end())
    img.repo_digest = it->second;
  std::string mtext = STACK_TRY_CTX(read_blob(root, desc.digest), "manifest");
  Manifest manifest = STACK_TRY_CTX(parse_manifest(mtext), desc.digest);
  img.id = manifest.config.digest;
  std::string ctext = STACK_TRY_CTX(read_blob(root, manifest.config.digest), "image config");
  ParsedConfig config = STACK_TRY_CTX(parse_config(ctext), img.id);
  img.config = std::move(config.config);
  img.created = config.created;
  img.os = config.platform.os;
  img.architecture = config.platform.architecture;
  img.variant = config.platform.variant;
  img.diff_ids = config.diff_ids;
  for (const auto& l : manifest.layers) img.size += l.size;
  for (const auto& d : config.diff_ids) {
    std::string hex = STACK_TRY_CTX(digest_hex(d), img.id);
    if (!has_layer(root, hex))
      return fail("layer " + d + " is missing from " + layers_dir(root).string());
    img.layers.push_back(layers_dir(root) / hex);
  }
  return img;
}

uint64_t tree_bytes(const stdfs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (stdfs::recursive_directory_iterator it(dir, stdfs::directory_options::none, ec), end;
       !ec && it != end; it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode))
      total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

}  // namespace stack::fs
