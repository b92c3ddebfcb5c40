// The CLI's side of a connection the daemon upgraded to frames (cp, image import/load/save):
// whole sends, and the daemon's frames read one by one. Frames as api/exec_stream.h.
// Blocking; a command's own thread only.
#pragma once

#include <string>
#include <string_view>

#include "api/exec_stream.h"
#include "common/result.h"

namespace stack::cli {

// Sends all of DATA on blocking socket FD; false once the daemon is gone.
bool send_all(int fd, std::string_view data);

// The daemon's frames on the upgraded socket SOCK, after PENDING (bytes read with the upgrade).
// WHAT prefixes its errors ("cp: ").
class DaemonFrames {
 public:
  DaemonFrames(int sock, std::string pending, std::string what = "")
      : sock_(sock), what_(std::move(what)) {
    reader_.feed(pending);
  }
  Result<api::exec::Frame> next();

 private:
  int sock_;
  std::string what_;
  api::exec::FrameReader reader_;
};

}  // namespace stack::cli
