// Typed readers of FieldCtx; see field.h.
#include "spec/field.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "spec/loader.h"
#include "spec/text.h"

namespace stack::spec {

bool FieldCtx::check_length(const SourcePos& pos, const std::string& what,
                            const std::string& name, size_t max, const std::string& why) const {
  if (name.size() <= max) return true;
  // A name that long would drown the message: its start is enough to find it.
  std::string shown = name.size() > 80 ? name.substr(0, 32) + "..." : name;
  diag.error(pos, what + " \"" + shown + "\" is " + std::to_string(name.size()) +
                      " bytes long, at most " + std::to_string(max) + " (" + why + ")");
  return false;
}

std::optional<std::string> FieldCtx::string(const Node& n) const {
  if (n.is_scalar()) return n.value;
  type_error(n, "a string");
  return std::nullopt;
}

std::optional<int64_t> FieldCtx::integer(const Node& n, int64_t min) const {
  if (n.is_scalar() && !n.value.empty()) {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(n.value.c_str(), &end, 10);
    if (errno == 0 && *end == '\0' && v >= min) return v;
  }
  type_error(n, min == 0 ? "a non-negative integer" : min == 1 ? "a positive integer" : "an integer");
  return std::nullopt;
}

std::optional<double> FieldCtx::number(const Node& n) const {
  if (n.is_scalar() && !n.value.empty()) {
    char* end = nullptr;
    double v = std::strtod(n.value.c_str(), &end);
    if (*end == '\0' && v >= 0) return v;
  }
  type_error(n, "a number like 0.5");
  return std::nullopt;
}

std::optional<bool> FieldCtx::boolean(const Node& n) const {
  if (n.is_scalar()) {
    std::string v = n.value;
    for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (v == "true" || v == "yes" || v == "on") return true;
    if (v == "false" || v == "no" || v == "off") return false;
  }
  type_error(n, "true or false");
  return std::nullopt;
}

std::optional<int64_t> FieldCtx::bytes(const Node& n) const {
  if (n.is_scalar())
    if (auto v = parse_bytes(n.value)) return v;
  type_error(n, "a byte size like 512m");
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> FieldCtx::duration(const Node& n) const {
  if (n.is_scalar())
    if (auto v = parse_duration(n.value)) return v;
  type_error(n, "a duration like 10s or 1m30s");
  return std::nullopt;
}

std::optional<std::vector<std::string>> FieldCtx::words(const Node& n) const {
  if (n.is_scalar()) {
    auto split = split_shell_words(n.value);
    if (!split) {
      error(n.pos, split.error().message);
      return std::nullopt;
    }
    return std::move(*split);
  }
  if (n.is_sequence()) {
    std::vector<std::string> out;
    bool ok = true;
    for (const Node& item : n.items) {
      if (item.is_scalar()) {
        out.push_back(item.value);
      } else {
        type_error(item, "a string");
        ok = false;
      }
    }
    if (ok) return out;
    return std::nullopt;
  }
  type_error(n, "a string or a list of strings");
  return std::nullopt;
}

void FieldCtx::check_keys(const Node& n, const std::vector<std::string>& known,
                          const std::vector<std::string>& supported_later,
                          const std::string& where) const {
  for (const Entry& e : n.entries) {
    if (e.key.rfind("x-", 0) == 0) continue;
    if (std::find(known.begin(), known.end(), e.key) != known.end()) continue;
    if (std::find(supported_later.begin(), supported_later.end(), e.key) != supported_later.end()) {
      unsupported(e.key_pos, path + "." + e.key);
      continue;
    }
    std::vector<std::string> all = known;
    all.insert(all.end(), supported_later.begin(), supported_later.end());
    std::string message = "unknown key \"" + e.key + "\" in " + (where.empty() ? path : where);
    if (auto guess = closest_match(e.key, all)) message += " (did you mean \"" + *guess + "\"?)";
    diag.error(e.key_pos, message);
  }
}

}  // namespace stack::spec

namespace stack::spec {

std::filesystem::path FieldCtx::resolve(const SourcePos& pos, const std::string& p) const {
  std::filesystem::path base = project_dir;
  if (base_dirs != nullptr)
    if (auto it = base_dirs->find(pos.file); it != base_dirs->end()) base = it->second;
  std::filesystem::path out;
  if (p == "~" || p.rfind("~/", 0) == 0)
    out = std::filesystem::path(lookup("HOME").value_or("/root")) / p.substr(p.size() > 1 ? 2 : 1);
  else
    out = base / p;  // an absolute P replaces BASE
  out = out.lexically_normal();
  if (!out.has_filename() && out.has_parent_path() && out != out.root_path())
    out = out.parent_path();
  return out;
}

std::map<std::string, std::string> string_dict(const FieldCtx& ctx, const Node& n) {
  std::map<std::string, std::string> out;
  if (n.is_mapping()) {
    for (const Entry& e : n.entries) {
      if (e.value.is_null())
        out[e.key] = "";
      else if (e.value.is_scalar())
        out[e.key] = e.value.value;
      else
        ctx.child(e.key).type_error(e.value, "a string");
    }
  } else if (n.is_sequence()) {
    for (const Node& item : n.items) {
      auto text = ctx.string(item);
      if (!text) continue;
      size_t eq = text->find('=');
      out[text->substr(0, eq)] = eq == std::string::npos ? "" : text->substr(eq + 1);
    }
  } else if (!n.is_null()) {
    ctx.type_error(n, "a mapping or a list of KEY=VALUE");
  }
  return out;
}

std::vector<std::string> string_list(const FieldCtx& ctx, const Node& n) {
  std::vector<std::string> out;
  if (n.is_scalar()) {
    out.push_back(n.value);
  } else if (n.is_sequence()) {
    for (const Node& item : n.items)
      if (auto v = ctx.string(item)) out.push_back(*v);
  } else if (!n.is_null()) {
    ctx.type_error(n, "a string or a list of strings");
  }
  return out;
}

}  // namespace stack::spec
