// The container's holder and what create, start, run and delete share (see the sequence at
// the top of runtime.cpp): the engine's create with the hooks at the runtime spec's points,
// the start with startContainer's, the holder process between them, the cleanup. Internal to
// src/runtime; root on the host.
#pragma once

#include <sys/types.h>
#include <sys/un.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "common/result.h"
#include "engine/container.h"
#include "runtime/bundle.h"
#include "runtime/record.h"
#include "runtime/runtime.h"

namespace stack::runtime {

sockaddr_un socket_address(const std::filesystem::path& path);
// One request to a container's holder ('S' start, 'D' discard) and its one-line answer.
[[nodiscard]] Result<std::string> ask_holder(const std::filesystem::path& dir, char what);
[[nodiscard]] Result<void> write_pid_file(const std::filesystem::path& file, pid_t pid);
// Engine::create with the prestart, createRuntime (here) and createContainer (in the
// container's namespaces) hooks run while the init waits before pivot_root; then the
// terminal's master to CONSOLE_SOCKET. The record is returned with the init's pid; the Created
// object is handed to the caller through OUT. On failure nothing is left (init, cgroup).
[[nodiscard]] Result<Record> make_container(engine::Engine& eng, Bundle& b, const std::string& id,
                                            const std::filesystem::path& bundle,
                                            const std::filesystem::path& console_socket,
                                            std::optional<engine::Created>& out);
// runc's rule: a terminal's master needs somewhere to go, and a socket nothing to send.
[[nodiscard]] Result<void> check_console(const Bundle& b, const CreateOptions& o);
// The startContainer hooks, in the container's namespaces, then GO.
[[nodiscard]] Result<engine::ContainerProcess> start_container(engine::Engine& eng,
                                                               const Bundle& b, const Record& r,
                                                               std::optional<engine::Created>& c);
// The holder (step 2 of runtime.cpp's sequence). Never returns.
[[noreturn]] void hold(const std::filesystem::path& init, Bundle& b, const std::string& id,
                       const CreateOptions& o, const std::filesystem::path& bundle, int listen_fd,
                       int report_fd);
// The container's cgroup emptied and removed, its directory gone (as Engine::remove).
[[nodiscard]] Result<void> cleanup(const std::filesystem::path& dir, const Record& r);
// Waits up to TIMEOUT for PID (not our child) to be gone.
bool wait_gone(pid_t pid, uint64_t start_time, std::chrono::milliseconds timeout);

}  // namespace stack::runtime
