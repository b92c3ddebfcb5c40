// The identity of one stack instance (one --root) on a shared host: what tells its cgroups,
// interface names and nftables tables apart from another instance's. Pure; no I/O.
#pragma once

#include <filesystem>
#include <string>

namespace stack {

inline constexpr const char* kDefaultRoot = "/var/lib/stack";

// "" for the default root; else 8 hex digits of an FNV-1a hash of the normalised root path,
// stable across builds and daemon restarts (cgroups "stack/i-<id>", table "stack-<id>").
[[nodiscard]] std::string instance_id(const std::filesystem::path& root);

}  // namespace stack
