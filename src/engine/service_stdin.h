// The end of a service's stdin (stdin_open without a tty: `run -i`): the init holds the stdin
// pipe's writing end for `attach`, so the daemon closing its own copy is not enough; it asks the
// init to close its one too (W_STDIN_CLOSE on the control pipe, init/wire.h). Root on the host.
#pragma once

#include "common/result.h"

namespace stack::engine {

// PIDFD: the container's init (checked by the caller to be the one started). Afterwards the
// service reads EOF once every copy the daemon took has been closed.
[[nodiscard]] Result<void> close_service_stdin(int pidfd);

}  // namespace stack::engine
