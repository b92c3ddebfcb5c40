// GELF 1.1 messages as docker's gelf driver sends them: the JSON document, its compression
// (gzip, zlib or none: UDP only) and chunked GELF for a datagram too big for one. Pure: the
// sockets are the sinks' (log_stream.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace stack::engine {
struct LogRecord;
}

namespace stack::reconciler {

// What each message says of its container besides the line (docker's fields).
struct GelfInfo {
  std::string hostname;     // host
  std::string id, name;     // _container_id, _container_name (stack's id is the name)
  std::string image_id, image;  // _image_id, _image_name
  std::string command;      // _command: the argv joined by spaces
  std::string tag;          // _tag
  std::string created;      // _created: RFC 3339 with nanoseconds
  std::map<std::string, std::string> extra;  // labels and env asked for, keys with a leading _
};

// The JSON document of RECORD: version 1.1, host, short_message, timestamp (seconds, to the
// millisecond, as docker), level (6 for stdout, 3 for stderr), then the _ fields.
[[nodiscard]] std::string gelf_message(const GelfInfo& info, const engine::LogRecord& record);

// PAYLOAD compressed with TYPE ("gzip", the default, "zlib" or "none") at LEVEL (-1 to 9;
// docker's default is 1, best speed).
[[nodiscard]] Result<std::string> gelf_compress(const std::string& payload,
                                                const std::string& type, int level);

// The datagrams of PAYLOAD: itself when it fits in CHUNK_SIZE (docker's 1420), else chunks of
// 0x1e 0x0f, the 8-byte message ID, the sequence number and count, then the data. An error
// past GELF's 128 chunks.
inline constexpr size_t kGelfChunkSize = 1420;
[[nodiscard]] Result<std::vector<std::string>> gelf_datagrams(const std::string& payload,
                                                              uint64_t message_id,
                                                              size_t chunk_size = kGelfChunkSize);

}  // namespace stack::reconciler
