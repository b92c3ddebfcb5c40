// /etc/stack/daemon.json: the daemon's options as a file, each key the long flag of the same
// name (`"resync": 10` is `--resync 10`). Parses and validates only; the caller applies it
// under its flags and environment. No logging; errors name the file, and the key or line:column.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace stack {

inline constexpr const char* kDaemonConfigPath = "/etc/stack/daemon.json";

struct DaemonConfig {
  std::optional<std::string> root;           // "root": absolute path
  std::optional<std::string> run_root;       // "run-root": absolute path
  std::optional<std::string> stacks_dir;     // "stacks-dir": absolute path
  std::optional<double> resync;              // "resync": seconds, 0.01 to 86400
  std::optional<std::string> log_level;      // "log-level": debug, info, warn, error
  std::optional<std::string> userns_remap;   // "userns-remap": a user name
  std::optional<std::string> userns_layers;  // "userns-layers": auto, idmap, copy
  std::optional<int64_t> log_max_size;       // "log-max-size": bytes, or "10m" (k, m, g)
  std::optional<int> log_max_file;           // "log-max-file": 1 to 1000
  // "registries-config": absolute path of the registries file (mirrors, insecure, blocked;
  // fs/pull.h), default /etc/stack/registries.json.
  std::optional<std::string> registries_config;
  // The cluster (etcd) this daemon joins; none: a single host. "cluster": the etcd client URLs,
  // "http://10.0.0.5:2379,https://..." or an array of them, tried in order.
  std::optional<std::vector<std::string>> cluster;
  std::optional<std::string> node_name;     // "node-name": default the hostname
  std::optional<std::string> advertise;     // "advertise": IPv4; default the default route's source
  std::optional<std::string> cluster_ca;    // "cluster-ca": absolute path, PEM
  std::optional<std::string> cluster_cert;  // "cluster-cert": absolute path, PEM (with the key)
  std::optional<std::string> cluster_key;   // "cluster-key": absolute path, PEM
  // "ingress-subnet": the routing mesh's network's IPv4 subnet, proposed by this node's first
  // `up` in a cluster (the one recorded first stays the cluster's); default 10.127.0.0/16.
  std::optional<std::string> ingress_subnet;
};

// "http://a:2379,https://b:2379" (commas, or one URL per array element): each must be an
// http:// or https:// URL with a host; the error names the bad one.
[[nodiscard]] Result<std::vector<std::string>> parse_cluster_urls(
    const std::vector<std::string>& words);
// A node name: 1 to 63 of [A-Za-z0-9._-], starting with a letter or digit (a hostname label
// or a dotted name; it is an etcd key component and a constraint's value).
[[nodiscard]] Result<void> check_node_name(const std::string& name);

// An IPv4 subnet "A.B.C.D/N" with N from 8 to 28, for --ingress-subnet.
[[nodiscard]] Result<void> check_ingress_subnet(const std::string& text);

// "10m", "512k", "1g", "4096" (bytes): a log size as docker's max-size writes it; none: 0 or
// less, or not a size.
[[nodiscard]] std::optional<int64_t> parse_log_size(const std::string& text);

// The path in STACK_DAEMON_CONFIG if set, else kDaemonConfigPath.
[[nodiscard]] std::filesystem::path daemon_config_path();

// TEXT as the content of PATH (PATH only names it in errors).
[[nodiscard]] Result<DaemonConfig> parse_daemon_config(const std::string& text,
                                                       const std::filesystem::path& path);
// PATH read and parsed; a file that does not exist is an empty config (every default).
[[nodiscard]] Result<DaemonConfig> load_daemon_config(const std::filesystem::path& path);

}  // namespace stack
