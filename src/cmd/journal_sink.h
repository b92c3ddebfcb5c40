// stackd's log sink under systemd: each line to journald with its structured fields (PROJECT=,
// CONTAINER=, PASS=, STACK_COMPONENT=), so `journalctl -u stack PROJECT=demo` finds a project's
// lines. stackd is the binary that links libsystemd (the reconciler's journald logging driver
// uses sd_journal_sendv too); the CLI never sees this file.
#pragma once

#include <memory>

namespace spdlog::sinks {
class sink;
}

namespace stack {

// True when our stderr is systemd's journal stream (JOURNAL_STREAM names its device and inode)
// or we run as a notify service (NOTIFY_SOCKET) and journald's socket exists.
[[nodiscard]] bool journal_wanted();
[[nodiscard]] std::shared_ptr<spdlog::sinks::sink> make_journal_sink();

}  // namespace stack
