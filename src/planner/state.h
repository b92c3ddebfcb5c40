// The planner's inputs: what a project should be (from its stack file, its images resolved) and
// what it is (from the state store and the kernel, read by the reconciler). Plain data; the
// payloads the executor needs (a container's runtime record, a network's configuration) ride
// along, shared and never looked into by the planner.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "model/build.h"
#include "model/network.h"
#include "model/provider.h"
#include "model/runtime_record.h"
#include "model/volume.h"

namespace stack::planner {

using std::chrono::milliseconds;

struct DesiredNetwork {
  std::string name;         // "demo_default"
  std::string config_hash;  // of its definition: a changed network is made again
  std::shared_ptr<const model::NetworkConfig> config;
};

// A named volume the project uses (external ones are not the project's to make).
struct DesiredVolume {
  std::string name;  // "demo_data"
  std::shared_ptr<const model::VolumeConfig> config;
};

enum class Condition { kStarted, kHealthy, kCompletedSuccessfully };

struct Dependency {
  std::string service;
  Condition condition = Condition::kStarted;
  bool required = true;  // false: a failed dependency is warned about, not fatal
  bool restart = false;  // this service restarts after the dependency is restarted or recreated
};

// `deploy.update_config` (and `rollback_config`, the same shape).
struct UpdatePolicy {
  enum class Order { kStopFirst, kStartFirst };
  enum class FailureAction { kPause, kContinue, kRollback };
  Order order = Order::kStopFirst;
  int parallelism = 1;              // containers replaced at once; 0: all
  milliseconds delay{0};            // between two batches
  milliseconds monitor{0};          // a new container must stay up (and healthy) this long
  FailureAction failure_action = FailureAction::kPause;
  double max_failure_ratio = 0;     // failed replicas tolerated, as a fraction of the replicas
};

struct DesiredService {
  std::string name;
  std::string config_hash;
  std::map<std::string, std::string> fields;  // field -> hash, to name what changed
  std::string image_id;
  int replicas = 1;
  // In a cluster: the replica numbers (slots) the scheduler gave this node; the others run on
  // other nodes and are neither made nor awaited here, and a container of a slot not in it is
  // removed (its slot moved away). None: every replica 1..replicas runs here.
  std::optional<std::set<int>> slots;
  std::vector<Dependency> depends_on;
  std::vector<std::string> networks;  // full names of the networks its containers join
  std::string network_service;        // network_mode service:NAME: NAME
  std::vector<std::string> volumes;   // the named volumes its containers mount
  std::string container_name;         // container_name: its only replica's name; "" default
  bool healthcheck = false;           // a start-first update waits for healthy, else running
  // Its image as the planner decides a pull (planner/pull_policy.h): the reference and platform,
  // compose's pull_policy, whether the store has it (IMAGE_ID is "" when not) and when the
  // reference was last pulled. IMAGE_WHERE ("stack.yaml:4:12") names it in errors.
  std::string image;
  std::string platform;
  std::string pull_policy = "missing";
  bool image_present = true;
  std::optional<std::chrono::system_clock::time_point> last_pulled;
  std::string image_where;
  // Its `type: image` mounts' images, pulled as its own image is (its pull_policy). Any of
  // them missing: RECORDS are made after the pulls, as when IMAGE is.
  struct MountImage {
    std::string ref;
    bool present = true;
    std::optional<std::chrono::system_clock::time_point> last_pulled;
  };
  std::vector<MountImage> mount_images;
  // `build:`: its image is built (a BuildImage step) instead of pulled. Null: none.
  std::shared_ptr<const model::BuildConfig> build;
  // `provider:`: no container (REPLICAS is 0); an explicit up runs it (a RunProvider step)
  // before what depends on it. Null: an ordinary service.
  std::shared_ptr<const model::ProviderConfig> provider;
  UpdatePolicy update;
  // The runtime record of replica N at index N-1; null in tests that do not execute.
  std::vector<std::shared_ptr<const model::RuntimeRecord>> records;
};

struct DesiredState {
  std::string project;
  std::vector<DesiredNetwork> networks;
  std::vector<DesiredVolume> volumes;
  std::vector<DesiredService> services;  // in file order
  // In a cluster: networks of the file this node no longer needs (no slot of it here joins
  // them): made here before, each goes once no container of the project is left on it.
  std::set<std::string> released_networks;
};

struct ObservedNetwork {
  std::string name;
  std::string config_hash;  // as made; "" when not recorded
  bool present = true;      // its bridge exists on the host
};

struct ObservedContainer {
  std::string name;
  std::string service;
  int number = 1;
  std::string config_hash;
  std::map<std::string, std::string> fields;  // as created; empty when not recorded
  std::string image_id;
  bool running = false;       // running, or waiting out a restart backoff
  bool user_stopped = false;  // stopped with `stack stop`
  // Exited by itself (its init recorded the exit) and its restart policy keeps it down: a
  // one-shot job that ran, or on-failure past its maximum. A reached state, not drift.
  bool completed = false;
  // The networks it was attached to, with the config hash each had then: a network made
  // again since takes its containers with it.
  std::map<std::string, std::string> networks;
  // network_mode service:NAME: the start time of NAME's container whose namespace it joined.
  int64_t joined_started_at = 0;
  int64_t started_at = 0;  // of this container's current run (0: not running)
};

struct ObservedVolume {
  std::string name;
  bool present = true;  // its directory (and mount, with driver_opts) exists on the host
};

struct ObservedState {
  std::vector<ObservedNetwork> networks;       // the project's, as recorded
  std::vector<ObservedVolume> volumes;         // the project's, as recorded
  std::vector<ObservedContainer> containers;   // the project's
};

}  // namespace stack::planner
