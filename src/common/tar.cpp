// See tar.h. The header layout is POSIX.1-2001 ustar (pax(1), "ustar Interchange Format");
// long names, big sizes and ids go into a pax 'x' header, as GNU tar and docker write them.
#include "common/tar.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace stack::tar {

namespace {

constexpr size_t kBlock = 512;
// A pax header or GNU long name bigger than this is refused: no real name is that long.
constexpr uint64_t kMaxMeta = 1 << 20;

// VALUE as octal in a field of WIDTH bytes (digits, then NUL); false when it does not fit.
bool put_octal(char* field, size_t width, uint64_t value) {
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + (value & 7)));
    value >>= 3;
  } while (value);
  if (digits.size() > width - 1) return false;
  digits.insert(digits.begin(), width - 1 - digits.size(), '0');
  std::memcpy(field, digits.data(), width - 1);
  field[width - 1] = '\0';
  return true;
}

// Octal (or GNU base-256, first byte with its high bit set) number of a header field.
Result<uint64_t> get_number(const char* field, size_t width) {
  const auto* f = reinterpret_cast<const unsigned char*>(field);
  if (f[0] & 0x80) {
    uint64_t v = f[0] & 0x7f;
    for (size_t i = 1; i < width; i++) v = (v << 8) | f[i];
    return v;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < width && (f[i] == ' ' || f[i] == '\0')) i++;
  for (; i < width && f[i] >= '0' && f[i] <= '7'; i++) v = (v << 3) | (f[i] - '0');
  for (; i < width; i++)
    if (f[i] != ' ' && f[i] != '\0') return fail("tar: bad number in a header");
  return v;
}

std::string field_text(const char* field, size_t width) {
  return std::string(field, strnlen(field, width));
}

// One pax record: "LEN key=value\n", LEN counting itself.
std::string pax_record(std::string_view key, std::string_view value) {
  size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
  size_t len = body + 1;
  while (std::to_string(len).size() + body != len) len++;
  return std::to_string(len) + " " + std::string(key) + "=" + std::string(value) + "\n";
}

void checksum(char* block) {
  std::memset(block + 148, ' ', 8);
  unsigned sum = 0;
  for (size_t i = 0; i < kBlock; i++) sum += static_cast<unsigned char>(block[i]);
  put_octal(block + 148, 7, sum);  // six digits, NUL, then the space left in place
  block[155] = ' ';
}

std::string ustar_block(char type, std::string_view name, std::string_view linkname,
                        uint32_t mode, uint64_t uid, uint64_t gid, uint64_t size, int64_t mtime,
                        uint32_t devmajor, uint32_t devminor) {
  std::string block(kBlock, '\0');
  char* b = block.data();
  std::memcpy(b, name.data(), std::min<size_t>(name.size(), 100));
  put_octal(b + 100, 8, mode & 07777);
  put_octal(b + 108, 8, uid);
  put_octal(b + 116, 8, gid);
  put_octal(b + 124, 12, size);
  put_octal(b + 136, 12, static_cast<uint64_t>(std::max<int64_t>(mtime, 0)));
  b[156] = type;
  std::memcpy(b + 157, linkname.data(), std::min<size_t>(linkname.size(), 100));
  std::memcpy(b + 257, "ustar", 6);
  std::memcpy(b + 263, "00", 2);
  put_octal(b + 329, 8, devmajor);
  put_octal(b + 337, 8, devminor);
  checksum(b);
  return block;
}

}  // namespace

std::string header(const Entry& e) {
  std::string name = e.name;
  if (e.kind == Kind::directory && !name.empty() && name.back() != '/') name += '/';
  std::string pax;
  char scratch[12];
  if (name.size() > 100) pax += pax_record("path", name);
  if (e.linkname.size() > 100) pax += pax_record("linkpath", e.linkname);
  if (!put_octal(scratch, 12, e.size)) pax += pax_record("size", std::to_string(e.size));
  if (!put_octal(scratch, 8, e.uid)) pax += pax_record("uid", std::to_string(e.uid));
  if (!put_octal(scratch, 8, e.gid)) pax += pax_record("gid", std::to_string(e.gid));
  std::string out;
  if (!pax.empty()) {
    out = ustar_block('x', "PaxHeaders/" + name.substr(0, 80), "", 0644, 0, 0, pax.size(),
                      e.mtime, 0, 0);
    out += pax;
    out.append(padding(pax.size()), '\0');
  }
  // Fields that did not fit are zero here: the pax record above is what readers take.
  auto fits = [&](uint64_t v, size_t width) { return put_octal(scratch, width, v) ? v : 0; };
  out += ustar_block(static_cast<char>(e.kind), name, e.linkname, e.mode, fits(e.uid, 8),
                     fits(e.gid, 8), fits(e.size, 12), e.mtime, e.devmajor, e.devminor);
  return out;
}

std::string trailer() { return std::string(2 * kBlock, '\0'); }

Result<bool> Reader::read_exact(char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    auto r = source_(buf + got, n - got);
    if (!r) return fail(r.error());
    if (*r == 0) {
      if (got == 0) return false;
      return fail("tar: the archive ends inside a block");
    }
    got += *r;
  }
  return true;
}

Result<void> Reader::skip(uint64_t n) {
  char buf[4096];
  while (n > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, sizeof buf));
    auto ok = read_exact(buf, chunk);
    if (!ok) return fail(ok.error());
    if (!*ok) return fail("tar: the archive ends inside an entry");
    n -= chunk;
  }
  return {};
}

Result<size_t> Reader::read(char* buf, size_t n) {
  if (left_ == 0) return size_t{0};
  size_t want = static_cast<size_t>(std::min<uint64_t>(n, left_));
  auto r = source_(buf, want);
  if (!r) return fail(r.error());
  if (*r == 0) return fail("tar: the archive ends inside an entry");
  left_ -= *r;
  return *r;
}

Result<std::optional<Entry>> Reader::next() {
  if (auto r = skip(left_ + padding_); !r) return fail(r.error());
  left_ = padding_ = 0;
  std::optional<std::string> pax_path, pax_link, gnu_name, gnu_link;
  std::optional<uint64_t> pax_size, pax_uid, pax_gid;
  std::optional<int64_t> pax_mtime;
  for (;;) {
    char block[kBlock];
    auto ok = read_exact(block, kBlock);
    if (!ok) return fail(ok.error());
    if (!*ok) return std::optional<Entry>{};
    if (std::all_of(block, block + kBlock, [](char c) { return c == '\0'; }))
      return std::optional<Entry>{};
    unsigned sum = 0;
    for (size_t i = 0; i < kBlock; i++)
      sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(block[i]);
    auto stored = get_number(block + 148, 8);
    if (!stored || *stored != sum) return fail("tar: header checksum mismatch");
    auto size = get_number(block + 124, 12);
    auto mode = get_number(block + 100, 8);
    auto uid = get_number(block + 108, 8);
    auto gid = get_number(block + 116, 8);
    auto mtime = get_number(block + 136, 12);
    auto major = get_number(block + 329, 8);
    auto minor = get_number(block + 337, 8);
    if (!size || !mode || !uid || !gid || !mtime || !major || !minor)
      return fail("tar: bad number in a header");
    char type = block[156];
    uint64_t data = pax_size.value_or(*size);
    if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
      if (data > kMaxMeta) return fail("tar: extended header over 1 MiB");
      std::string meta(static_cast<size_t>(data), '\0');
      if (data) {
        auto got = read_exact(meta.data(), meta.size());
        if (!got || !*got) return fail("tar: the archive ends inside an extended header");
      }
      if (auto r = skip(padding(data)); !r) return fail(r.error());
      if (type == 'L') gnu_name = meta.substr(0, strnlen(meta.c_str(), meta.size()));
      if (type == 'K') gnu_link = meta.substr(0, strnlen(meta.c_str(), meta.size()));
      if (type == 'x') {
        std::string_view rest = meta;
        while (!rest.empty()) {
          size_t space = rest.find(' ');
          if (space == std::string_view::npos) return fail("tar: bad pax record");
          size_t len = 0;
          for (char c : rest.substr(0, space)) {
            if (c < '0' || c > '9') return fail("tar: bad pax record");
            len = len * 10 + static_cast<size_t>(c - '0');
          }
          if (len <= space + 1 || len > rest.size() || rest[len - 1] != '\n')
            return fail("tar: bad pax record");
          std::string_view rec = rest.substr(space + 1, len - space - 2);
          rest.remove_prefix(len);
          size_t eq = rec.find('=');
          if (eq == std::string_view::npos) return fail("tar: bad pax record");
          std::string key(rec.substr(0, eq)), value(rec.substr(eq + 1));
          auto num = [&]() -> Result<uint64_t> {
            uint64_t v = 0;
            for (char c : value.substr(0, value.find('.'))) {
              if (c < '0' || c > '9') return fail("tar: bad pax number for " + key);
              v = v * 10 + static_cast<uint64_t>(c - '0');
            }
            return v;
          };
          if (key == "path") pax_path = value;
          else if (key == "linkpath") pax_link = value;
          else if (key == "size" || key == "uid" || key == "gid" || key == "mtime") {
            auto v = num();
            if (!v) return fail(v.error());
            if (key == "size") pax_size = *v;
            if (key == "uid") pax_uid = *v;
            if (key == "gid") pax_gid = *v;
            if (key == "mtime") pax_mtime = static_cast<int64_t>(*v);
          }
        }
      }
      continue;
    }
    Entry e;
    std::string prefix = std::memcmp(block + 257, "ustar", 5) == 0 ? field_text(block + 345, 155)
                                                                    : std::string();
    e.name = pax_path   ? *pax_path
             : gnu_name ? *gnu_name
                        : (prefix.empty() ? "" : prefix + "/") + field_text(block, 100);
    e.linkname = pax_link ? *pax_link : gnu_link ? *gnu_link : field_text(block + 157, 100);
    e.mode = static_cast<uint32_t>(*mode & 07777);
    e.uid = pax_uid.value_or(*uid);
    e.gid = pax_gid.value_or(*gid);
    e.mtime = pax_mtime.value_or(static_cast<int64_t>(*mtime));
    e.devmajor = static_cast<uint32_t>(*major);
    e.devminor = static_cast<uint32_t>(*minor);
    switch (type) {
      case '\0':
      case '0':
      case '7':
        e.kind = (!e.name.empty() && e.name.back() == '/') ? Kind::directory : Kind::file;
        break;
      case '1': e.kind = Kind::hardlink; break;
      case '2': e.kind = Kind::symlink; break;
      case '3': e.kind = Kind::chardev; break;
      case '4': e.kind = Kind::blockdev; break;
      case '5': e.kind = Kind::directory; break;
      case '6': e.kind = Kind::fifo; break;
      default:  // other kinds: their data is skipped
        if (auto r = skip(data + padding(data)); !r) return fail(r.error());
        pax_path.reset(), pax_link.reset(), gnu_name.reset(), gnu_link.reset();
        pax_size.reset(), pax_uid.reset(), pax_gid.reset(), pax_mtime.reset();
        continue;
    }
    // Only files carry data; a hardlink's size field, where a writer set it, is skipped.
    e.size = e.kind == Kind::file ? data : 0;
    left_ = data;
    padding_ = padding(data);
    while (e.name.size() > 1 && e.name.back() == '/') e.name.pop_back();
    return std::optional<Entry>{std::move(e)};
  }
}

Result<std::string> clean_name(std::string_view name) {
  std::string out;
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('/', i);
    if (j == std::string_view::npos) j = name.size();
    std::string_view part = name.substr(i, j - i);
    if (part == "..") return fail("archive entry \"" + std::string(name) + "\" has a '..'");
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    i = j + 1;
  }
  if (out.find('\0') != std::string::npos)
    return fail("archive entry name has a NUL byte");
  return out;
}

}  // namespace stack::tar
