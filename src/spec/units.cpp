// The public value parsers of loader.h: byte sizes, durations and project names. Pure.
#include <cctype>
#include <cmath>
#include <string>

#include "spec/field.h"
#include "spec/loader.h"

namespace stack::spec {
namespace {

// Reads a non-negative decimal number ("1", "1.5") at the front of S.
std::optional<double> take_number(std::string_view& s) {
  size_t n = 0;
  bool digits = false;
  bool dot = false;
  while (n < s.size() &&
         (std::isdigit(static_cast<unsigned char>(s[n])) || (s[n] == '.' && !dot))) {
    if (s[n] == '.')
      dot = true;
    else
      digits = true;
    ++n;
  }
  if (!digits) return std::nullopt;
  double value = std::stod(std::string(s.substr(0, n)));
  s.remove_prefix(n);
  return value;
}

}  // namespace

std::optional<int64_t> parse_bytes(std::string_view text) {
  // As docker's RAMInBytes: binary units, "512m", "1.5g", "1gb", "1GiB", "100 k".
  std::string_view s = text;
  auto number = take_number(s);
  if (!number) return std::nullopt;
  if (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  std::string unit;
  for (char c : s) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  double multiplier = 1;
  if (!unit.empty() && std::string_view("kmgtp").find(unit[0]) != std::string_view::npos) {
    multiplier = std::pow(1024.0, static_cast<double>(std::string_view("kmgtp").find(unit[0]) + 1));
    unit.erase(0, 1);
    if (!unit.empty() && unit[0] == 'i') unit.erase(0, 1);
  }
  if (!unit.empty() && unit != "b") return std::nullopt;
  double bytes = *number * multiplier;
  if (bytes >= 9.2e18) return std::nullopt;
  return static_cast<int64_t>(bytes);
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  // As Go's time.ParseDuration, which compose uses: "1h30m", "1.5s", "250ms"; "0" alone.
  if (text == "0") return std::chrono::milliseconds(0);
  std::string_view s = text;
  if (s.empty()) return std::nullopt;
  double total_ms = 0;
  while (!s.empty()) {
    auto number = take_number(s);
    if (!number) return std::nullopt;
    size_t n = 0;
    while (n < s.size() && !std::isdigit(static_cast<unsigned char>(s[n])) && s[n] != '.') ++n;
    std::string_view unit = s.substr(0, n);
    s.remove_prefix(n);
    double scale = 0;
    if (unit == "h")
      scale = 3'600'000;
    else if (unit == "m")
      scale = 60'000;
    else if (unit == "s")
      scale = 1'000;
    else if (unit == "ms")
      scale = 1;
    else if (unit == "us" || unit == "\u00b5s")
      scale = 1e-3;
    else if (unit == "ns")
      scale = 1e-6;
    else
      return std::nullopt;
    total_ms += *number * scale;
  }
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(total_ms)));
}

std::string normalize_project_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '_' || l == '-') out += l;
  }
  size_t start = out.find_first_not_of("_-");
  return start == std::string::npos ? std::string() : out.substr(start);
}

}  // namespace stack::spec

namespace stack::spec {

std::string format_duration(std::chrono::milliseconds d) {
  // As Go's Duration.String() for whole milliseconds: "1h2m3s", "1m30s", "1.5s", "250ms", "0s".
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  if (ms < 1000) return out + std::to_string(ms) + "ms";
  int64_t h = ms / 3'600'000;
  int64_t m = ms / 60'000 % 60;
  int64_t s = ms / 1000 % 60;
  int64_t frac = ms % 1000;
  if (h > 0) out += std::to_string(h) + "h";
  if (h > 0 || m > 0) out += std::to_string(m) + "m";
  out += std::to_string(s);
  if (frac != 0) {
    std::string f = std::to_string(frac + 1000).substr(1);
    while (f.back() == '0') f.pop_back();
    out += "." + f;
  }
  return out + "s";
}

}  // namespace stack::spec
