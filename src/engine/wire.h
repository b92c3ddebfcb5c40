// The engine's side of the message format shared with stack-init (init/wire.h): building
// messages, and reading the init's replies with a deadline. Internal to src/engine. Decoding
// goes through the same C decoder the init uses.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "engine/init/wire.h"

namespace stack::engine::wire {

// Records of one message (or of a nested record).
class Writer {
 public:
  Writer& bytes(uint16_t tag, std::string_view value);
  Writer& u32(uint16_t tag, uint32_t value);
  Writer& u64(uint16_t tag, uint64_t value);
  Writer& nested(uint16_t tag, const Writer& inner) { return bytes(tag, inner.body_); }
  [[nodiscard]] const std::string& body() const { return body_; }
  // The message: the body's length (u32), then the body.
  [[nodiscard]] std::string message() const;

 private:
  std::string body_;
};

struct Record {
  uint16_t tag = 0;
  std::string_view value;
};

// The records of BODY; an error when one runs past its end.
[[nodiscard]] Result<std::vector<Record>> decode(std::string_view body);
[[nodiscard]] Result<uint32_t> as_u32(const Record& r);
[[nodiscard]] Result<uint64_t> as_u64(const Record& r);

// Writes the whole MESSAGE to FD.
[[nodiscard]] Result<void> send(int fd, std::string_view message);
// Reads one message from FD within TIMEOUT and returns its body. "Closed" when the peer
// closed the connection before a message began.
[[nodiscard]] Result<std::string> receive(int fd, std::chrono::milliseconds timeout);

}  // namespace stack::engine::wire
