// GELF documents, compression (zlib's deflate with a gzip or zlib wrapper) and chunking. Pure.
#include "reconciler/gelf.h"

#include <zlib.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "engine/logs.h"

namespace stack::reconciler {
namespace {

// "2026-11-30T15:04:05.123456789Z" as unix seconds to the millisecond (docker truncates).
double unix_seconds(const std::string& t) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
    return 0;
  if (t.size() > 20 && t[19] == '.')
    for (size_t i = 20; i < 23; i++) {
      bool digit = i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]));
      ms = ms * 10 + (digit ? t[i] - '0' : 0);
    }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(::timegm(&tm)) + ms / 1000.0;
}

}  // namespace

std::string gelf_message(const GelfInfo& info, const engine::LogRecord& r) {
  nlohmann::ordered_json j;
  j["version"] = "1.1";
  j["host"] = info.hostname;
  j["short_message"] = r.text;
  j["timestamp"] = unix_seconds(r.time);
  j["level"] = r.stream == "stderr" ? 3 : 6;
  j["_command"] = info.command;
  j["_container_id"] = info.id;
  j["_container_name"] = info.name;
  j["_created"] = info.created;
  j["_image_id"] = info.image_id;
  j["_image_name"] = info.image;
  j["_tag"] = info.tag;
  for (const auto& [k, v] : info.extra) j[k] = v;
  if (r.partial) j["_partial_message"] = "true";
  // Lines are not always UTF-8: replace what is not, rather than throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<std::string> gelf_compress(const std::string& payload, const std::string& type,
                                  int level) {
  if (type == "none") return payload;
  if (type != "gzip" && type != "zlib" && !type.empty())
    return fail("gelf-compression-type " + type + ": gzip, zlib or none");
  z_stream z{};
  // windowBits 15 is a zlib wrapper (RFC 1950), 15 + 16 a gzip one (RFC 1952).
  int bits = type == "zlib" ? 15 : 15 + 16;
  if (deflateInit2(&z, level, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return fail("gelf compression: deflateInit2 failed (level " + std::to_string(level) + ")");
  std::string out(deflateBound(&z, payload.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(payload.data()));
  z.avail_in = static_cast<uInt>(payload.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return fail("gelf compression: deflate failed");
  return out;
}

Result<std::vector<std::string>> gelf_datagrams(const std::string& payload, uint64_t id,
                                                size_t chunk_size) {
  if (payload.size() <= chunk_size) return std::vector<std::string>{payload};
  constexpr size_t kHeader = 12;
  size_t data = chunk_size - kHeader;
  size_t count = (payload.size() + data - 1) / data;
  if (count > 128)
    return fail("gelf: a message of " + std::to_string(payload.size()) +
                " bytes needs " + std::to_string(count) + " chunks (GELF allows 128)");
  std::vector<std::string> out;
  for (size_t i = 0; i < count; i++) {
    std::string d = {'\x1e', '\x0f'};
    for (int b = 7; b >= 0; b--) d += static_cast<char>((id >> (b * 8)) & 0xff);
    d += static_cast<char>(i);
    d += static_cast<char>(count);
    d += payload.substr(i * data, data);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace stack::reconciler
