// What a service field normaliser sees: the value's path for messages ("services.web.cpus"),
// the project dir, the variable lookup and the diagnostics sink, plus typed readers that
// report "expected X, got Y" at the value's position. Private to the spec module.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "spec/diagnostics.h"
#include "spec/interpolate.h"
#include "spec/node.h"
#include "spec/stack.h"

namespace stack::spec {

// Directories relative paths are resolved against, by the file name positions carry: the
// project dir for the -f files, the file's own dir (or include's project_directory) for
// included and extended files.
using BaseDirs = std::map<std::string, std::filesystem::path>;

struct FieldCtx {
  Diagnostics& diag;
  const std::filesystem::path& project_dir;
  const VarLookup& lookup;  // shell environment, then .env
  std::string path;         // "services.web.mem_limit"
  const BaseDirs* base_dirs = nullptr;

  [[nodiscard]] FieldCtx child(const std::string& key) const {
    return FieldCtx{diag, project_dir, lookup, path.empty() ? key : path + "." + key, base_dirs};
  }
  // PATH made absolute against the directory of the file POS is in; "~/" is $HOME.
  [[nodiscard]] std::filesystem::path resolve(const SourcePos& pos, const std::string& p) const;
  void error(const SourcePos& pos, const std::string& message) const {
    diag.error(pos, path + ": " + message);
  }
  void type_error(const Node& n, const std::string& expected) const {
    error(n.pos, "expected " + expected + ", got " + n.describe());
  }
  // False (and an error at POS) when NAME is longer than MAX bytes; WHAT names it ("service
  // name"), WHY says what bounds it.
  bool check_length(const SourcePos& pos, const std::string& what, const std::string& name,
                    size_t max, const std::string& why) const;
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

// "1m30s", "250ms", "0s": the canonical text of a duration.
[[nodiscard]] std::string format_duration(std::chrono::milliseconds d);
// A mapping, or a list of KEY=VALUE (a bare KEY is ""), as a map of strings.
[[nodiscard]] std::map<std::string, std::string> string_dict(const FieldCtx& ctx, const Node& n);
// A string or a list of strings.
[[nodiscard]] std::vector<std::string> string_list(const FieldCtx& ctx, const Node& n);

// Field normalisers defined outside service.cpp (service_parts.cpp, service_net.cpp,
// service_more.cpp).
void normalize_volumes(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_logging(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_deploy(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_environment(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_env_file(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_ports(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_expose(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_service_networks(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_extra_hosts(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_healthcheck(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_depends_on(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_ulimits(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_devices(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_secrets(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_configs(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_build(const FieldCtx& ctx, const Node& n, Service& s);
void normalize_capabilities(const FieldCtx& ctx, const Node& n, std::vector<std::string>& out);

}  // namespace stack::spec
