// Building and reading the engine <-> stack-init messages (init/wire.h). Decoding uses the C
// decoder compiled from init/wire.c, the one the init runs, so both ends agree by construction.
#include "engine/wire.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace stack::engine::wire {

using namespace std::chrono_literals;

namespace {

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

Writer& Writer::bytes(uint16_t tag, std::string_view value) {
  put_le(body_, tag, 2);
  put_le(body_, value.size(), 4);
  body_.append(value);
  return *this;
}

Writer& Writer::u32(uint16_t tag, uint32_t value) {
  std::string v;
  put_le(v, value, 4);
  return bytes(tag, v);
}

Writer& Writer::u64(uint16_t tag, uint64_t value) {
  std::string v;
  put_le(v, value, 8);
  return bytes(tag, v);
}

std::string Writer::message() const {
  std::string out;
  put_le(out, body_.size(), 4);
  return out + body_;
}

Result<std::vector<Record>> decode(std::string_view body) {
  wire_reader r;
  wire_reader_init(&r, body.data(), body.size());
  std::vector<Record> out;
  uint16_t tag;
  const unsigned char* val;
  uint32_t len;
  int got;
  while ((got = wire_next(&r, &tag, &val, &len)) == 1)
    out.push_back({tag, std::string_view(reinterpret_cast<const char*>(val), len)});
  if (got < 0) return fail("malformed message: a record runs past its end");
  return out;
}

Result<uint32_t> as_u32(const Record& r) {
  uint32_t v;
  if (wire_u32(reinterpret_cast<const unsigned char*>(r.value.data()),
               static_cast<uint32_t>(r.value.size()), &v) != 0)
    return fail("malformed message: record " + std::to_string(r.tag) + " is not 4 bytes");
  return v;
}

Result<uint64_t> as_u64(const Record& r) {
  uint64_t v;
  if (wire_u64(reinterpret_cast<const unsigned char*>(r.value.data()),
               static_cast<uint32_t>(r.value.size()), &v) != 0)
    return fail("malformed message: record " + std::to_string(r.tag) + " is not 8 bytes");
  return v;
}

Result<void> send(int fd, std::string_view message) {
  while (!message.empty()) {
    ssize_t n = ::send(fd, message.data(), message.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("send to container init");
    message.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

namespace {

// Reads exactly N bytes into OUT before DEADLINE. 0 bytes at EOF: "closed".
Result<void> read_exact(int fd, char* out, size_t n, std::chrono::steady_clock::time_point deadline,
                        std::chrono::milliseconds timeout) {
  size_t got = 0;
  while (got < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms)
      return fail("container init did not answer within " + std::to_string(timeout.count()) +
                  " ms");
    pollfd pfd{fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return fail_errno("poll container init");
    if (r == 0) continue;
    ssize_t k = ::read(fd, out + got, n - got);
    if (k < 0 && errno == EINTR) continue;
    // An init that died with our last message unread resets the connection (unix(7)): it
    // exited all the same, and says so rather than "Connection reset by peer".
    if (k == 0 || (k < 0 && errno == ECONNRESET)) return fail("container init exited during setup");
    if (k < 0) return fail_errno("read from container init");
    got += static_cast<size_t>(k);
  }
  return {};
}

}  // namespace

Result<std::string> receive(int fd, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  unsigned char hdr[4];
  if (auto r = read_exact(fd, reinterpret_cast<char*>(hdr), 4, deadline, timeout); !r)
    return fail(r.error());
  uint32_t len = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | static_cast<uint32_t>(hdr[3]) << 24;
  if (len > WIRE_MAX_MESSAGE)
    return fail("malformed message from container init: " + std::to_string(len) + " bytes");
  std::string body(len, '\0');
  if (auto r = read_exact(fd, body.data(), len, deadline, timeout); !r) return fail(r.error());
  return body;
}

}  // namespace stack::engine::wire
