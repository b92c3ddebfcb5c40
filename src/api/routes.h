// The API's routes: a request in, a reply out (a JSON document, or a stream of JSON lines).
// Private to src/api.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "api/request.h"
#include "reconciler/async.h"

namespace stack::reconciler {
class Daemon;
}

namespace stack::api {

struct ExecSession;  // exec_session.h

// Emits one line of a stream; false once the client is gone.
using Emit = std::function<bool(const nlohmann::json&)>;
using Cancelled = std::function<bool()>;

struct Reply {
  int status = 200;
  nlohmann::json body;
  // Set for streaming replies: runs the operation, emitting lines as it goes.
  std::function<reconciler::awaitable<void>(Emit, Cancelled)> stream;
  // Set for `exec`: the command runs; the server upgrades the connection to its stream.
  std::shared_ptr<ExecSession> exec{};
  // Set for an upgraded connection served by its route (cp): given the connection (a
  // descriptor it owns) and the bytes the client sent after its request.
  std::function<reconciler::awaitable<void>(int fd, std::string after)> takeover{};
};

// A reply of STATUS whose body is {"error": MESSAGE}, with "exit_code" when EXIT_CODE is set.
inline Reply error_reply(int status, const std::string& message, int exit_code = 0) {
  nlohmann::json body = {{"error", message}};
  if (exit_code) body["exit_code"] = exit_code;
  return Reply{status, std::move(body), {}, {}};
}

reconciler::awaitable<Reply> route(reconciler::Daemon& daemon, const Request& request);

}  // namespace stack::api
