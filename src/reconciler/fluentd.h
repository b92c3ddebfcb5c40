// fluentd's Forward protocol as docker's fluentd driver speaks it: each line one Message
// Mode entry, the msgpack array [tag, time, record]. The few msgpack encodings it needs are
// written here (Debian's libmsgpack-dev cannot be installed beside Boost 1.81: it pulls
// libboost-dev 1.74). Pure: the connection is log_stream.cpp's.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace stack::reconciler {

// msgpack (github.com/msgpack/msgpack/blob/master/spec.md), the smallest form of each.
namespace msgpack {
void put_uint(std::string& out, uint64_t n);        // positive fixint, uint 8/16/32/64
void put_str(std::string& out, std::string_view s);  // fixstr, str 8/16/32
void put_array(std::string& out, uint32_t n);        // fixarray, array 16/32
void put_map(std::string& out, uint32_t n);          // fixmap, map 16/32
// fluentd's EventTime: ext type 0 in a fixext 8, seconds and nanoseconds big-endian.
void put_event_time(std::string& out, uint32_t seconds, uint32_t nanoseconds);
}  // namespace msgpack

// The entry [TAG, TIME, RECORD] of a line written at TIME (RFC 3339, nanoseconds): TIME in
// whole seconds, or an EventTime with SUBSECOND (fluentd-sub-second-precision).
[[nodiscard]] std::string fluentd_message(const std::string& tag, const std::string& time,
                                          bool subsecond,
                                          const std::map<std::string, std::string>& record);

}  // namespace stack::reconciler
