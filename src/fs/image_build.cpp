// The store's side of image builds: layers packed from overlay upper directories, images
// committed from a recipe (config rendered with every field an image may carry), and the build
// cache's records under <root>/build-cache, which collect_garbage keeps alive.
#include "fs/image_build.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/scope_guard.h"
#include "fs/layer_pack.h"
#include "fs/layer_unpack.h"
#include "fs/store_internal.h"

namespace stack::fs {

namespace {

using json = nlohmann::json;

stdfs::path cache_dir(const stdfs::path& root) { return root / "build-cache"; }

bool hex_name(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

json strings(const std::vector<std::string>& v) { return v; }

std::string render_recipe_config(const ImageRecipe& r) {
  json c = json::object();
  const ImageConfig& ic = r.config;
  if (!ic.env.empty()) c["Env"] = strings(ic.env);
  if (!ic.entrypoint.empty()) c["Entrypoint"] = strings(ic.entrypoint);
  if (!ic.cmd.empty()) c["Cmd"] = strings(ic.cmd);
  if (!ic.working_dir.empty()) c["WorkingDir"] = ic.working_dir;
  if (!ic.user.empty()) c["User"] = ic.user;
  if (!ic.stop_signal.empty()) c["StopSignal"] = ic.stop_signal;
  if (!ic.exposed_ports.empty()) {
    json p = json::object();
    for (const auto& port : ic.exposed_ports) p[port] = json::object();
    c["ExposedPorts"] = p;
  }
  if (!ic.volumes.empty()) {
    json v = json::object();
    for (const auto& vol : ic.volumes) v[vol] = json::object();
    c["Volumes"] = v;
  }
  if (!ic.labels.empty()) c["Labels"] = ic.labels;
  if (ic.healthcheck) {
    const HealthConfig& h = *ic.healthcheck;
    json hj = {{"Test", h.test}};
    if (h.interval_ns) hj["Interval"] = h.interval_ns;
    if (h.timeout_ns) hj["Timeout"] = h.timeout_ns;
    if (h.start_period_ns) hj["StartPeriod"] = h.start_period_ns;
    if (h.start_interval_ns) hj["StartInterval"] = h.start_interval_ns;
    if (h.retries) hj["Retries"] = h.retries;
    c["Healthcheck"] = hj;
  }
  if (!r.shell.empty()) c["Shell"] = strings(r.shell);
  std::vector<std::string> diff_ids;
  for (const auto& l : r.layers) diff_ids.push_back(l.diff_id);
  json history = json::array();
  for (const auto& h : r.history) history.push_back({{"created_by", h}});
  json j = {
      {"created", format_rfc3339(r.created)},
      {"architecture", r.architecture},
      {"os", r.os},
      {"config", c},
      {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}},
  };
  if (!r.variant.empty()) j["variant"] = r.variant;
  if (!history.empty()) j["history"] = history;
  return j.dump();
}

}  // namespace

stdfs::path layer_path(const ImageStore& store, const BuildLayer& layer) {
  std::string_view d = layer.diff_id;
  if (d.starts_with("sha256:")) d.remove_prefix(7);
  return layers_dir(store.root()) / std::string(d);
}

Result<ImageRecipe> image_recipe(const ImageStore& store, std::string_view reference) {
  Image img = FS_TRY(store.get(reference));
  std::string mtext = FS_TRY(read_blob(store.root(), img.manifest_digest));
  Manifest m = FS_TRY(parse_manifest(mtext));
  std::string ctext = FS_TRY(read_blob(store.root(), m.config.digest));
  ParsedConfig pc = FS_TRY(parse_config(ctext));
  if (pc.diff_ids.size() != m.layers.size())
    return fail("image " + std::string(reference) + ": " + std::to_string(m.layers.size()) +
                " layers but " + std::to_string(pc.diff_ids.size()) + " diff_ids");
  ImageRecipe r;
  for (size_t i = 0; i < m.layers.size(); ++i)
    r.layers.push_back(BuildLayer{pc.diff_ids[i], m.layers[i].digest, m.layers[i].size,
                                  m.layers[i].media_type, 0});
  r.config = pc.config;
  r.os = pc.platform.os.empty() ? "linux" : pc.platform.os;
  r.architecture = pc.platform.architecture.empty() ? "amd64" : pc.platform.architecture;
  r.variant = pc.platform.variant;
  r.created = pc.created;
  try {
    json j = json::parse(ctext);
    if (j.contains("config") && j["config"].is_object() && j["config"].contains("Shell") &&
        j["config"]["Shell"].is_array())
      for (const auto& s : j["config"]["Shell"])
        if (s.is_string()) r.shell.push_back(s.get<std::string>());
  } catch (const std::exception&) {
  }
  return r;
}

Result<BuildLayer> add_upper_layer(ImageStore& store, const stdfs::path& upper) {
  const stdfs::path& root = store.root();
  if (auto r = ensure_dirs(root); !r) return fail(r.error());
  std::string tmpl = (blobs_dir(root) / tmp_template()).string();
  UniqueFd out(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!out) return fail_errno("create a temporary blob in " + blobs_dir(root).string());
  auto tmp_guard = ScopeGuard([&] { ::unlink(tmpl.c_str()); });
  ::fchmod(out.get(), 0600);
  PackedBlob packed = FS_TRY(pack_directory(upper, out.get(), nullptr, true));
  if (::fsync(out.get()) != 0) return fail_errno("fsync " + tmpl);
  auto pin = store.internal().pin({packed.digest});
  bool existed = has_blob(root, packed.digest);
  if (!existed && ::rename(tmpl.c_str(), blob_path(root, packed.digest).c_str()) != 0)
    return fail_errno("rename " + tmpl);
  if (!existed) tmp_guard.dismiss();
  std::string diff = FS_TRY(ensure_layer(root, blob_path(root, packed.digest), "", nullptr));
  return BuildLayer{"sha256:" + diff, "sha256:" + packed.digest, packed.size,
                    layer_media_type(Compression::gzip), 0};
}

Result<Image> commit_image(ImageStore& store, const ImageRecipe& recipe,
                           const std::vector<std::string>& references) {
  const stdfs::path& root = store.root();
  auto pin = store.internal().pin();
  for (const auto& l : recipe.layers) {
    std::string b = FS_TRY(digest_hex(l.blob)), d = FS_TRY(digest_hex(l.diff_id));
    if (!has_blob(root, b)) return fail("layer blob " + l.blob + " is not in the store");
    pin.add(b);
    pin.add(d);
  }
  std::string config_json = render_recipe_config(recipe);
  std::string chex = FS_TRY(put_blob(root, config_json));
  pin.add(chex);
  Manifest m;
  m.media_type = kMediaTypeManifest;
  m.config = Descriptor{std::string(kMediaTypeConfig), "sha256:" + chex,
                        static_cast<int64_t>(config_json.size()), {}, {}};
  for (const auto& l : recipe.layers)
    m.layers.push_back(Descriptor{l.media_type, l.blob, l.size, {}, {}});
  std::string mtext = render_manifest(m);
  std::string mhex = FS_TRY(put_blob(root, mtext));
  pin.add(mhex);
  Descriptor d{std::string(kMediaTypeManifest), "sha256:" + mhex,
               static_cast<int64_t>(mtext.size()), {}, {}};
  std::vector<std::string> refs;
  for (const auto& r : references) refs.push_back(FS_TRY(normalize_reference(r)));
  if (refs.empty()) refs.push_back("");
  Image last;
  for (const auto& r : refs) last = FS_TRY(store.internal().commit(NewImage{r, d, 0, ""}));
  return last;
}

Result<std::optional<BuildLayer>> cache_lookup(const ImageStore& store, std::string_view key) {
  if (!hex_name(key)) return fail("bad build cache key " + std::string(key));
  stdfs::path p = cache_dir(store.root()) / std::string(key);
  if (::access(p.c_str(), F_OK) != 0) return std::optional<BuildLayer>();
  std::string text = FS_TRY(read_file(p, 4096, "a build cache record"));
  json j;
  try {
    j = json::parse(text);
    BuildLayer l{j.at("diff_id").get<std::string>(), j.at("blob").get<std::string>(),
                 j.at("size").get<int64_t>(), j.at("media_type").get<std::string>(),
                 j.value("created", int64_t{0})};
    std::string b = FS_TRY(digest_hex(l.blob)), d = FS_TRY(digest_hex(l.diff_id));
    if (!has_blob(store.root(), b) || !has_layer(store.root(), d)) return std::optional<BuildLayer>();
    return std::optional<BuildLayer>(l);
  } catch (const std::exception&) {
    return std::optional<BuildLayer>();  // a torn record: a miss, rewritten by the step
  }
}

Result<void> cache_record(ImageStore& store, std::string_view key, const BuildLayer& layer) {
  if (!hex_name(key)) return fail("bad build cache key " + std::string(key));
  stdfs::path dir = cache_dir(store.root());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return fail_errno("mkdir " + dir.string());
  json j = {{"diff_id", layer.diff_id},
            {"blob", layer.blob},
            {"size", layer.size},
            {"media_type", layer.media_type},
            {"created", layer.created}};
  return write_file_atomic(dir / std::string(key), j.dump());
}

Result<int> clear_build_cache(ImageStore& store) {
  int n = 0;
  std::error_code ec;
  for (stdfs::directory_iterator it(cache_dir(store.root()), ec), end; !ec && it != end;
       it.increment(ec)) {
    if (::unlink(it->path().c_str()) != 0 && errno != ENOENT)
      return fail_errno("remove " + it->path().string());
    ++n;
  }
  return n;
}

std::vector<BuildLayer> cache_layers(const stdfs::path& root) {
  std::vector<BuildLayer> out;
  std::error_code ec;
  for (stdfs::directory_iterator it(cache_dir(root), ec), end; !ec && it != end; it.increment(ec)) {
    if (!hex_name(it->path().filename().string())) continue;
    auto text = read_file(it->path(), 4096, "a build cache record");
    if (!text) continue;
    try {
      json j = json::parse(*text);
      out.push_back(BuildLayer{j.at("diff_id").get<std::string>(), j.at("blob").get<std::string>(),
                               0, "", 0});
    } catch (const std::exception&) {
    }
  }
  return out;
}

Result<bool> unpack_if_archive(const stdfs::path& file, const stdfs::path& dest) {
  {
    std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(),
                                                             &archive_read_free);
    if (!a) return fail("archive_read_new failed");
    archive_read_support_filter_gzip(a.get());
    archive_read_support_filter_zstd(a.get());
    archive_read_support_format_tar(a.get());
    if (archive_read_open_filename(a.get(), file.c_str(), 1 << 16) != ARCHIVE_OK) return false;
    archive_entry* e = nullptr;
    if (archive_read_next_header(a.get(), &e) != ARCHIVE_OK) return false;
  }
  auto r = unpack_layer(file, dest, nullptr);
  if (!r) return fail(r.error().wrap("unpack " + file.filename().string()));
  return true;
}

}  // namespace stack::fs
