// `include` and `extends`: the parts of loading that read more files and fold them into the
// parsed tree before validation. Reads files only. Private to the spec module.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "spec/diagnostics.h"
#include "spec/field.h"
#include "spec/interpolate.h"
#include "spec/node.h"

namespace stack::spec {

class Assembler {
 public:
  // BASE_DIRS learns the directory of every file read; DIAG learns its name for sorting.
  Assembler(Diagnostics& diag, BaseDirs& base_dirs, const VarLookup& lookup,
            std::filesystem::path project_dir)
      : diag_(diag), base_dirs_(base_dirs), lookup_(lookup), project_dir_(std::move(project_dir)) {}

  // Imports the files ROOT's `include:` names (recursively) into ROOT and removes the key.
  // DIR is the directory ROOT's relative paths start from.
  void apply_includes(Node& root, const std::filesystem::path& dir, int depth = 0);

  // Replaces every service with `extends` by its base merged with its own keys. Called once
  // per -f file, before the files merge, as compose does: a base named without `file:` is
  // looked up in the same file, and a later file's override of it does not reach it.
  void apply_extends(Node& root);

  // The loader's budget, asked while parsing the files this reads (may be empty).
  void set_stop(const StopCheck* stop) { stop_ = stop; }

 private:
  // The parsed, interpolated tree of FILE, read once; null (and reported) if unreadable.
  const Node* tree_of(const std::filesystem::path& file, const SourcePos& from,
                      const VarLookup& lookup);
  std::string display_name(const std::filesystem::path& file) const;
  // The service NAME of TREE with its own extends resolved; CHAIN detects cycles.
  std::optional<Node> resolved(const Node& tree, const std::string& name, const SourcePos& from,
                               std::vector<std::string>& chain);
  // Service NAME of TREE (read only), through an index built on first use.
  const Node* service_in(const Node& tree, const std::string& name);
  void import_one(Node& root, const Node& entry, const std::filesystem::path& dir, int depth);

  Diagnostics& diag_;
  BaseDirs& base_dirs_;
  const VarLookup& lookup_;
  std::filesystem::path project_dir_;
  std::map<std::filesystem::path, std::unique_ptr<Node>> trees_;
  std::vector<std::unique_ptr<VarLookup>> lookups_;  // of included files, kept alive
  const StopCheck* stop_ = nullptr;
  std::map<const Node*, std::unordered_map<std::string, const Node*>> service_index_;
};

// Variables of a dotenv file (`.env`, `--env-file`, include's env_file); empty if missing
// and not REQUIRED. A file over kMaxEnvFileBytes is an error naming it and the limit.
[[nodiscard]] Result<std::map<std::string, std::string>> read_env_vars(
    const std::filesystem::path& path, bool required);

}  // namespace stack::spec
