// The CLI's side of the API: HTTP/1.1 over the daemon's Unix socket, written here on plain
// sockets (no libcurl, no Boost: the CLI's start-up pays for every library it maps), and
// starting the daemon when none answers. One request per connection, as the server serves them.
// Light header: no JSON types.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace stack::api {

struct Response {
  int status = 0;
  std::string body;
};

struct DaemonCommand {
  std::filesystem::path binary;   // stackd
  std::vector<std::string> args;  // --root, --run-root, ...
};

// A connection switched to another protocol (101 Switching Protocols): the socket, and the
// bytes the server sent after its response header (the new protocol's first bytes).
struct Upgraded {
  UniqueFd socket;
  std::string pending;
};

class Client {
 public:
  explicit Client(std::filesystem::path socket) : socket_(std::move(socket)) {}

  // Connects, starting a daemon with COMMAND when none answers. Says so on stderr.
  [[nodiscard]] Result<void> ensure_daemon(const DaemonCommand& command);
  // Ok when a daemon answers on the socket; else why not (its errno: ENOENT and ECONNREFUSED
  // mean no daemon, EACCES a user who may not use it).
  [[nodiscard]] Result<void> ping();

  [[nodiscard]] Result<Response> call(std::string_view method, std::string_view target,
                                      std::string_view body = {});
  // Streams the response body line by line to ON_LINE until the server closes it, ON_LINE
  // returns false, or STOP returns true (checked at least every 100 ms). Returns the status.
  [[nodiscard]] Result<int> stream(std::string_view method, std::string_view target,
                                   std::string_view body,
                                   const std::function<bool(std::string_view)>& on_line,
                                   const std::function<bool()>& stop = {});
  // Sends a request asking to switch to PROTOCOL (Connection: Upgrade). On 101 Switching
  // Protocols, the connection; on any other answer, an empty socket, and REFUSED holds the
  // server's status and body.
  [[nodiscard]] Result<Upgraded> upgrade(std::string_view method, std::string_view target,
                                         std::string_view body, std::string_view protocol,
                                         Response& refused);

  [[nodiscard]] const std::filesystem::path& socket() const { return socket_; }

 private:
  std::filesystem::path socket_;
};

}  // namespace stack::api
