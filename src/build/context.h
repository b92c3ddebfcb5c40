// The build context: .dockerignore rules (Go filepath.Match patterns with "**" and "!", as
// moby/patternmatcher reads them), COPY/ADD sources resolved in the context (globs; symlinks
// never followed out of it; ignored files absent), and the content hash of what a step copies.
// Reads only. Private to src/build.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stack::build {

class IgnoreRules {
 public:
  // The text of a .dockerignore: one pattern a line, "#" comments, "!" re-includes.
  static Result<IgnoreRules> parse(std::string_view text);
  // REL ("dir/file", relative to the context root) is left out of the context.
  [[nodiscard]] bool excluded(std::string_view rel) const;
  [[nodiscard]] bool empty() const { return patterns_.empty(); }
  [[nodiscard]] bool has_exceptions() const { return has_exceptions_; }

 private:
  struct Pattern {
    std::string text;
    std::regex re;
    bool exception = false;
  };
  std::vector<Pattern> patterns_;
  bool has_exceptions_ = false;
};

// Go's filepath.Match with "**" (any number of directories), anchored, on '/'-separated paths.
[[nodiscard]] Result<bool> pattern_match(std::string_view pattern, std::string_view path);

// One thing a COPY source names, before its tree is walked.
struct SourceItem {
  std::filesystem::path path;  // on the host, symlinks of the context resolved inside it
  std::string rel;             // PATH relative to the source root ("dir/a.txt"; "" the root)
  std::string name;            // the base name it was matched under (a COPY's file name)
  bool is_dir = false;
};

// Where sources are read from: the context (with its ignore rules), or a stage's or image's
// root filesystem (mounted read-only; no rules).
class SourceRoot {
 public:
  SourceRoot(std::filesystem::path root, IgnoreRules rules)
      : root_(std::move(root)), rules_(std::move(rules)) {}
  explicit SourceRoot(std::filesystem::path root) : root_(std::move(root)) {}

  // The items SOURCE (a path or glob, relative to the root; "/" and ".." stay inside) names.
  // Error when nothing matches: "no source files were specified" / "PATH: not found".
  [[nodiscard]] Result<std::vector<SourceItem>> resolve(const std::string& source) const;
  // REL is left out (ignored), for walks under a directory item.
  [[nodiscard]] bool excluded(std::string_view rel) const { return rules_.excluded(rel); }
  // Every entry under ITEM, relative to ITEM ("" itself first, then "a", "a/b", ...) in sorted
  // order, ignored ones out. Symlinks are entries, never followed.
  [[nodiscard]] Result<std::vector<std::string>> walk(const SourceItem& item) const;
  [[nodiscard]] const std::filesystem::path& root() const { return root_; }

  // The hash of ITEMS' content as a step copies them: names, types, modes, link targets and
  // file bytes (not times, not owners: a COPY sets them). Hex sha256.
  [[nodiscard]] Result<std::string> content_hash(const std::vector<SourceItem>& items) const;

 private:
  // REL resolved inside the root (symlinks followed, but never out): a host path.
  Result<std::filesystem::path> resolve_inside(const std::string& rel) const;
  std::filesystem::path root_;
  IgnoreRules rules_;
};

// The context's ignore rules: <dockerfile>.dockerignore next to the Dockerfile when it exists,
// else CONTEXT/.dockerignore, else none.
[[nodiscard]] Result<IgnoreRules> load_ignore(const std::filesystem::path& context,
                                              const std::optional<std::filesystem::path>& dockerfile);

}  // namespace stack::build
