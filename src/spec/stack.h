// The typed model of a stack file after loading, interpolation, merging and normalisation:
// what the planner and the reconciler consume, and what `stack config` prints. Every short
// syntax arrives here in its long form with defaults filled. Fields the engine reads are typed;
// the rest of the Compose specification is kept, normalised, in `extra` (JSON) so nothing a
// file says is lost. Every object keeps the source position it came from.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace stack::spec {

struct SourcePos {
  std::string file;                       // as the user named it
  int line = 0;                           // 1-based; 0 when unknown
  int column = 0;                         // 1-based
  [[nodiscard]] std::string str() const;  // "stack.yaml:3:5"
};

// A mapping key present in the file, by dotted path ("services.web.deploy.replicas"), with
// where it was written: what check_supported() compares with what the engine implements.
struct KeyUse {
  std::string path;
  SourcePos pos;
};

// A `volumes:` entry of a service, long form.
struct Mount {
  std::string type = "bind";     // bind | volume | tmpfs | image | npipe | cluster
  std::filesystem::path source;  // bind: absolute host path; volume: the top-level volume's
                                 // key (empty: anonymous); image: a reference; tmpfs: empty
  std::string target;            // absolute path inside the container
  bool read_only = false;
  std::string consistency;       // macOS hint, meaningless on Linux
  bool create_host_path = true;  // bind: create a missing source directory (short form: yes)
  std::string propagation;       // bind: rprivate, shared, ...; empty: the default
  std::string selinux;           // bind: "z" or "Z"
  std::string recursive;         // bind: "" (enabled), disabled, writable or readonly
  bool nocopy = false;           // volume: do not copy the image's content into a new volume
  std::string subpath;           // volume / image: mount this path of it
  // volume: labels of the volume this mount makes (an anonymous one, or a named one not made
  // yet; the top-level volume's own labels win).
  std::map<std::string, std::string> volume_labels;
  std::optional<int64_t> tmpfs_size;  // tmpfs: bytes
  std::optional<int> tmpfs_mode;      // tmpfs: permission bits
  SourcePos pos;
};

struct Limits {
  std::optional<int64_t> memory_bytes;  // mem_limit / deploy.resources.limits.memory
  std::optional<double> cpus;           // cpus / deploy.resources.limits.cpus
  std::optional<int64_t> cpu_shares;    // cpu_shares
  std::optional<int64_t> pids;          // pids_limit / deploy.resources.limits.pids
};

// `logging`. stack caps logs by default (json-file and local drivers).
struct Logging {
  std::string driver = "json-file";
  int64_t max_size_bytes = 10 * 1024 * 1024;     // options.max-size
  int max_files = 3;                             // options.max-file
  // Written in the file: otherwise the daemon's defaults (daemon.json log-max-size, -file).
  bool max_size_set = false, max_files_set = false;
  std::map<std::string, std::string> options;  // every other option, as written
};

// A published port (`ports`), one entry per container port: "8000-8001:80-81" gives two.
struct Port {
  int target = 0;                      // container port
  std::optional<int> published_start;  // host port; none: an ephemeral one is picked
  std::optional<int> published_end;    // == start unless a host range ("8000-8010:80")
  std::string host_ip;                 // empty: every address
  std::string protocol = "tcp";        // tcp | udp | sctp
  std::string mode = "ingress";        // ingress | host
  std::string name;
  std::string app_protocol;
  SourcePos pos;
};

// A port made reachable from other containers only (`expose`).
struct ExposedPort {
  int port = 0;
  std::string protocol = "tcp";
};

struct Healthcheck {
  // ["CMD", exe, args...], ["CMD-SHELL", "command line"] or ["NONE"]. Empty: the image's.
  std::vector<std::string> test;
  std::chrono::milliseconds interval{30'000};
  std::chrono::milliseconds timeout{30'000};
  int retries = 3;
  std::chrono::milliseconds start_period{0};
  std::chrono::milliseconds start_interval{5'000};
  bool disable = false;  // `disable: true` or test NONE
  SourcePos pos;
};

// `depends_on`, long form.
struct Dependency {
  std::string service;
  std::string condition = "service_started";  // | service_healthy |
                                              //   service_completed_successfully
  bool required = true;  // false: start anyway if the dependency is missing or fails
  bool restart = false;  // restart this service when the dependency is restarted
  SourcePos pos;
};

// One network a service joins (`networks:` of a service, list or map form).
struct NetworkAttachment {
  std::string network;  // key in the top-level networks
  std::vector<std::string> aliases;
  std::string ipv4_address;
  std::string ipv6_address;
  std::string mac_address;
  std::string interface_name;
  std::vector<std::string> link_local_ips;
  std::map<std::string, std::string> driver_opts;
  int priority = 0;  // higher first
  std::optional<int> gw_priority;
  SourcePos pos;
};

struct HostEntry {  // `extra_hosts`
  std::string host;
  std::string ip;
};

struct Ulimit {
  int64_t soft = 0;
  int64_t hard = 0;
};

struct Device {  // `devices`
  std::string source;
  std::string target;  // defaults to source
  std::string permissions = "rwm";
};

// A service's use of a top-level secret or config, mounted as a file.
struct FileRef {
  std::string source;  // key in the top-level secrets/configs
  std::string target;  // absolute: /run/secrets/<source> or /<source> by default
  std::string uid;
  std::string gid;
  std::optional<int> mode;  // permission bits
  SourcePos pos;
};

// `build:`, short (`build: ./dir`) or long form. The image it makes is the service's `image:`
// (or "<project>-<service>:latest" when the file names none, see Service::image).
struct Build {
  std::string context;  // absolute path, or a URL as written (refused by check_supported)
  std::string dockerfile = "Dockerfile";  // as written: relative to the context, or absolute
  std::string dockerfile_inline;          // the Dockerfile itself (then DOCKERFILE is unused)
  std::string target;
  std::map<std::string, std::string> args;  // bare names taken from the environment, or left out
  std::map<std::string, std::string> labels;
  std::string network;  // for RUN: "" (the build's default), none, host or a network's name
  bool no_cache = false;
  bool pull = false;
  std::vector<std::string> tags;  // more names for the result, defaulted to ":latest"
  int64_t shm_size = 0;           // bytes, 0: the engine's default
  std::vector<HostEntry> extra_hosts;
  SourcePos pos;  // of the `build` key's value
  nlohmann::json extra = nlohmann::json::object();  // every other build option, normalised
};

struct Service {
  std::string name;
  SourcePos pos;

  std::string image;  // "busybox:latest" form, tag defaulted to "latest"; empty with build
  SourcePos image_pos;
  std::optional<Build> build;
  std::string pull_policy = "missing";  // always | never | missing | build | daily | ...
  std::optional<std::vector<std::string>> entrypoint;  // overrides the image's
  std::optional<std::vector<std::string>> command;     // overrides the image's
  std::map<std::string, std::string> environment;      // env_file entries, then environment
  std::string working_dir;                             // empty: the image's
  std::string hostname;                                // empty: the container name
  std::string domainname;
  std::string container_name;
  std::string user;  // empty: the image's ("uid[:gid]" or names)
  Limits limits;
  std::string stop_signal = "SIGTERM";
  std::chrono::milliseconds stop_grace_period{10'000};
  std::vector<Mount> volumes;
  std::vector<std::string> tmpfs;  // "/run[:size=64m,mode=1777]"
  Logging logging;
  int replicas = 1;                       // scale / deploy.replicas
  std::vector<std::string> depends_on;    // names, in the order of `dependencies`
  std::vector<Dependency> dependencies;   // depends_on, long form
  std::string restart = "no";             // no | always | on-failure[:N] | unless-stopped
  std::optional<Healthcheck> healthcheck;  // none: the image's

  std::vector<Port> ports;
  std::vector<ExposedPort> expose;
  std::vector<NetworkAttachment> networks;  // by priority, then name; empty with network_mode
  std::string network_mode;                 // "", host, none, bridge, service:X, container:X
  std::vector<HostEntry> extra_hosts;
  std::vector<std::string> dns;
  std::vector<std::string> dns_search;
  std::vector<std::string> dns_opt;
  std::vector<std::string> links;  // "service[:alias]"

  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> sysctls;
  std::map<std::string, Ulimit> ulimits;
  std::vector<std::string> cap_add;   // "CAP_NET_ADMIN" form, sorted; "ALL"
  std::vector<std::string> cap_drop;
  bool privileged = false;
  bool read_only = false;
  std::optional<bool> init;
  bool tty = false;
  bool stdin_open = false;
  std::vector<Device> devices;
  std::vector<std::string> profiles;
  std::vector<FileRef> secrets;
  std::vector<FileRef> configs;

  nlohmann::json x_stack;  // the `x-stack` extension mapping, or null
  // Every other Compose field, normalised (key -> value), e.g. "ipc", "security_opt",
  // "deploy" without what the typed fields above hold.
  nlohmann::json extra = nlohmann::json::object();
  std::vector<KeyUse> keys;  // every key written under this service, for check_supported()
  // env_file problems (unreadable, malformed), reported by load() only for the services it
  // loads for (LoadOptions::services and their dependencies): compose reads only those.
  std::vector<std::pair<SourcePos, std::string>> env_file_errors;
};

struct IpamPool {
  std::string subnet;  // CIDR
  std::string ip_range;
  std::string gateway;
  std::map<std::string, std::string> aux_addresses;
};

// A top-level `networks` entry, or the implicit `default` network.
struct Network {
  std::string key;   // as named in the file
  std::string name;  // on the host: `name:`, else "<project>_<key>" (external: the key)
  std::string driver = "bridge";  // bridge | overlay | host | none | macvlan | ...
  std::map<std::string, std::string> driver_opts;
  bool external = false;
  bool internal = false;
  bool attachable = false;
  bool enable_ipv6 = false;
  std::optional<bool> enable_ipv4;
  std::string ipam_driver;
  std::vector<IpamPool> ipam;
  std::map<std::string, std::string> ipam_options;
  std::map<std::string, std::string> labels;
  SourcePos pos;
};

// A top-level `volumes` entry.
struct Volume {
  std::string key;
  std::string name;  // `name:`, else "<project>_<key>" (external: the key)
  std::string driver = "local";
  std::map<std::string, std::string> driver_opts;
  bool external = false;
  std::map<std::string, std::string> labels;
  SourcePos pos;
};

// A top-level `secrets` or `configs` entry.
struct FileObject {
  std::string key;
  std::string name;               // `name:`, else "<project>_<key>" (external: the key)
  std::filesystem::path file;     // absolute; or empty
  std::string environment;        // the variable holding the content; or empty
  // ENVIRONMENT's value when the file was loaded (shell, then .env); never rendered, hashed or
  // stored: `stack config` names the variable only.
  std::optional<std::string> environment_value;
  std::optional<std::string> content;  // configs only: inline content
  bool external = false;
  std::map<std::string, std::string> labels;
  std::string driver;
  std::map<std::string, std::string> driver_opts;
  std::string template_driver;
  SourcePos pos;
};

struct Stack {
  std::string name;                          // the project name
  std::filesystem::path project_dir;         // directory of the first file
  std::vector<std::filesystem::path> files;  // absolute paths of the loaded files
  std::vector<std::string> file_names;       // files as positions name them, in load order
                                             // (included and extended files last)
  std::vector<Service> services;             // enabled by the active profiles, in file order
  std::vector<Network> networks;             // sorted by key
  std::vector<Volume> volumes;               // sorted by key
  std::vector<FileObject> secrets;           // sorted by key
  std::vector<FileObject> configs;           // sorted by key
  nlohmann::json extra = nlohmann::json::object();  // other top-level fields (models)
  std::vector<std::string> profiles;         // every profile any service names, sorted
  std::vector<std::string> active_profiles;  // --profile / COMPOSE_PROFILES
  std::vector<KeyUse> keys;                  // top-level keys written, for check_supported()
  std::vector<std::string> warnings;         // "file:line:col: variable "X" is not set, ..."

  [[nodiscard]] const Service* find(std::string_view service) const;
  [[nodiscard]] const Network* find_network(std::string_view key) const;
  [[nodiscard]] const Volume* find_volume(std::string_view key) const;
};

}  // namespace stack::spec
