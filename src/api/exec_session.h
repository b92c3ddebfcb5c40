// `stack exec` on the daemon's side: the command started in a running container (a pty from
// the container's devpts, or three pipes), then its stream pumped over the upgraded API
// connection on the daemon's loop (the wire format is exec_stream.h's). Private to src/api.
#pragma once

#include <boost/asio/local/stream_protocol.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "api/request.h"
#include "api/routes.h"

namespace stack::api {

// Checks the request, starts the command and returns the reply: an error (nothing started),
// {"ok": true} for a detached command (reaped in the background), or a Reply whose `exec`
// the server hands to run_exec.
reconciler::awaitable<Reply> exec_reply(reconciler::Daemon& daemon, const std::string& project,
                                        const nlohmann::json& body, const Request& request);

// Answers 101 Switching Protocols and pumps the session until the command has exited and its
// output and exit code are sent, or the client is gone (the command then loses its stdin and
// its terminal hangs up). AFTER: bytes the client sent after its request.
reconciler::awaitable<void> run_exec(std::shared_ptr<ExecSession> session,
                                     boost::asio::local::stream_protocol::socket socket,
                                     std::string after);

}  // namespace stack::api
