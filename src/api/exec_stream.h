// `stack exec` over the API: the request, and the framed stream both ends speak after the
// upgrade. Pure encoding and decoding, shared by the CLI (client side) and the daemon (server
// side); no I/O.
//
//   POST /v1/projects/P/exec   Connection: Upgrade, Upgrade: stack-exec
//   {"service": S, "index": 1, "command": [...], "env": ["K=V"], "user": "", "workdir": "",
//    "tty": bool, "interactive": bool, "detach": bool, "size": {"cols": C, "rows": R}}
//
// The daemon starts the command in the running container (its namespaces, cgroups,
// capabilities and seccomp filter), then answers `101 Switching Protocols` (Upgrade:
// stack-exec), and the connection carries frames both ways until the daemon closes it. A
// refusal (no such container, not running, bad request) is an ordinary JSON error reply with
// no upgrade. With "detach" the reply is `200 {"ok": true}` once the command has started.
//
// A frame is: type (u8), payload length (u32, big-endian), payload.
//   client -> daemon   stdin (bytes), stdin-eof (empty), resize (cols u16, rows u16, BE)
//   daemon -> client   stdout, stderr (bytes), exit (code i32, BE; the last frame),
//                      error (text: the exec failed after the upgrade; the last frame)
// With a tty the command's stdout and stderr are one terminal: stdout frames only; the
// terminal's Ctrl-C is the byte 0x03 in a stdin frame (the container's line discipline makes
// it a SIGINT), as with docker. stdin-eof closes the command's stdin (without a tty).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stack::api::exec {

inline constexpr std::string_view kUpgrade = "stack-exec";
// Bigger frames are a protocol error; writers send at most kChunk bytes of data per frame.
inline constexpr uint32_t kMaxPayload = 1 << 20;
inline constexpr size_t kChunk = 32 * 1024;

enum class Type : uint8_t {
  stdin_data = 0,
  stdout_data = 1,
  stderr_data = 2,
  stdin_eof = 3,
  resize = 4,
  exit = 5,
  error = 6,
};

struct Frame {
  Type type;
  std::string payload;
};

std::string encode(Type type, std::string_view payload = {});
std::string encode_resize(uint16_t cols, uint16_t rows);
std::string encode_exit(int32_t code);

// The payload of a resize or an exit frame; an error when its size is wrong.
[[nodiscard]] Result<std::pair<uint16_t, uint16_t>> decode_resize(std::string_view payload);
[[nodiscard]] Result<int32_t> decode_exit(std::string_view payload);

// Splits bytes as they arrive into frames.
class FrameReader {
 public:
  // Appends DATA; the frames it completes are then returned by next().
  void feed(std::string_view data) { buffer_.append(data); }
  // The next complete frame, nullopt when more bytes are needed, an error for a frame of an
  // unknown type or over kMaxPayload (the stream cannot be resynchronised after it).
  [[nodiscard]] Result<std::optional<Frame>> next();
  [[nodiscard]] bool empty() const { return buffer_.size() == offset_; }

 private:
  std::string buffer_;
  size_t offset_ = 0;  // of the next frame in buffer_
};

}  // namespace stack::api::exec
