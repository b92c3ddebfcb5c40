// See env_file.h. Follows the dotenv rules compose accepts: single quotes are literal, double
// quotes understand \n \t \\ \" escapes, unquoted values end at " #".
#include "spec/env_file.h"

namespace stack::spec {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool valid_key(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key)
    if (c == ' ' || c == '\t' || c == '=' || c == '"' || c == '\'') return false;
  return true;
}

Result<std::string> parse_value(std::string_view raw) {
  std::string_view v = trim(raw);
  if (v.empty()) return std::string();
  char quote = v.front();
  if (quote == '\'' || quote == '"') {
    size_t close = v.find(quote, 1);
    if (quote == '"') {
      // Find the closing quote that is not escaped.
      for (close = 1; close < v.size() && v[close] != '"'; ++close)
        if (v[close] == '\\') ++close;
      if (close >= v.size()) close = std::string_view::npos;
    }
    if (close == std::string_view::npos) return fail("unterminated quote");
    std::string_view rest = trim(v.substr(close + 1));
    if (!rest.empty() && rest.front() != '#') return fail("unexpected text after the quote");
    std::string_view inner = v.substr(1, close - 1);
    if (quote == '\'') return std::string(inner);
    std::string out;
    for (size_t i = 0; i < inner.size(); ++i) {
      if (inner[i] != '\\' || i + 1 == inner.size()) {
        out += inner[i];
        continue;
      }
      char c = inner[++i];
      out += c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
    }
    return out;
  }
  size_t comment = v.find(" #");
  if (comment != std::string_view::npos) v = trim(v.substr(0, comment));
  return std::string(v);
}

}  // namespace

Result<std::vector<EnvLine>> parse_env_file(std::string_view text) {
  std::vector<EnvLine> out;
  int number = 0;
  while (!text.empty()) {
    ++number;
    size_t nl = text.find('\n');
    // A NUL would end the value where it meets execve(2), and could make one entry read as
    // several in a NUL-separated message: refused, as docker does, with its position.
    if (size_t nul = text.substr(0, nl).find('\0'); nul != std::string_view::npos)
      return fail("line " + std::to_string(number) + " column " + std::to_string(nul + 1) +
                  ": a NUL byte is not allowed");
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    if (line.rfind("export ", 0) == 0) line = trim(line.substr(7));
    size_t eq = line.find('=');
    std::string_view key = trim(line.substr(0, eq));
    if (!valid_key(key))
      return fail("line " + std::to_string(number) + ": invalid variable name \"" +
                  std::string(key) + "\"");
    if (eq == std::string_view::npos) {
      out.push_back(EnvLine{std::string(key), std::nullopt, number});
      continue;
    }
    auto value = parse_value(line.substr(eq + 1));
    if (!value) return fail("line " + std::to_string(number) + ": " + value.error().message);
    out.push_back(EnvLine{std::string(key), std::move(*value), number});
  }
  return out;
}

}  // namespace stack::spec
