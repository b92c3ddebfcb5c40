// Reading OCI layouts and `docker save` tarballs into the store, and writing `image save`'s tar.
// A tar is read in one pass: every file becomes a blob under its own digest (an OCI archive's
// blobs/sha256/<hex> must match <hex>), the small JSON documents are kept in memory, then the
// documents say which blobs make which image. Blobs nothing used are removed again.
#include "fs/image_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "common/files.h"
#include "common/unique_fd.h"
#include "fs/import_meter.h"
#include "fs/store_internal.h"

namespace stack::fs {

namespace {

using nlohmann::json;

constexpr size_t kMaxDocument = 4 << 20;

struct ReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ReadArchive = std::unique_ptr<archive, ReadDeleter>;

Error archive_error(archive* a, std::string_view context) {
  const char* msg = archive_error_string(a);
  return Error{std::string(context) + ": " + (msg ? msg : "unknown libarchive error")};
}

Result<ReadArchive> open_tar(const stdfs::path& path) {
  ReadArchive a(archive_read_new());
  // Built-in decoders only: support_filter_all would run external programs.
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK)
    return fail(archive_error(a.get(), "open " + path.string()));
  return a;
}

std::string clean_name(std::string_view n) {
  while (n.starts_with("./")) n.remove_prefix(2);
  while (n.starts_with("/")) n.remove_prefix(1);
  return std::string(n);
}

bool is_document(const std::string& name) {
  return name == "oci-layout" || name == "index.json" || name == "manifest.json" ||
         name == "repositories";
}

// The files of an archive: documents in memory, everything else as blobs by path.
struct Contents {
  std::map<std::string, std::string> docs;   // name -> text
  std::map<std::string, std::string> blobs;  // path in the archive -> hex
  std::set<std::string> created;             // hexes this read put into the store
};

// Where the blobs of an OCI layout come from: a directory, or what a tar pass put in the store.
struct BlobSource {
  const stdfs::path* dir = nullptr;  // an OCI layout directory
  const Contents* tar = nullptr;
};

Result<void> scan_tar(ImageStore::Internal& store, const stdfs::path& path, Contents& out,
                      ImageStore::Internal::Pin& pin, const ImportOptions& options) {
  ReadArchive a = FS_TRY(open_tar(path));
  ImportMeter meter(options, store.root, "copy", 0);
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return fail(archive_error(a.get(), "read " + path.string()));
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    std::string name = clean_name(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
    auto entry_error = [&](const Error& err) { return err.wrap("archive entry \"" + name + "\""); };
    if (is_document(name)) {
      if (archive_entry_size(e) > static_cast<la_int64_t>(kMaxDocument))
        return fail(entry_error(Error{"larger than 4 MiB"}));
      std::string text(static_cast<size_t>(archive_entry_size(e)), '\0');
      if (archive_read_data(a.get(), text.data(), text.size()) !=
          static_cast<la_ssize_t>(text.size()))
        return fail(entry_error(archive_error(a.get(), "read")));
      out.docs[name] = std::move(text);
      continue;
    }
    auto w = BlobWriter::create(store.root, pin_to(pin));
    if (!w) return fail(w.error());
    char buf[1 << 16];
    for (;;) {
      la_ssize_t n = archive_read_data(a.get(), buf, sizeof buf);
      if (n < 0) return fail(entry_error(archive_error(a.get(), "read")));
      if (n == 0) break;
      if (auto m = meter.add(static_cast<uint64_t>(n)); !m) return fail(m.error());
      if (auto wr = w->write(buf, static_cast<size_t>(n)); !wr) return fail(wr.error());
    }
    // An OCI layout's blobs are named by their digest: it must hold.
    std::string expected;
    if (name.starts_with("blobs/sha256/")) expected = "sha256:" + name.substr(13);
    bool existed = false;
    auto hex = w->commit(expected, -1, &existed);
    if (!hex) return fail(entry_error(hex.error()));
    if (!existed) out.created.insert(*hex);
    out.blobs[name] = *hex;
  }
  meter.done();
  return {};
}

// The blob DIGEST from SOURCE, copied into the store (verified) unless it is there.
Result<void> fetch_blob(ImageStore::Internal& store, const BlobSource& src,
                        const std::string& digest, ImageStore::Internal::Pin& pin) {
  std::string hex = FS_TRY(digest_hex(digest));
  pin.add(hex);
  if (has_blob(store.root, hex)) return {};
  if (src.tar) return fail("blob " + digest + " is missing from the archive");
  stdfs::path from = *src.dir / "blobs" / "sha256" / hex;
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return fail_errno("open " + from.string());
  auto w = BlobWriter::create(store.root);
  if (!w) return fail(w.error());
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read " + from.string());
    }
    if (n == 0) break;
    if (auto r = w->write(buf, static_cast<size_t>(n)); !r) return fail(r.error());
  }
  auto committed = w->commit(digest);
  if (!committed) return fail(committed.error().wrap(from.string()));
  return {};
}

// Unpacks the layers of MANIFEST (its blobs in the store), checked against the config.
Result<void> unpack_layers(ImageStore::Internal& store, const Manifest& m,
                           ImageStore::Internal::Pin& pin, const ImportOptions& options) {
  std::string ctext = FS_TRY(read_blob(store.root, m.config.digest));
  ParsedConfig config = FS_TRY(parse_config(ctext));
  if (config.diff_ids.size() != m.layers.size())
    return fail("the manifest has " + std::to_string(m.layers.size()) + " layers, its config " +
                std::to_string(config.diff_ids.size()) + " diff_ids");
  for (size_t i = 0; i < m.layers.size(); i++) {
    std::string blob_hex = FS_TRY(digest_hex(m.layers[i].digest));
    std::string diff = FS_TRY(digest_hex(config.diff_ids[i]));
    pin.add(diff);
    ImportMeter meter(options, store.root, "unpack", 0);
    auto r = ensure_layer(store.root, blob_path(store.root, blob_hex), diff, &meter);
    if (!r) return fail(r.error().wrap("layer " + m.layers[i].digest));
  }
  return {};
}

// The manifest DESC names (through nested indexes, choosing PLATFORM), in the store.
Result<Descriptor> resolve_manifest(ImageStore::Internal& store, const BlobSource& src,
                                    Descriptor desc, const Platform& platform,
                                    ImageStore::Internal::Pin& pin, int depth = 0) {
  if (depth > 4) return fail("indexes nested too deep");
  if (auto r = fetch_blob(store, src, desc.digest, pin); !r) return fail(r.error());
  std::string text = FS_TRY(read_blob(store.root, desc.digest));
  switch (document_kind(text, desc.media_type)) {
    case DocumentKind::index: {
      OciIndex index = FS_TRY(parse_index(text));
      Descriptor chosen = FS_TRY(choose_platform(index, platform));
      return resolve_manifest(store, src, chosen, platform, pin, depth + 1);
    }
    case DocumentKind::manifest:
      desc.media_type = FS_TRY(parse_manifest(text)).media_type;
      return desc;
    default:
      return fail("blob " + desc.digest + " is neither a manifest nor an index");
  }
}

// Names an OCI index entry carries: containerd's full name, or a ref.name that is a whole
// reference (a bare tag like "latest" names nothing by itself).
std::vector<std::string> names_of(const Descriptor& d) {
  std::vector<std::string> out;
  auto take = [&](std::string_view key) {
    auto it = d.annotations.find(std::string(key));
    if (it == d.annotations.end()) return;
    if (it->second.find_first_of(":/@") == std::string::npos) return;
    if (auto r = normalize_reference(it->second)) out.push_back(*r);
  };
  take(kContainerdNameAnnotation);
  if (out.empty()) take(kRefNameAnnotation);
  return out;
}

Result<std::vector<ArchivedImage>> read_oci(ImageStore::Internal& store, const BlobSource& src,
                                            const std::string& index_text, const Platform& platform,
                                            ImageStore::Internal::Pin& pin,
                                            const ImportOptions& options) {
  OciIndex index = STACK_TRY_CTX(parse_index(index_text), "index.json");
  std::vector<ArchivedImage> out;
  std::map<std::string, size_t> by_digest;
  for (const auto& entry : index.manifests) {
    Descriptor m = STACK_TRY_CTX(resolve_manifest(store, src, entry, platform, pin), entry.digest);
    auto names = names_of(entry);
    if (auto it = by_digest.find(m.digest); it != by_digest.end()) {
      auto& known = out[it->second].names;
      known.insert(known.end(), names.begin(), names.end());
      continue;
    }
    std::string mtext = FS_TRY(read_blob(store.root, m.digest));
    Manifest manifest = STACK_TRY_CTX(parse_manifest(mtext), m.digest);
    if (auto r = fetch_blob(store, src, manifest.config.digest, pin); !r)
      return fail(r.error().wrap(m.digest));
    for (const auto& l : manifest.layers)
      if (auto r = fetch_blob(store, src, l.digest, pin); !r) return fail(r.error().wrap(m.digest));
    if (auto r = unpack_layers(store, manifest, pin, options); !r)
      return fail(r.error().wrap(m.digest));
    by_digest[m.digest] = out.size();
    out.push_back({names, m});
  }
  if (out.empty()) return fail("index.json names no image");
  return out;
}

std::string sniff_layer_type(const stdfs::path& blob) {
  UniqueFd fd(::open(blob.c_str(), O_RDONLY | O_CLOEXEC));
  unsigned char m[4] = {};
  if (fd && ::read(fd.get(), m, 4) == 4) {
    if (m[0] == 0x1f && m[1] == 0x8b) return "application/vnd.oci.image.layer.v1.tar+gzip";
    if (std::memcmp(m, "\x28\xb5\x2f\xfd", 4) == 0)
      return "application/vnd.oci.image.layer.v1.tar+zstd";
  }
  return "application/vnd.oci.image.layer.v1.tar";
}

// `docker save`: manifest.json lists each image's config file, layer files and RepoTags.
Result<std::vector<ArchivedImage>> read_docker(ImageStore::Internal& store, const Contents& c,
                                               ImageStore::Internal::Pin& pin,
                                               const ImportOptions& options) {
  json list = json::parse(c.docs.at("manifest.json"), nullptr, false);
  if (!list.is_array() || list.empty()) return fail("manifest.json: not a list of images");
  auto blob_of = [&](const json& path) -> Result<Descriptor> {
    if (!path.is_string()) return fail("manifest.json: a path is not a string");
    auto it = c.blobs.find(clean_name(path.get<std::string>()));
    if (it == c.blobs.end())
      return fail("manifest.json names " + path.get<std::string>() + ", which the archive lacks");
    struct stat st {};
    ::stat(blob_path(store.root, it->second).c_str(), &st);
    return Descriptor{"", "sha256:" + it->second, st.st_size, {}, {}};
  };
  std::vector<ArchivedImage> out;
  for (const auto& item : list) {
    if (!item.is_object() || !item.contains("Config") || !item.contains("Layers") ||
        !item["Layers"].is_array())
      return fail("manifest.json: an entry lacks Config or Layers");
    Manifest m;
    m.media_type = kMediaTypeManifest;
    m.config = FS_TRY(blob_of(item["Config"]));
    m.config.media_type = kMediaTypeConfig;
    for (const auto& l : item["Layers"]) {
      Descriptor d = FS_TRY(blob_of(l));
      d.media_type = sniff_layer_type(blob_path(store.root, d.digest.substr(7)));
      m.layers.push_back(d);
    }
    std::string mtext = render_manifest(m);
    pin.add(sha256_hex(mtext));
    std::string mhex = FS_TRY(put_blob(store.root, mtext));
    if (auto r = unpack_layers(store, m, pin, options); !r) return fail(r.error());
    ArchivedImage img{{},
                      Descriptor{std::string(kMediaTypeManifest),
                                 "sha256:" + mhex,
                                 static_cast<int64_t>(mtext.size()),
                                 {},
                                 {}}};
    if (item.contains("RepoTags") && item["RepoTags"].is_array())
      for (const auto& t : item["RepoTags"])
        if (t.is_string())
          if (auto r = normalize_reference(t.get<std::string>())) img.names.push_back(*r);
    out.push_back(std::move(img));
  }
  return out;
}

// Blobs this read created that no image read uses: removed, unless something else pinned them.
void drop_unused(ImageStore::Internal& store, const std::set<std::string>& created,
                 const std::set<std::string>& used) {
  auto lock = StoreLock::acquire(store.root);
  if (!lock) return;
  auto pinned = store.pinned();
  for (const auto& hex : created)
    if (!used.count(hex) && !pinned.count(hex)) ::unlink(blob_path(store.root, hex).c_str());
}

// The hexes of every blob IMAGES use.
std::set<std::string> used_blobs(const stdfs::path& root,
                                 const std::vector<ArchivedImage>& images) {
  std::set<std::string> used;
  for (const auto& img : images) {
    used.insert(img.manifest.digest.substr(7));
    auto text = read_blob(root, img.manifest.digest);
    if (!text) continue;
    auto m = parse_manifest(*text);
    if (!m) continue;
    used.insert(m->config.digest.substr(7));
    for (const auto& l : m->layers) used.insert(l.digest.substr(7));
  }
  return used;
}

}  // namespace

Result<SourceKind> detect_source(const stdfs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail_errno("stat " + path.string());
  if (S_ISDIR(st.st_mode))
    return ::access((path / "oci-layout").c_str(), F_OK) == 0 ? SourceKind::oci_dir
                                                              : SourceKind::rootfs_dir;
  if (!S_ISREG(st.st_mode)) return fail(path.string() + " is neither a directory nor a tarball");
  auto a = open_tar(path);
  if (!a) return SourceKind::rootfs_tar;  // unpack_layer says what is wrong with it
  // Writers put oci-layout and manifest.json anywhere (often last), so the headers are read to
  // the end, but the first entry an image archive cannot hold ("bin/", "etc/passwd") says rootfs.
  auto is_hex_name = [](std::string_view n) {
    return n.size() == 64 && std::all_of(n.begin(), n.end(), [](char c) {
             return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
  };
  bool layout = false, docker = false;
  for (;;) {
    archive_entry* e = nullptr;
    if (archive_read_next_header(a->get(), &e) != ARCHIVE_OK) break;
    std::string name = clean_name(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
    while (name.ends_with("/")) name.pop_back();
    std::string_view top = std::string_view(name).substr(0, name.find('/'));
    std::string_view rest = name.find('/') == std::string::npos
                                ? std::string_view()
                                : std::string_view(name).substr(name.find('/') + 1);
    if (name.empty()) continue;
    if (name == "oci-layout" || name == "index.json") {
      layout = true;
    } else if (name == "manifest.json") {
      docker = true;
    } else if (name == "repositories" || name == "blobs" || name == "blobs/sha256" ||
               (top == "blobs" && rest.starts_with("sha256/") && is_hex_name(rest.substr(7))) ||
               (name.ends_with(".json") &&
                is_hex_name(std::string_view(name).substr(0, name.size() - 5))) ||
               (name.ends_with(".tar") &&  // skopeo's docker-archive layers
                is_hex_name(std::string_view(name).substr(0, name.size() - 4))) ||
               (is_hex_name(top) &&
                (rest.empty() || rest == "VERSION" || rest == "json" || rest == "layer.tar"))) {
      continue;
    } else {
      return SourceKind::rootfs_tar;
    }
  }
  if (docker) return SourceKind::docker_tar;
  if (layout) return SourceKind::oci_tar;
  return SourceKind::rootfs_tar;
}

Result<std::vector<ArchivedImage>> read_archive(ImageStore::Internal& store,
                                                const stdfs::path& path, SourceKind kind,
                                                const ImportOptions& options,
                                                const Platform& platform,
                                                ImageStore::Internal::Pin& keep) {
  if (kind == SourceKind::oci_dir) {
    auto index = read_file(path / "index.json", kMaxDocument, "index.json");
    if (!index) return fail(index.error());
    BlobSource src{&path, nullptr};
    return read_oci(store, src, *index, platform, keep, options);
  }
  Contents c;
  Result<std::vector<ArchivedImage>> out = fail("no images");
  {
    auto scanned = store.pin();  // every blob of the tar, until it is known which are used
    if (auto r = scan_tar(store, path, c, scanned, options); !r) {
      out = fail(r.error());
    } else if (kind == SourceKind::docker_tar || c.docs.count("manifest.json")) {
      out = c.docs.count("manifest.json") ? read_docker(store, c, keep, options)
                                          : fail("the archive has no manifest.json");
    } else {
      BlobSource src{nullptr, &c};
      out = c.docs.count("index.json")
                ? read_oci(store, src, c.docs.at("index.json"), platform, keep, options)
                : fail("the archive has no index.json");
    }
    if (out)
      for (const auto& hex : used_blobs(store.root, *out)) keep.add(hex);
  }
  drop_unused(store, c.created, out ? used_blobs(store.root, *out) : std::set<std::string>{});
  return out;
}

}  // namespace stack::fs
