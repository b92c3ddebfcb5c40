// load(): finds the files, reads `.env`, parses and interpolates each file, applies its
// include and extends, merges the files, then validates and normalises the top level and every
// service, applies profiles and checks cross-references. Reads files only.
#include "spec/loader.h"
#include "spec/network_fields.h"

#include <algorithm>
#include <system_error>
#include <unordered_map>
#include <unordered_set>

#include "common/files.h"
#include "spec/assemble.h"
#include "spec/diagnostics.h"
#include "spec/interpolate.h"
#include "spec/merge.h"
#include "spec/node.h"
#include "spec/service.h"
#include "spec/toplevel.h"
#include "spec/validate.h"

namespace stack::spec {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kDefaultFiles = {"stack.yaml",          "stack.yml",
                                                "compose.yaml",        "compose.yml",
                                                "docker-compose.yaml", "docker-compose.yml"};

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

void record_keys(const Node& n, const std::string& prefix, std::vector<KeyUse>& out) {
  for (const Entry& e : n.entries) {
    if (e.key.rfind("x-", 0) == 0 || (prefix.empty() && e.key == "services")) continue;
    std::string path = prefix.empty() ? e.key : prefix + "." + e.key;
    out.push_back(KeyUse{path, e.key_pos});
    if (e.value.is_mapping()) record_keys(e.value, path, out);
  }
}

std::vector<std::string> split_profiles(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string p = text.substr(start, comma - start);
    p.erase(0, p.find_first_not_of(' '));
    p.erase(p.find_last_not_of(' ') + 1);
    if (!p.empty()) out.push_back(p);
    start = comma + 1;
  }
  return out;
}

bool enabled(const Service& s, const std::vector<std::string>& active) {
  if (s.profiles.empty()) return true;
  for (const std::string& p : s.profiles)
    if (std::find(active.begin(), active.end(), p) != active.end()) return true;
  return std::find(active.begin(), active.end(), "*") != active.end();
}

// The daemon's budget (LoadOptions::deadline, cancel) as the check parse_yaml asks.
StopCheck stop_check(const LoadOptions& opts) {
  if (!opts.deadline && opts.cancel == nullptr) return {};
  return [&opts]() -> std::optional<std::string> {
    if (opts.cancel != nullptr && opts.cancel->load(std::memory_order_relaxed))
      return "loading was cancelled";
    if (opts.deadline && std::chrono::steady_clock::now() > *opts.deadline)
      return "loading took longer than its time budget; stopped";
    return std::nullopt;
  };
}

Result<void> check_budget(const StopCheck& stop) {
  if (stop)
    if (auto why = stop()) return fail(*why);
  return {};
}

// Each service's part of the tree is released once it is normalised: nothing reads it after,
// and the tree and the typed services are then never both whole in memory.
// The env_file problems of the services SELECTED (all when empty) and of everything they
// depend on: compose reads only the env files of the services it runs. A selected name the file
// lacks is left to the caller (the planner names it).
void report_env_file_errors(Diagnostics& diag, const Stack& out,
                            const std::vector<std::string>& selected) {
  std::unordered_map<std::string_view, const Service*> by_name;
  for (const Service& s : out.services) by_name.emplace(s.name, &s);
  std::unordered_set<const Service*> runs;
  std::vector<const Service*> todo;
  if (selected.empty())
    for (const Service& s : out.services) todo.push_back(&s);
  for (const std::string& name : selected)
    if (auto it = by_name.find(name); it != by_name.end()) todo.push_back(it->second);
  while (!todo.empty()) {
    const Service* s = todo.back();
    todo.pop_back();
    if (!runs.insert(s).second) continue;
    for (const Dependency& d : s->dependencies)
      if (auto it = by_name.find(d.service); it != by_name.end()) todo.push_back(it->second);
  }
  for (const Service& s : out.services)
    if (runs.count(&s))
      for (const auto& [pos, message] : s.env_file_errors) diag.error(pos, message);
}

bool normalize_services(Node& services, const FieldCtx& top, Stack& out, const StopCheck& stop,
                        const std::vector<std::string>& selected) {
  std::vector<Service> all;
  all.reserve(services.entries.size());
  size_t done = 0;
  for (Entry& e : services.entries) {
    if (stop && ++done % 1024 == 0)
      if (auto why = stop()) {
        top.diag.error(e.key_pos, *why);
        return false;
      }
    if (e.key.rfind("x-", 0) == 0) continue;
    if (!valid_object_name(e.key)) {
      top.diag.error(e.key_pos, "invalid service name \"" + e.key +
                                    "\": use letters, digits, '.', '_' and '-'");
      continue;
    }
    if (!top.check_length(e.key_pos, "service name", e.key, kMaxServiceName,
                          "a DNS label on its networks, and part of its containers' names"))
      continue;
    all.push_back(normalize_service(top.child(e.key), e));
    e.value = Node();
  }
  for (Service& s : all) {
    for (const std::string& p : s.profiles)
      if (std::find(out.profiles.begin(), out.profiles.end(), p) == out.profiles.end())
        out.profiles.push_back(p);
  }
  std::sort(out.profiles.begin(), out.profiles.end());
  std::vector<Service> disabled;
  for (Service& s : all)
    (enabled(s, out.active_profiles) ? out.services : disabled).push_back(std::move(s));
  check_references(top, out, disabled);
  report_env_file_errors(top.diag, out, selected);
  return true;
}

}  // namespace

Result<std::vector<fs::path>> resolve_files(const LoadOptions& opts) {
  // A NUL would cut the name short at open(2): another file than the one named would load.
  auto has_nul = [](const fs::path& p) { return p.native().find('\0') != std::string::npos; };
  if (has_nul(opts.working_dir)) return fail("working directory name contains a NUL byte");
  for (const fs::path& f : opts.files)
    if (has_nul(f)) return fail("file name contains a NUL byte: " + f.string());
  for (const fs::path& f : opts.env_files)
    if (has_nul(f)) return fail("env file name contains a NUL byte: " + f.string());
  std::error_code ec;
  fs::path base = opts.working_dir.empty() ? fs::current_path(ec) : opts.working_dir;
  std::vector<fs::path> out;
  if (!opts.files.empty()) {
    for (const fs::path& f : opts.files) {
      fs::path full = (f.is_absolute() ? f : base / f).lexically_normal();
      if (f != "-" && !is_file(full)) return fail("file not found: " + f.string());
      out.push_back(full);
    }
    return out;
  }
  for (const std::string& name : kDefaultFiles) {
    if (is_file(base / name)) {
      out.push_back((base / name).lexically_normal());
      return out;
    }
  }
  std::string looked;
  for (const std::string& name : kDefaultFiles) looked += (looked.empty() ? "" : ", ") + name;
  return fail("no stack file found in " + base.string() + " (looked for " + looked + ")");
}

Result<Stack> load(const LoadOptions& opts) {
  auto files = resolve_files(opts);
  if (!files) return fail(files.error());
  Stack out;
  out.files = *files;
  out.project_dir = out.files.front().parent_path();

  // Positions name files as the user did; default files by their bare name.
  std::vector<std::string> display;
  for (size_t i = 0; i < out.files.size(); ++i)
    display.push_back(opts.files.empty() ? out.files[i].filename().string()
                                         : opts.files[i].string());
  Diagnostics diag(display);
  BaseDirs base_dirs;
  for (const std::string& d : display) base_dirs[d] = out.project_dir;

  // Interpolation variables: the shell, then --env-file files (or the project's .env).
  std::map<std::string, std::string> dot_env;
  std::vector<fs::path> env_files = opts.env_files;
  if (env_files.empty()) env_files.push_back(out.project_dir / ".env");
  for (const fs::path& f : env_files) {
    fs::path full = f.is_absolute() ? f : (opts.working_dir.empty() ? out.project_dir : opts.working_dir) / f;
    auto vars = read_env_vars(full, !opts.env_files.empty());
    if (!vars) return fail(vars.error());
    for (auto& [k, v] : *vars) dot_env[k] = v;
  }
  VarLookup lookup = [&](const std::string& name) -> std::optional<std::string> {
    if (auto it = opts.environment.find(name); it != opts.environment.end()) return it->second;
    if (auto it = dot_env.find(name); it != dot_env.end()) return it->second;
    return std::nullopt;
  };

  Assembler assembler(diag, base_dirs, lookup, out.project_dir);
  Node merged;
  const StopCheck stop = stop_check(opts);
  assembler.set_stop(&stop);
  for (size_t i = 0; i < out.files.size(); ++i) {
    Result<std::string> text = std::string();
    if (out.files[i].filename() == "-" && opts.stdin_text) {
      if (opts.stdin_text->size() > kMaxStackFileBytes)
        return fail("the stack file on stdin is larger than the limit of " +
                    format_size(kMaxStackFileBytes) + " for stack files");
      text = *opts.stdin_text;
    } else {
      text = read_file(out.files[i], kMaxStackFileBytes, "stack files");
    }
    if (!text) return fail(text.error());
    auto tree = parse_yaml(*text, display[i], stop);
    if (!tree) {
      diag.error_text(tree.error().message);
      continue;
    }
    if (!tree->is_mapping()) {
      diag.error(tree->pos, "expected a mapping with services, got " + tree->describe());
      continue;
    }
    interpolate_tree(*tree, lookup, diag);
    assembler.apply_includes(*tree, out.project_dir);
    if (!diag.has_errors()) assembler.apply_extends(*tree);  // else only echoes
    if (i == 0)
      merged = std::move(*tree);
    else
      merge_files(merged, *tree);
  }
  // Later checks would only report echoes of a syntax or interpolation error.
  if (diag.has_errors()) return fail(diag.to_error());
  if (auto r = check_budget(stop); !r) return fail(r.error());

  FieldCtx top{diag, out.project_dir, lookup, "services", &base_dirs};
  check_top_level(top, merged);
  record_keys(merged, "", out.keys);
  // The Compose specification keeps `version` for old files only; docker compose warns too.
  for (const Entry& e : merged.entries)
    if (e.key == "version") diag.warn(e.key_pos, "version is obsolete and ignored; remove it");

  std::string raw_name = out.project_dir.filename().string();
  SourcePos name_pos{display.front(), 0, 0};
  if (opts.project_name) {
    raw_name = *opts.project_name;
  } else if (auto env = lookup("COMPOSE_PROJECT_NAME"); env && !env->empty()) {
    raw_name = *env;
  } else if (const Node* name = merged.find("name")) {
    FieldCtx name_ctx{diag, out.project_dir, lookup, "name", &base_dirs};
    if (auto v = name_ctx.string(*name)) raw_name = *v;
    name_pos = name->pos;
  }
  out.name = normalize_project_name(raw_name);
  if (out.name.empty())
    diag.error(name_pos,
               "project name \"" + raw_name + "\" has no letters or digits; use -p or name:");
  top.check_length(name_pos, "project name", out.name, kMaxProjectName,
                   "it is part of every container's name, cgroup and DNS name; use -p or name:");

  out.active_profiles = opts.profiles;
  if (out.active_profiles.empty())
    if (auto env = lookup("COMPOSE_PROFILES")) out.active_profiles = split_profiles(*env);

  normalize_top_level(top, merged, out);
  Node* services = merged.find("services");
  if (services == nullptr || services->is_null())
    diag.error(SourcePos{display.front(), 1, 1}, "services is required");
  else if (!services->is_mapping())
    top.type_error(*services, "a mapping of services");
  else if (!normalize_services(*services, top, out, stop, opts.services))
    return fail(diag.to_error());

  // A built image is named by `image:`, else "<project>-<service>", as compose names it.
  for (Service& s : out.services) {
    if (s.build && s.image.empty()) {
      s.image = out.name + "-" + s.name + ":latest";
      s.image_pos = s.build->pos;
    }
    if (!s.build && s.pull_policy == "build") {
      SourcePos at = s.pos;
      for (const KeyUse& k : s.keys)
        if (k.path == "services." + s.name + ".pull_policy") at = k.pos;
      diag.error(at, "services." + s.name + ".pull_policy: build needs a build section");
    }
  }
  warn_network_drivers(out, diag);
  if (diag.has_errors()) return fail(diag.to_error());
  out.warnings = diag.warnings();
  out.file_names = diag.files();
  return out;
}

}  // namespace stack::spec
