// What a service field normaliser sees: the value's path for messages ("services.web.cpus"),
// the project dir, the variable lookup and the diagnostics sink, plus typed readers that
// report "expected X, got Y" at the value's position. Private to the spec module.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "spec/diagnostics.h"
#include "spec/interpolate.h"
#include "spec/node.h"
#include "spec/stack.h"

namespace stack::spec {

struct FieldCtx {
  Diagnostics& diag;
  const std::filesystem::path& project_dir;
  const VarLookup& lookup;  // shell environment, then .env
  std::string path;         // "services.web.mem_limit"

  [[nodiscard]] FieldCtx child(const std::string& key) const {
    return FieldCtx{diag, project_dir, lookup, path + "." + key};
  }
  void error(const SourcePos& pos, const std::string& message) const {
    diag.error(pos, path + ": " + message);
  }
  void type_error(const Node& n, const std::string& expected) const {
    error(n.pos, "expected " + expected + ", got " + n.describe());
  }
  // "not supported yet: services.web.ports"
  void unsupported(const SourcePos& pos, const std::string& what) const {
    diag.error(pos, "not supported yet: " + what);
  }

  [[nodiscard]] std::optional<std::string> string(const Node& n) const;
  [[nodiscard]] std::optional<int64_t> integer(const Node& n, int64_t min) const;
  [[nodiscard]] std::optional<double> number(const Node& n) const;
  [[nodiscard]] std::optional<bool> boolean(const Node& n) const;
  [[nodiscard]] std::optional<int64_t> bytes(const Node& n) const;
  [[nodiscard]] std::optional<std::chrono::milliseconds> duration(const Node& n) const;
  // A string split into words, or a list of strings.
  [[nodiscard]] std::optional<std::vector<std::string>> words(const Node& n) const;
  // Checks that a mapping holds only KNOWN keys (x-* ignored); SUPPORTED_LATER are keys the
  // Compose spec defines that stack does not implement yet.
  // WHERE names the object in messages ("service \"web\""); empty: the path.
  void check_keys(const Node& n, const std::vector<std::string>& known,
                  const std::vector<std::string>& supported_later,
                  const std::string& where = "") const;
};

// Field normalisers defined outside service.cpp.
void normalize_volumes(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_logging(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_deploy(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_environment(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_env_file(const FieldCtx& ctx, const Node& n, Service& s);

}  // namespace stack::spec
