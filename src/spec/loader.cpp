// load(): finds the files, reads `.env`, parses and interpolates each file, merges them,
// then validates and normalises the top level and every service. Reads files only.
#include "spec/loader.h"

#include <algorithm>
#include <cctype>
#include <system_error>

#include "common/files.h"
#include "spec/diagnostics.h"
#include "spec/env_file.h"
#include "spec/interpolate.h"
#include "spec/merge.h"
#include "spec/node.h"
#include "spec/service.h"
#include "spec/text.h"

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

// `.env` of the project dir: variables for interpolation, below the shell environment.
Result<std::map<std::string, std::string>> read_dot_env(const fs::path& project_dir) {
  std::map<std::string, std::string> vars;
  fs::path path = project_dir / ".env";
  if (!is_file(path)) return vars;
  auto text = read_file(path);
  if (!text) return fail(text.error());
  auto lines = parse_env_file(*text);
  if (!lines) return fail(lines.error().wrap(path.string()));
  for (const EnvLine& line : *lines)
    if (line.value) vars[line.key] = *line.value;
  return vars;
}

bool valid_service_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

void check_top_level(const Node& root, Diagnostics& diag) {
  static const std::vector<std::string> known = {"name", "services", "version"};
  static const std::vector<std::string> later = {"networks", "volumes", "secrets", "configs",
                                                 "include"};
  for (const Entry& e : root.entries) {
    if (e.key.rfind("x-", 0) == 0) continue;
    if (std::find(known.begin(), known.end(), e.key) != known.end()) continue;
    if (std::find(later.begin(), later.end(), e.key) != later.end()) {
      diag.error(e.key_pos, "not supported yet: " + e.key);
      continue;
    }
    std::vector<std::string> all = known;
    all.insert(all.end(), later.begin(), later.end());
    std::string message = "unknown top-level key \"" + e.key + "\"";
    if (auto guess = closest_match(e.key, all)) message += " (did you mean \"" + *guess + "\"?)";
    diag.error(e.key_pos, message);
  }
}

SourcePos dependency_pos(const Node& service, const std::string& dependency) {
  const Node* deps = service.find("depends_on");
  if (deps == nullptr) return service.pos;
  for (const Node& item : deps->items)
    if (item.value == dependency) return item.pos;
  for (const Entry& e : deps->entries)
    if (e.key == dependency) return e.key_pos;
  return deps->pos;
}

void normalize_services(const Node& services, const FieldCtx& top, Stack& out) {
  for (const Entry& e : services.entries) {
    if (e.key.rfind("x-", 0) == 0) continue;
    if (!valid_service_name(e.key)) {
      top.diag.error(e.key_pos, "invalid service name \"" + e.key +
                                    "\": use letters, digits, '.', '_' and '-'");
      continue;
    }
    out.services.push_back(normalize_service(top.child(e.key), e));
  }
  for (const Service& s : out.services) {
    for (const std::string& dep : s.depends_on) {
      if (out.find(dep) != nullptr && dep != s.name) continue;
      SourcePos pos = dependency_pos(*services.find(s.name), dep);
      top.diag.error(pos, "services." + s.name + ".depends_on: " +
                              (dep == s.name ? "a service cannot depend on itself"
                                             : "unknown service \"" + dep + "\""));
    }
  }
}

}  // namespace

Result<std::vector<fs::path>> resolve_files(const LoadOptions& opts) {
  std::error_code ec;
  fs::path base = opts.working_dir.empty() ? fs::current_path(ec) : opts.working_dir;
  std::vector<fs::path> out;
  if (!opts.files.empty()) {
    for (const fs::path& f : opts.files) {
      fs::path full = (f.is_absolute() ? f : base / f).lexically_normal();
      if (!is_file(full)) return fail("file not found: " + f.string());
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

  auto dot_env = read_dot_env(out.project_dir);
  if (!dot_env) return fail(dot_env.error());
  VarLookup lookup = [&](const std::string& name) -> std::optional<std::string> {
    if (auto it = opts.environment.find(name); it != opts.environment.end()) return it->second;
    if (auto it = dot_env->find(name); it != dot_env->end()) return it->second;
    return std::nullopt;
  };

  Node merged;
  for (size_t i = 0; i < out.files.size(); ++i) {
    auto text = read_file(out.files[i]);
    if (!text) return fail(text.error());
    auto tree = parse_yaml(*text, display[i]);
    if (!tree) {
      diag.error_text(tree.error().message);
      continue;
    }
    if (!tree->is_mapping()) {
      diag.error(tree->pos, "expected a mapping with services, got " + tree->describe());
      continue;
    }
    interpolate_tree(*tree, lookup, diag);
    if (i == 0)
      merged = std::move(*tree);
    else
      merge_files(merged, *tree);
  }
  // Later checks would only report echoes of a syntax or interpolation error.
  if (diag.has_errors()) return fail(diag.to_error());

  check_top_level(merged, diag);
  FieldCtx top{diag, out.project_dir, lookup, "services"};
  const Node* services = merged.find("services");
  if (services == nullptr)
    diag.error(SourcePos{display.front(), 1, 1}, "services is required");
  else if (!services->is_mapping())
    top.type_error(*services, "a mapping of services");
  else
    normalize_services(*services, top, out);

  std::string raw_name = out.project_dir.filename().string();
  SourcePos name_pos{display.front(), 0, 0};
  if (opts.project_name) {
    raw_name = *opts.project_name;
  } else if (const Node* name = merged.find("name")) {
    FieldCtx name_ctx{diag, out.project_dir, lookup, "name"};
    if (auto v = name_ctx.string(*name)) raw_name = *v;
    name_pos = name->pos;
  }
  out.name = normalize_project_name(raw_name);
  if (out.name.empty())
    diag.error(name_pos,
               "project name \"" + raw_name + "\" has no letters or digits; use -p or name:");

  if (diag.has_errors()) return fail(diag.to_error());
  out.warnings = diag.warnings();
  return out;
}

}  // namespace stack::spec
