// The build engine's public face: a Dockerfile and its context built into an image of the store
// by stack's own engine (RUN steps are containers; no BuildKit, buildah or docker), with a
// layer cache kept in the store. Blocking: callers run it on a worker thread. Root on the host.
// Must not include heavy headers: the reconciler, API and tests include it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stack::fs {
class ImageStore;
}
namespace stack::engine {
class Engine;
}

namespace stack::build {

// The network of the build's RUN steps (compose `build.network`).
enum class NetworkMode {
  kDefault,  // a bridge with NAT and DNS made for the build (BuildHost::network), removed after
  kNone,     // a network namespace with loopback only
  kHost,     // the host's network namespace
};

struct BuildRequest {
  std::filesystem::path context;  // a directory
  // The Dockerfile: relative to CONTEXT (default "Dockerfile") or absolute; ignored when
  // DOCKERFILE_INLINE is set. Errors name it by its file name ("Dockerfile:12: ...").
  std::filesystem::path dockerfile = "Dockerfile";
  std::optional<std::string> dockerfile_inline;
  std::map<std::string, std::string> args;  // build args; override ARG defaults
  std::string target;                       // a stage name; "" builds the last stage
  std::map<std::string, std::string> labels;  // added to the image's config labels
  // References the result is tagged with ("demo-web", "reg:5000/app:1"); may be empty (the
  // result is then only known by its id).
  std::vector<std::string> tags;
  NetworkMode network = NetworkMode::kDefault;
  bool no_cache = false;   // every step runs; the cache is not read (it is written)
  bool pull = false;       // FROM images are pulled even when the store has them
  int64_t shm_size = 0;    // /dev/shm of RUN steps in bytes; 0: 64 MiB
  std::vector<std::string> extra_hosts;  // "name:ip" or "name=ip", into RUN's /etc/hosts
  std::string platform;    // "linux/amd64"; "" the host's. Another one is refused.
  std::string name;        // a label for progress and RUN container names ("demo-web")
};

// What a build reports as it goes, in order, from the building thread.
struct BuildEvent {
  enum class Kind {
    kStep,     // a step begins: STEP/STEPS, INSTRUCTION
    kCached,   // the step was a cache hit and did not run
    kOutput,   // one line of a RUN step's output (stdout and stderr) in TEXT
    kDone,     // the step ended: DURATION_MS
    kNote,     // something the user should know, TEXT ("# syntax= ignored: ...")
    kError,    // the build failed at this step: TEXT ("Dockerfile:7: RUN exited with 2")
  } kind = Kind::kStep;
  std::string stage;        // the stage's name, or its index ("0") when it has none
  int step = 0, steps = 0;  // 1-based, over the steps of the stages that are built
  int line = 0;             // the instruction's line in the Dockerfile
  std::string instruction;  // "RUN apt-get install -y nginx", args expanded
  std::string text;
  int64_t duration_ms = 0;
};
using Progress = std::function<void(const BuildEvent&)>;

struct BuildResult {
  std::string image_id;           // "sha256:<hex>" of the config
  std::vector<std::string> tags;  // canonical references it now has
  int steps = 0;                  // steps of the built stages
  int cached = 0;                 // of which were cache hits
  int64_t duration_ms = 0;
};

// How RUN steps with NetworkMode::kDefault get their network. The caller implements it with
// its network manager (a bridge with NAT made for the build, removed when the build ends) and
// serialises it with its own use of that manager.
class BuildNetwork {
 public:
  virtual ~BuildNetwork() = default;
  // The content of a RUN container's /etc/resolv.conf (a nameserver the container reaches).
  [[nodiscard]] virtual Result<std::string> resolv_conf() = 0;
  // Gives the created RUN container CONTAINER (its init PID and network namespace) an
  // interface with a default route through NAT, before it starts.
  [[nodiscard]] virtual Result<void> attach(std::string_view container, int netns_fd,
                                            pid_t pid) = 0;
  // CONTAINER is gone: its address is released.
  virtual void detach(std::string_view container) = 0;
};

// What the caller lends the build.
struct BuildHost {
  fs::ImageStore& images;  // FROM images come from it; results and the cache go into it
  engine::Engine& engine;  // runs RUN steps
  // Scratch space of builds (RUN containers' directories, the cache records): e.g.
  // <root>/builds, root's alone. Created when missing.
  std::filesystem::path work_dir;
  // RUN containers' cgroups are "<cgroup_parent>/<name>".
  std::string cgroup_parent = "stack/build";
  // Pulls REFERENCE for PLATFORM into IMAGES (FROM of an image the store lacks, or
  // BuildRequest::pull). Unset: such a FROM fails, naming the image.
  std::function<Result<void>(const std::string& reference, const std::string& platform)> pull;
  // NetworkMode::kDefault. Null: a build that needs it fails before any step runs.
  BuildNetwork* network = nullptr;
  // Set: the build stops at its next step (a RUN step is killed) with an error.
  const std::atomic<bool>* cancel = nullptr;
};

// Builds REQUEST. Errors name the Dockerfile and line ("Dockerfile:12: unknown instruction
// FORM") or the step; nothing is left on the host but the cache of the steps that succeeded.
[[nodiscard]] Result<BuildResult> build(const BuildRequest& request, BuildHost& host,
                                        const Progress& progress = {});

// Parses the Dockerfile of REQUEST and resolves its target and args, touching nothing: what
// `stack config` and planning can check before a build runs. Same errors as build().
[[nodiscard]] Result<void> check(const BuildRequest& request);

}  // namespace stack::build
