// See exec_stream.h for the format.
#include "api/exec_stream.h"

namespace stack::api::exec {

namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

std::string encode(Type type, std::string_view payload) {
  std::string out;
  out.reserve(5 + payload.size());
  out.push_back(static_cast<char>(type));
  put_u32(out, static_cast<uint32_t>(payload.size()));
  out.append(payload);
  return out;
}

std::string encode_resize(uint16_t cols, uint16_t rows) {
  const char p[4] = {static_cast<char>(cols >> 8), static_cast<char>(cols & 0xff),
                     static_cast<char>(rows >> 8), static_cast<char>(rows & 0xff)};
  return encode(Type::resize, std::string_view(p, 4));
}

std::string encode_exit(int32_t code) {
  std::string p;
  put_u32(p, static_cast<uint32_t>(code));
  return encode(Type::exit, p);
}

Result<std::pair<uint16_t, uint16_t>> decode_resize(std::string_view p) {
  if (p.size() != 4) return fail("resize frame of " + std::to_string(p.size()) + " bytes, not 4");
  auto byte = [&](size_t i) { return static_cast<uint16_t>(static_cast<unsigned char>(p[i])); };
  return std::pair<uint16_t, uint16_t>{static_cast<uint16_t>(byte(0) << 8 | byte(1)),
                                       static_cast<uint16_t>(byte(2) << 8 | byte(3))};
}

Result<int32_t> decode_exit(std::string_view p) {
  if (p.size() != 4) return fail("exit frame of " + std::to_string(p.size()) + " bytes, not 4");
  return static_cast<int32_t>(get_u32(p.data()));
}

Result<std::optional<Frame>> FrameReader::next() {
  size_t left = buffer_.size() - offset_;
  if (left < 5) return std::optional<Frame>{};
  const char* head = buffer_.data() + offset_;
  auto type = static_cast<uint8_t>(head[0]);
  uint32_t length = get_u32(head + 1);
  if (type > static_cast<uint8_t>(Type::error))
    return fail("exec stream: unknown frame type " + std::to_string(type));
  if (length > kMaxPayload)
    return fail("exec stream: frame of " + std::to_string(length) + " bytes, over the limit of " +
                std::to_string(kMaxPayload));
  if (left - 5 < length) return std::optional<Frame>{};
  Frame f{static_cast<Type>(type), buffer_.substr(offset_ + 5, length)};
  offset_ += 5 + length;
  // Consumed bytes are dropped once they outweigh the rest: amortised, no quadratic copying.
  if (offset_ > 64 * 1024 && offset_ * 2 > buffer_.size()) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  return std::optional<Frame>{std::move(f)};
}

}  // namespace stack::api::exec
