// msgpack's encodings for fluentd's Forward Message Mode entries. Pure.
#include "reconciler/fluentd.h"

#include <cstdio>
#include <ctime>

namespace stack::reconciler {
namespace msgpack {
namespace {

void put_be(std::string& out, uint64_t n, int bytes) {
  for (int b = bytes - 1; b >= 0; b--) out += static_cast<char>((n >> (b * 8)) & 0xff);
}

// A header of N elements: FIX | N when it fits in 4 bits (MAX_FIX), else the 16 or 32 form.
void put_header(std::string& out, uint32_t n, uint8_t fix, uint32_t max_fix, uint8_t b16,
                uint8_t b32) {
  if (n <= max_fix) {
    out += static_cast<char>(fix | n);
  } else if (n <= 0xffff) {
    out += static_cast<char>(b16);
    put_be(out, n, 2);
  } else {
    out += static_cast<char>(b32);
    put_be(out, n, 4);
  }
}

}  // namespace

void put_uint(std::string& out, uint64_t n) {
  if (n <= 0x7f) {
    out += static_cast<char>(n);
  } else if (n <= 0xff) {
    out += '\xcc';
    put_be(out, n, 1);
  } else if (n <= 0xffff) {
    out += '\xcd';
    put_be(out, n, 2);
  } else if (n <= 0xffffffffULL) {
    out += '\xce';
    put_be(out, n, 4);
  } else {
    out += '\xcf';
    put_be(out, n, 8);
  }
}

void put_str(std::string& out, std::string_view s) {
  if (s.size() <= 31) {
    out += static_cast<char>(0xa0 | s.size());
  } else if (s.size() <= 0xff) {
    out += '\xd9';
    put_be(out, s.size(), 1);
  } else if (s.size() <= 0xffff) {
    out += '\xda';
    put_be(out, s.size(), 2);
  } else {
    out += '\xdb';
    put_be(out, s.size(), 4);
  }
  out += s;
}

void put_array(std::string& out, uint32_t n) { put_header(out, n, 0x90, 15, 0xdc, 0xdd); }
void put_map(std::string& out, uint32_t n) { put_header(out, n, 0x80, 15, 0xde, 0xdf); }

void put_event_time(std::string& out, uint32_t seconds, uint32_t nanoseconds) {
  out += '\xd7';
  out += '\x00';
  put_be(out, seconds, 4);
  put_be(out, nanoseconds, 4);
}

}  // namespace msgpack

std::string fluentd_message(const std::string& tag, const std::string& time, bool subsecond,
                            const std::map<std::string, std::string>& record) {
  std::tm tm{};
  long long seconds = 0;
  uint32_t nanos = 0;
  if (std::sscanf(time.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6) {
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    seconds = ::timegm(&tm);
    if (time.size() > 20 && time[19] == '.')
      for (size_t i = 20; i < 29; i++)
        nanos = nanos * 10 +
                (i < time.size() && time[i] >= '0' && time[i] <= '9' ? time[i] - '0' : 0);
  }
  std::string out;
  msgpack::put_array(out, 3);
  msgpack::put_str(out, tag);
  if (subsecond)
    msgpack::put_event_time(out, static_cast<uint32_t>(seconds), nanos);
  else
    msgpack::put_uint(out, static_cast<uint64_t>(seconds));
  msgpack::put_map(out, static_cast<uint32_t>(record.size()));
  for (const auto& [k, v] : record) {
    msgpack::put_str(out, k);
    msgpack::put_str(out, v);
  }
  return out;
}

}  // namespace stack::reconciler
