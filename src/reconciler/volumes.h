// Storage of a service on this host (issue 13): its volumes, binds, tmpfs, read-only root,
// /dev/shm, volumes_from, secrets and configs as the engine mounts them; the project's named
// volumes as the planner sees them; and the host side of both (volume directories, secret
// files under the run root). Private to the reconciler. Loop thread.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "fs/image_store.h"
#include "model/runtime_record.h"
#include "planner/state.h"
#include "reconciler/controller.h"
#include "spec/stack.h"
#include "state/store.h"

namespace stack::reconciler {

// <root>/volumes/<name>: a named volume's directory (its data, or its mount point with
// driver_opts).
[[nodiscard]] std::filesystem::path volume_dir(const Paths& paths, const std::string& name);

// R.spec's mounts, read-only root and shm size, and R's secret files, from SERVICE (after
// R.spec.name and dir are set). Reads each secret's and config's content (kept in memory only).
// IMAGE_VOLUMES: the image's VOLUME paths; each one no mount of the service covers becomes an
// anonymous volume (seeded from the image), as Docker makes them.
// IMAGES: the store `type: image` mounts take their image from (nullptr: none may be used).
[[nodiscard]] Result<void> build_storage(const Paths& paths, const spec::Stack& stack,
                                         const spec::Service& service, RuntimeRecord& r,
                                         const std::vector<std::string>& image_volumes = {},
                                         const fs::ImageStore* images = nullptr);

// A named volume the project made earlier with other driver_opts or labels: refused at up
// before anything changes, as compose refuses it ("exists but doesn't match configuration");
// its data would be lost by making it again, which `down -v` does on purpose.
[[nodiscard]] Result<void> check_volumes_unchanged(const spec::Stack& stack,
                                                   const planner::DesiredState& desired,
                                                   state::Store& store);

// volumes_from container:NAME[:ro]: the volumes and binds of a container of this host by name
// (any project). Checked at up (nothing is made when the store has no NAME), taken when the
// container is created (from NAME's record then) and put before the service's own mounts.
[[nodiscard]] Result<void> check_volumes_from_containers(const spec::Stack& stack,
                                                         state::Store& store);
[[nodiscard]] Result<void> container_volumes_from(const Paths& paths, const spec::Service& service,
                                                  state::Store& store, RuntimeRecord& r);

// With a user namespace (userns-remap): each volume of R (named or anonymous) that is still
// fresh - empty and root's on the host - is given to the container's root (the mapped base
// ids), as docker's remapped root owns its volumes. Binds stay the user's.
[[nodiscard]] Result<void> shift_volume_owners(const Paths& paths, const RuntimeRecord& r);

// Anonymous volumes over a recreation, as compose keeps them: the replaced container NAME's
// volumes/ are set aside (keep) when it is removed, and taken by the container made next under
// that name (adopt, before its mounts are made); `down` drops what nobody took.
[[nodiscard]] Result<void> keep_anonymous_volumes(const Paths& paths, const std::string& name);
[[nodiscard]] Result<void> adopt_anonymous_volumes(const Paths& paths, const RuntimeRecord& r);
void drop_kept_volumes(const Paths& paths, const std::string& name);

// A digest of the content of every secret and config SERVICE uses ("" with none): a changed
// secret changes the service's configuration (and recreates its containers).
[[nodiscard]] Result<std::string> secrets_digest(const spec::Stack& stack,
                                                 const spec::Service& service);

// The project's named volumes (external ones are checked to exist instead).
[[nodiscard]] Result<std::vector<planner::DesiredVolume>> desired_volumes(const Paths& paths,
                                                                          const spec::Stack& stack);

// Makes volume C's directory (0700 parents) and, with driver_opts, mounts type/o/device on it
// as mount(8) would; idempotent. Undone when it fails half-way.
[[nodiscard]] Result<void> ensure_volume_dir(const Paths& paths, const model::VolumeConfig& c);
// Whether volume NAME is on the host: its directory, and its mount when it has driver_opts.
[[nodiscard]] bool volume_present(const Paths& paths, const std::string& name, bool mounted);
// Removes volume NAME's directory and data; MOUNTED (driver_opts): unmounts it and removes
// the empty mount point only, never what the device holds.
[[nodiscard]] Result<void> remove_volume_dir(const Paths& paths, const std::string& name,
                                             bool mounted);
// As remove_volume_dir, but the data is only renamed aside (<root>/volumes/.removing-*, cheap
// on the loop): the path to remove_tree on the worker pool, empty when nothing is left
// (MOUNTED, or no directory).
inline constexpr std::string_view kVolumeAsidePrefix = ".removing-";
[[nodiscard]] Result<std::filesystem::path> detach_volume_dir(const Paths& paths,
                                                             const std::string& name, bool mounted);
// At daemon start, on the pool: the data of volumes removed while the daemon died mid-way.
void remove_volumes_set_aside(const Paths& paths);

// Writes R's secret files (0700 directory, owner and mode as asked) unless present with the
// same content. Nothing written when R carries no content (a record read back from the state).
[[nodiscard]] Result<void> write_secret_files(const Paths& paths, const RuntimeRecord& r);
// At daemon start: the secret files of DESIRED's containers that exist but lost them (the run
// root is a tmpfs: a reboot empties it) are written again before any of them starts.
void restore_secret_files(const Paths& paths, const planner::DesiredState& desired);
// Removes the secret files of container NAME.
[[nodiscard]] Result<void> remove_secret_files(const Paths& paths, const std::string& name);

}  // namespace stack::reconciler
