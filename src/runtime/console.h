// The OCI --console-socket protocol: a terminal's master sent to the caller's unix socket as
// SCM_RIGHTS (as runc does; conmon and containerd's shim receive it). Host side; no knowledge
// of containers: the caller opened the terminal.
#pragma once

#include <cstdint>
#include <filesystem>

#include "common/result.h"
#include "common/unique_fd.h"

namespace stack::runtime {

// Sends MASTER over the unix socket at SOCKET (stream, else seqpacket or datagram, whichever
// it is), with the terminal's window set to ROWS x COLS first when both are non-zero.
[[nodiscard]] Result<void> send_console(const std::filesystem::path& socket, int master,
                                        uint16_t rows, uint16_t cols);

// The terminal master an init holds for its OCI runtime between READY and GO (TTY_MASTER_FD
// of src/engine/init/init.h), copied out of the init with pidfd_getfd(2).
[[nodiscard]] Result<UniqueFd> take_init_terminal(int init_pidfd);

}  // namespace stack::runtime
