// The persisted record of what exists: projects and containers, in SQLite (WAL), one
// transaction per state change. Knows nothing about the kernel. The columns that hold
// environment values are sealed on disk (seal.h): callers see plain values.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/provider.h"
#include "model/runtime_record.h"
#include "state/container_state.h"

struct sqlite3;

namespace stack::state {

struct ProjectRecord {
  std::string name;
  std::vector<std::string> files;  // absolute paths of the stack files
  std::string working_dir;
  std::string environment_json;  // the CLI environment the files were interpolated with
                                 // (sealed on disk: it holds secrets)
  int64_t created_at = 0;        // unix ms
  // The services `up` was asked for (and the daemon keeps up, with their dependencies);
  // empty: every service of the files.
  std::vector<std::string> services;
};

struct ContainerRecord {
  std::string name;  // <project>-<service>-<n>, also its id
  std::string project;
  std::string service;
  int number = 1;
  std::string config_hash;
  std::string image;     // reference as written
  std::string image_id;  // sha256:... of the config it was created from
  ContainerState state = ContainerState::kCreated;
  pid_t pid = 0;                   // host PID of the init, 0 when not running
  uint64_t pid_start_time = 0;     // /proc/PID/stat field 22, to tell a reused PID apart
  int exit_code = 0;
  bool oom_killed = false;
  int restarts = 0;
  int64_t created_at = 0;   // unix ms
  int64_t started_at = 0;   // unix ms, 0 when never started
  int64_t finished_at = 0;  // unix ms, 0 when not finished
  // What the engine needs to start, stop and enter it without its stack file, decoded once
  // here (sealed on disk: it holds the environment). Null when the stored record cannot be
  // read (RUNTIME_ERROR says why): such a container can still be stopped and removed.
  std::shared_ptr<const model::RuntimeRecord> runtime;
  std::string runtime_error;
  bool user_stopped = false;  // stopped by the user: no restart policy or reconcile starts it
  std::string health;         // "" (no check), "starting", "healthy", "unhealthy"
  // network_mode service:NAME: the started_at of NAME's container whose namespace it joined.
  int64_t joined_started_at = 0;

  // Moves to TO, or says why it may not ("cannot start a running container").
  [[nodiscard]] Result<void> transition(ContainerState to, std::string_view verb) {
    if (auto r = check_transition(state, to, verb); !r) return fail(r.error().wrap(name));
    state = to;
    return {};
  }
};

// One IPAM allocation (see net::AddressStore): ADDRESS ("10.89.0.2") held by OWNER on NETWORK.
struct AllocationRecord {
  std::string network;
  std::string owner;
  std::string address;
};

// A network's addressing as first chosen: kept across daemon restarts.
struct NetworkRecord {
  std::string name;     // "demo_default"
  std::string subnet;   // "10.89.0.0/24"
  std::string gateway;  // "10.89.0.1"
  std::string project;      // "" for records made before projects were kept
  std::string config_hash;  // of the definition it was made from; "" when not known
};

// A named volume (issue 13): its host directory is <root>/volumes/<name>.
struct VolumeRecord {
  std::string name;
  std::string project;  // "" for `stack volume create`
  std::map<std::string, std::string> driver_opts, labels;
  int64_t created_at = 0;  // unix ms
};

// The runtime record replica NUMBER of a service had before an update replaced it.
struct HistoryRecord {
  int number = 1;
  std::string config_hash, image, image_id;
  std::shared_ptr<const model::RuntimeRecord> runtime;
  int64_t replaced_at = 0;  // unix ms
};

// While the stack file asks for FILE_HASH for SERVICE, it keeps PINNED_HASH (a rollback), or
// stays as it is when PINNED_HASH is "" (an update paused after a failure).
struct PinRecord {
  std::string project, service, file_hash, pinned_hash;
};

// What `scale`, `create` and `rm` asked of SERVICE since the last `up` (which clears it): the
// daemon's own passes keep REPLICAS (-1: the file's count), leave the containers of a NO_START
// service created and not started, and do not make again the containers of a REMOVED one.
struct OverrideRecord {
  std::string project, service;
  int replicas = -1;
  bool no_start = false;
  bool removed = false;
};

// A provider service whose `up` succeeded: the variables it set (setenv, as KEY → value, and
// rawsetenv, injected as they are) and what its `down` needs (TYPE and OPTIONS, as its `up`
// was given them, with the project's directory and environment).
struct ProviderRecord {
  std::string project, service;
  model::ProviderConfig config;
  std::map<std::string, std::string> env, raw_env;
  int64_t created_at = 0;  // unix ms
};

class Sealer;

class Store {
 public:
  // Opens (creating if needed) the database at PATH (0600, as its -wal and -shm), in WAL mode,
  // and migrates its schema. The sealing key is state.key beside it, made on first open; rows an
  // older version wrote in the clear are sealed here, and their plain text wiped from the file
  // and its WAL.
  [[nodiscard]] static Result<std::unique_ptr<Store>> open(const std::filesystem::path& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  [[nodiscard]] Result<void> put_project(const ProjectRecord& p);
  [[nodiscard]] Result<std::optional<ProjectRecord>> get_project(std::string_view name);
  [[nodiscard]] Result<std::vector<ProjectRecord>> list_projects();
  [[nodiscard]] Result<void> remove_project(std::string_view name);  // and its containers

  [[nodiscard]] Result<void> put_container(const ContainerRecord& c);  // insert or replace
  [[nodiscard]] Result<std::optional<ContainerRecord>> get_container(std::string_view name);
  [[nodiscard]] Result<std::vector<ContainerRecord>> list_containers(std::string_view project);
  [[nodiscard]] Result<std::vector<ContainerRecord>> list_all_containers();
  [[nodiscard]] Result<void> remove_container(std::string_view name);
  // The container FROM becomes C (C.name, its new name), with its IPAM allocations, in one
  // transaction.
  [[nodiscard]] Result<void> rename_container(std::string_view from, const ContainerRecord& c);

  // C's runtime record as one of its service's previous configurations (replica C.number);
  // the last kHistoryDepth configurations of a service are kept.
  static constexpr int kHistoryDepth = 4;
  [[nodiscard]] Result<void> put_history(const ContainerRecord& c, int64_t replaced_at);
  // Newest first.
  [[nodiscard]] Result<std::vector<HistoryRecord>> list_history(std::string_view project,
                                                                std::string_view service);
  [[nodiscard]] Result<void> put_pin(const PinRecord& p);
  [[nodiscard]] Result<std::vector<PinRecord>> list_pins(std::string_view project);
  [[nodiscard]] Result<void> remove_pin(std::string_view project, std::string_view service);

  // Overrides (store_overrides.cpp); SERVICE "" removes every one of PROJECT.
  [[nodiscard]] Result<void> put_override(const OverrideRecord& o);  // insert or replace
  [[nodiscard]] Result<std::vector<OverrideRecord>> list_overrides(std::string_view project);
  [[nodiscard]] Result<void> remove_overrides(std::string_view project, std::string_view service);

  [[nodiscard]] Result<void> put_network(const NetworkRecord& n);  // insert or replace
  [[nodiscard]] Result<std::optional<NetworkRecord>> get_network(std::string_view name);
  [[nodiscard]] Result<std::vector<NetworkRecord>> list_networks(std::string_view project);
  [[nodiscard]] Result<std::vector<NetworkRecord>> list_all_networks();
  [[nodiscard]] Result<void> remove_network(std::string_view name);  // and its allocations

  // Named volumes (store_volumes.cpp). PROJECT "" lists every volume.
  [[nodiscard]] Result<void> put_volume(const VolumeRecord& v);  // insert or replace
  [[nodiscard]] Result<std::optional<VolumeRecord>> get_volume(std::string_view name);
  [[nodiscard]] Result<std::vector<VolumeRecord>> list_volumes(std::string_view project);
  [[nodiscard]] Result<void> remove_volume(std::string_view name);

  // Provider services (store_providers.cpp); their variables are sealed on disk.
  [[nodiscard]] Result<void> put_provider(const ProviderRecord& p);  // insert or replace
  [[nodiscard]] Result<std::vector<ProviderRecord>> list_providers(std::string_view project);
  [[nodiscard]] Result<void> remove_provider(std::string_view project, std::string_view service);

  // IPAM allocations; each call is one transaction.
  [[nodiscard]] Result<void> put_allocation(const AllocationRecord& a);  // insert or replace
  [[nodiscard]] Result<std::vector<AllocationRecord>> list_allocations(std::string_view network);
  [[nodiscard]] Result<void> erase_allocation(std::string_view network, std::string_view owner);

 private:
  explicit Store(sqlite3* db);
  [[nodiscard]] Result<void> open_sealer(const std::filesystem::path& key_path);
  [[nodiscard]] Result<void> seal_plain_rows();
  [[nodiscard]] Result<void> insert_container(const ContainerRecord& c);  // in a transaction
  // The stored runtime column: unsealed and decoded into C (or C.runtime_error).
  [[nodiscard]] Result<void> unseal(ContainerRecord& c, const std::string& stored) const;
  [[nodiscard]] Result<std::vector<ContainerRecord>> unseal_all(
      std::vector<std::pair<ContainerRecord, std::string>>& rows) const;
  sqlite3* db_;
  std::unique_ptr<Sealer> sealer_;
};

}  // namespace stack::state
