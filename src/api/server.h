// The daemon's local API: HTTP/1.1 + JSON over a Unix socket in the run root (mode 0660, owner
// root, group `stack` when that group exists). One request per connection; long operations
// and follows stream newline-delimited JSON until the connection closes; `exec` upgrades its
// connection to a framed stream (exec_stream.h). Endpoints are listed in the README.
#pragma once

#include <filesystem>
#include <memory>

#include "common/result.h"

namespace boost::asio {
class io_context;
}
namespace stack::reconciler {
class Daemon;
}

namespace stack::api {

class Server {
 public:
  Server(boost::asio::io_context& io, reconciler::Daemon& daemon, std::filesystem::path socket);
  ~Server();
  // Binds the socket (replacing a stale one) and starts accepting on the loop.
  [[nodiscard]] Result<void> listen();
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stack::api
