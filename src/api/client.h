// The CLI's side of the API: HTTP over the daemon's Unix socket, through libcurl. If no daemon
// answers, one is started in the background (and the user told so). Light header: no curl,
// no JSON types.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stack::api {

struct Response {
  int status = 0;
  std::string body;
};

struct DaemonCommand {
  std::filesystem::path stack_binary;  // this program
  std::vector<std::string> args;       // global flags to pass on (--root, --run-root, ...)
};

class Client {
 public:
  explicit Client(std::filesystem::path socket) : socket_(std::move(socket)) {}

  // Connects, starting a daemon with COMMAND when none answers. Says so on stderr.
  [[nodiscard]] Result<void> ensure_daemon(const DaemonCommand& command);
  // True when a daemon answers on the socket.
  [[nodiscard]] bool ping();

  [[nodiscard]] Result<Response> call(std::string_view method, std::string_view target,
                                      std::string_view body = {});
  // Streams the response body line by line to ON_LINE until the server closes it, ON_LINE
  // returns false, or STOP returns true (checked at least every 100 ms).
  [[nodiscard]] Result<int> stream(std::string_view method, std::string_view target,
                                   std::string_view body,
                                   const std::function<bool(std::string_view)>& on_line,
                                   const std::function<bool()>& stop = {});

  [[nodiscard]] const std::filesystem::path& socket() const { return socket_; }

 private:
  std::filesystem::path socket_;
};

}  // namespace stack::api
