// render_yaml: block-style YAML of a JSON document, keys in a canonical order, strings quoted
// whenever a YAML reader could take them for something else. Pure.
#include <algorithm>
#include <cstdio>

#include "spec/loader.h"

namespace stack::spec {
namespace {

using nlohmann::json;

const std::vector<std::string> kTopOrder = {"name",    "services", "networks", "volumes",
                                            "secrets", "configs",  "models"};

bool plain_safe(const std::string& s) {
  if (s.empty()) return false;
  static const std::vector<std::string> reserved = {
      "true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"};
  std::string lower = s;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (std::find(reserved.begin(), reserved.end(), lower) != reserved.end()) return false;
  char first = s.front();
  if (!(std::isalnum(static_cast<unsigned char>(first)) || first == '/' || first == '_' ||
        first == '.'))
    return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("/_.-+@=,:").find(c) !=
                                                             std::string_view::npos))
      return false;
  if (s.back() == ':' || (s.find(':') != std::string::npos && !std::isalpha(static_cast<unsigned char>(first)) && first != '/'))
    return false;
  // Anything number-like (1, 1.5, 1e3, 0x10, 1_000, .5) is quoted.
  if (std::isdigit(static_cast<unsigned char>(first)) || first == '.' ) {
    bool numeric = std::all_of(s.begin(), s.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c)) || std::string_view("._+-eExXoObB")
                                                                 .find(c) != std::string_view::npos;
    });
    if (numeric) return false;
  }
  return true;
}

std::string quote(const std::string& s) { return plain_safe(s) ? s : json(s).dump(); }

std::string scalar(const json& v) {
  if (v.is_string()) return quote(v.get<std::string>());
  if (v.is_null()) return "null";
  return v.dump();
}

bool inline_value(const json& v) { return !v.is_structured() || v.empty(); }

std::string inline_text(const json& v) {
  if (v.is_object()) return "{}";
  if (v.is_array()) return "[]";
  return scalar(v);
}

void emit(const json& v, int indent, std::string& out);

void emit_entry(const std::string& key, const json& v, int indent, std::string& out) {
  out += std::string(static_cast<size_t>(indent), ' ') + quote(key) + ":";
  if (inline_value(v)) {
    out.append(1, ' ').append(inline_text(v)).append(1, '\n');
    return;
  }
  out += "\n";
  emit(v, v.is_array() ? indent : indent + 2, out);
}

void emit(const json& v, int indent, std::string& out) {
  std::string pad(static_cast<size_t>(indent), ' ');
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) emit_entry(it.key(), it.value(), indent, out);
    return;
  }
  for (const json& item : v) {
    if (inline_value(item)) {
      out += pad + "- " + inline_text(item) + "\n";
      continue;
    }
    // The first line of a nested block goes beside the dash: its indent becomes "  - ".
    size_t start = out.size();
    emit(item, indent + 2, out);
    out.replace(start, pad.size() + 2, pad + "- ");
  }
}

}  // namespace

std::string render_yaml(const json& doc) {
  if (!doc.is_object()) {
    std::string out;
    emit(doc, 0, out);
    return out;
  }
  std::string out;
  for (const std::string& key : kTopOrder)
    if (doc.contains(key)) emit_entry(key, doc[key], 0, out);
  for (auto it = doc.begin(); it != doc.end(); ++it)
    if (std::find(kTopOrder.begin(), kTopOrder.end(), it.key()) == kTopOrder.end())
      emit_entry(it.key(), it.value(), 0, out);
  return out;
}

}  // namespace stack::spec
