// instance_id: see instance.h.
#include "common/instance.h"

#include <cstdint>
#include <cstdio>

namespace stack {

std::string instance_id(const std::filesystem::path& root) {
  // "/a/b/", "/a/./b" and "/a/b" are one root: one instance.
  auto norm = root.lexically_normal();
  if (!norm.has_filename() && norm.has_relative_path()) norm = norm.parent_path();
  if (norm == kDefaultRoot) return {};
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64: short, stable across builds
  for (unsigned char c : norm.string()) h = (h ^ c) * 1099511628211ull;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(h ^ (h >> 32)));
  return buf;
}

}  // namespace stack
