// See assemble.h. Included files are separate applications: their relative paths start from
// their own directory (or project_directory), their variables from their own .env. Extended
// services merge with the rules of merge.cpp.
#include "spec/assemble.h"

#include <algorithm>
#include <system_error>

#include "common/files.h"
#include "spec/env_file.h"
#include "spec/loader.h"
#include "spec/merge.h"

namespace stack::spec {
namespace {

namespace fs = std::filesystem;

constexpr int kMaxIncludeDepth = 16;
constexpr size_t kMaxExtendsDepth = 64;

std::vector<std::string> names_in(const Node& n) {
  std::vector<std::string> out;
  if (n.is_scalar()) out.push_back(n.value);
  for (const Node& item : n.items)
    if (item.is_scalar()) out.push_back(item.value);
  return out;
}

}  // namespace

Result<std::map<std::string, std::string>> read_env_vars(const fs::path& path, bool required) {
  std::map<std::string, std::string> vars;
  std::error_code ec;
  if (!required && !fs::is_regular_file(path, ec)) return vars;
  auto text = read_file(path, kMaxEnvFileBytes, "env files");
  if (!text) return fail(text.error());
  auto lines = parse_env_file(*text);
  if (!lines) return fail(lines.error().wrap(path.string()));
  for (const EnvLine& line : *lines)
    if (line.value) vars[line.key] = *line.value;
  return vars;
}

std::string Assembler::display_name(const fs::path& file) const {
  fs::path rel = file.lexically_relative(project_dir_);
  if (rel.empty() || *rel.begin() == "..") return file.string();
  return rel.string();
}

const Node* Assembler::tree_of(const fs::path& file, const SourcePos& from,
                               const VarLookup& lookup) {
  if (auto it = trees_.find(file); it != trees_.end()) return it->second.get();
  auto text = read_file(file, kMaxStackFileBytes, "stack files");
  if (!text) {
    diag_.error(from, text.error().message);
    trees_[file] = nullptr;
    return nullptr;
  }
  std::string name = display_name(file);
  diag_.add_file(name);
  if (!base_dirs_.count(name)) base_dirs_[name] = file.parent_path();
  auto tree = parse_yaml(*text, name, stop_ ? *stop_ : StopCheck());
  if (!tree) {
    diag_.error_text(tree.error().message);
    trees_[file] = nullptr;
    return nullptr;
  }
  if (!tree->is_mapping()) {
    diag_.error(tree->pos, "expected a mapping, got " + tree->describe());
    trees_[file] = nullptr;
    return nullptr;
  }
  interpolate_tree(*tree, lookup, diag_);
  auto& slot = trees_[file];
  slot = std::make_unique<Node>(std::move(*tree));
  return slot.get();
}

void Assembler::apply_includes(Node& root, const fs::path& dir, int depth) {
  auto it = std::find_if(root.entries.begin(), root.entries.end(),
                         [](const Entry& e) { return e.key == "include"; });
  if (it == root.entries.end()) return;
  Node include = std::move(it->value);
  root.entries.erase(it);
  if (include.is_null()) return;
  if (!include.is_sequence()) {
    diag_.error(include.pos, "include: expected a list of files, got " + include.describe());
    return;
  }
  if (depth > kMaxIncludeDepth) {
    diag_.error(include.pos, "include: nested too deep (a file includes itself?)");
    return;
  }
  for (const Node& entry : include.items) import_one(root, entry, dir, depth);
}

void Assembler::import_one(Node& root, const Node& entry, const fs::path& dir, int depth) {
  std::vector<std::string> paths;
  std::vector<std::string> env_files;
  fs::path project_dir;
  if (entry.is_scalar()) {
    paths.push_back(entry.value);
  } else if (entry.is_mapping()) {
    for (const Entry& e : entry.entries) {
      if (e.key == "path") {
        paths = names_in(e.value);
      } else if (e.key == "env_file") {
        env_files = names_in(e.value);
      } else if (e.key == "project_directory" && e.value.is_scalar()) {
        project_dir = (dir / e.value.value).lexically_normal();
      } else {
        diag_.error(e.key_pos, "include: unknown key \"" + e.key +
                                   "\" (use path, env_file or project_directory)");
      }
    }
    if (paths.empty()) diag_.error(entry.pos, "include: path is required");
  } else {
    diag_.error(entry.pos, "include: expected a file name or a mapping, got " + entry.describe());
    return;
  }
  if (paths.empty()) return;
  fs::path first = (dir / paths.front()).lexically_normal();
  if (project_dir.empty()) project_dir = first.parent_path();

  // Variables: the shell first, then the include's env_file (or the project dir's .env).
  std::map<std::string, std::string> vars;
  if (env_files.empty()) env_files.push_back((project_dir / ".env").string());
  for (const std::string& f : env_files) {
    auto more = read_env_vars((dir / f).lexically_normal(), false);
    if (!more) {
      diag_.error(entry.pos, more.error().message);
      continue;
    }
    for (auto& [k, v] : *more) vars[k] = v;
  }
  const VarLookup& outer = lookup_;
  auto lookup = std::make_unique<VarLookup>(
      [&outer, vars](const std::string& name) -> std::optional<std::string> {
        if (auto v = outer(name)) return v;
        if (auto it = vars.find(name); it != vars.end()) return it->second;
        return std::nullopt;
      });

  Node merged;
  bool any = false;
  for (const std::string& p : paths) {
    fs::path file = (dir / p).lexically_normal();
    const Node* tree = tree_of(file, entry.pos, *lookup);
    if (tree == nullptr) continue;
    base_dirs_[display_name(file)] = project_dir;
    Node copy = *tree;
    apply_includes(copy, file.parent_path(), depth + 1);
    if (!any)
      merged = std::move(copy);
    else
      merge_files(merged, copy);
    any = true;
  }
  lookups_.push_back(std::move(lookup));
  if (!any) return;
  for (const char* section : {"services", "networks", "volumes", "secrets", "configs", "models"}) {
    const Node* from = merged.find(section);
    if (from == nullptr || !from->is_mapping()) continue;
    Node* into = root.find(section);
    if (into == nullptr) {
      root.entries.push_back(Entry{section, from->pos, *from});
      continue;
    }
    if (into->is_null()) {
      *into = *from;
      continue;
    }
    KeyIndex index(*into);
    for (const Entry& e : from->entries) {
      if (index.find(e.key) != nullptr) {
        diag_.error(e.key_pos, std::string(section) + "." + e.key +
                                   ": already defined by the file that includes this one");
        continue;
      }
      index.append(e);
    }
  }
}

const Node* Assembler::service_in(const Node& tree, const std::string& name) {
  auto& index = service_index_[&tree];
  if (index.empty())
    if (const Node* services = tree.find("services"); services != nullptr)
      for (const Entry& e : services->entries) index.emplace(e.key, &e.value);
  auto it = index.find(name);
  return it == index.end() ? nullptr : it->second;
}

std::optional<Node> Assembler::resolved(const Node& tree, const std::string& name,
                                        const SourcePos& from, std::vector<std::string>& chain) {
  const Node* service = service_in(tree, name);
  if (service == nullptr) {
    diag_.error(from, "extends: no service \"" + name + "\" in " + tree.pos.file);
    return std::nullopt;
  }
  std::string id = tree.pos.file + "#" + name;
  if (std::find(chain.begin(), chain.end(), id) != chain.end()) {
    diag_.error(from, "extends: a cycle through service \"" + name + "\"");
    return std::nullopt;
  }
  // Each level copies and merges its base: a chain as long as the file (every service
  // extending the one before) would be quadratic, and recurse as deep.
  if (chain.size() >= kMaxExtendsDepth) {
    diag_.error(from, "extends: a chain of more than " + std::to_string(kMaxExtendsDepth) +
                          " services");
    return std::nullopt;
  }
  Node own = *service;
  auto ext = std::find_if(own.entries.begin(), own.entries.end(),
                          [](const Entry& e) { return e.key == "extends"; });
  if (!own.is_mapping() || ext == own.entries.end()) return own;
  Node spec = ext->value;
  own.entries.erase(ext);
  std::string base_name;
  const Node* file = nullptr;
  if (spec.is_scalar()) {
    base_name = spec.value;
  } else if (spec.is_mapping()) {
    for (const Entry& e : spec.entries) {
      if (e.key == "service" && e.value.is_scalar())
        base_name = e.value.value;
      else if (e.key == "file" && e.value.is_scalar())
        file = &e.value;
      else
        diag_.error(e.key_pos, "extends: unknown key \"" + e.key + "\" (use service and file)");
    }
  }
  if (base_name.empty()) {
    diag_.error(spec.pos, "extends: expected a service name or {service, file}");
    return std::nullopt;
  }
  const Node* base_tree = &tree;
  if (file != nullptr) {
    fs::path dir = project_dir_;
    if (auto it = base_dirs_.find(file->pos.file); it != base_dirs_.end()) dir = it->second;
    base_tree = tree_of((dir / file->value).lexically_normal(), file->pos, lookup_);
    if (base_tree == nullptr) return std::nullopt;
  }
  chain.push_back(id);
  auto base = resolved(*base_tree, base_name, spec.pos, chain);
  chain.pop_back();
  if (!base) return std::nullopt;
  merge_service(*base, own);
  base->pos = service->pos;
  return base;
}

void Assembler::apply_extends(Node& root) {
  Node* services = root.find("services");
  if (services == nullptr || !services->is_mapping()) return;
  if (std::none_of(services->entries.begin(), services->entries.end(), [](const Entry& e) {
        return e.value.is_mapping() && e.value.find("extends") != nullptr;
      }))
    return;  // no copy of the whole tree for nothing
  const Node original = root;  // bases are read as written, whatever order they resolve in
  for (Entry& e : services->entries) {
    if (!e.value.is_mapping() || e.value.find("extends") == nullptr) continue;
    std::vector<std::string> chain;
    auto r = resolved(original, e.key, e.key_pos, chain);
    if (r) e.value = std::move(*r);
  }
  service_index_.erase(&original);  // the next file's copy may be born at the same address
}

}  // namespace stack::spec
