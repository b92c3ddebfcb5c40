// See seal.h. A fresh 96-bit random nonce per value (RAND_bytes): at the few thousand seals
// per day a daemon makes, the GCM nonce-collision bound (2^32 messages per key) is far away.
#include "state/seal.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "common/unique_fd.h"

namespace stack::state {

namespace {

constexpr std::string_view kV1 = "sealed:v1:";
constexpr size_t kNonce = 12;
constexpr size_t kTag = 16;

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

std::string base64(const std::vector<unsigned char>& in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), in.data(),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::vector<unsigned char>> unbase64(std::string_view in) {
  if (in.size() % 4 != 0) return fail("not base64");
  std::vector<unsigned char> out(in.size() / 4 * 3);
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return fail("not base64");
  // EVP_DecodeBlock counts the padding as zero bytes.
  size_t pad = in.empty() ? 0 : (in.back() == '=') + (in.size() > 1 && in[in.size() - 2] == '=');
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

Result<void> write_all(int fd, const unsigned char* p, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail_errno("write " + path);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

// 32 random bytes at PATH unless a key is there already: written to a private temporary name,
// then link(2)ed into place, which fails with EEXIST when another process was first.
Result<void> create_key(const std::filesystem::path& path) {
  Sealer::Key key{};
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1)
    return fail("no random bytes for a new key");
  std::string tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return fail_errno("create " + tmp);
  auto r = write_all(fd.get(), key.data(), key.size(), tmp);
  if (r && ::fsync(fd.get()) != 0) r = fail_errno("fsync " + tmp);
  if (r && ::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST)
    r = fail_errno("link " + path.string());
  ::unlink(tmp.c_str());
  return r;
}

}  // namespace

Result<Sealer> Sealer::load(const std::filesystem::path& path, bool create) {
  const std::string ctx = "key " + path.string();
  if (create)
    if (auto r = create_key(path); !r) return fail(r.error().wrap(ctx));
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return fail(Error::from_errno("open").wrap(ctx));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail(Error::from_errno("stat").wrap(ctx));
  if (!S_ISREG(st.st_mode) || st.st_size != static_cast<off_t>(sizeof(Key)))
    return fail(ctx + ": not a 32-byte key file");
  if ((st.st_mode & 077) != 0 && ::fchmod(fd.get(), 0600) != 0)
    return fail(Error::from_errno("chmod").wrap(ctx));
  Key key{};
  if (::pread(fd.get(), key.data(), key.size(), 0) != static_cast<ssize_t>(key.size()))
    return fail(Error::from_errno("read").wrap(ctx));
  return Sealer(key);
}

Result<std::string> Sealer::seal(std::string_view plain, std::string_view context) const {
  std::vector<unsigned char> out(kNonce + plain.size() + kTag);
  if (RAND_bytes(out.data(), kNonce) != 1) return fail("seal: no random bytes");
  CipherCtx c(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok =
      c && EVP_EncryptInit_ex(c.get(), EVP_aes_256_gcm(), nullptr, key_.data(), out.data()) == 1;
  ok = ok && EVP_EncryptUpdate(c.get(), nullptr, &len,
                               reinterpret_cast<const unsigned char*>(context.data()),
                               static_cast<int>(context.size())) == 1;
  ok = ok && EVP_EncryptUpdate(c.get(), out.data() + kNonce, &len,
                               reinterpret_cast<const unsigned char*>(plain.data()),
                               static_cast<int>(plain.size())) == 1;
  ok = ok && EVP_EncryptFinal_ex(c.get(), out.data() + kNonce + len, &len) == 1;
  ok = ok && EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_GET_TAG, kTag,
                                 out.data() + kNonce + plain.size()) == 1;
  if (!ok) return fail("seal: AES-256-GCM failed");
  return std::string(kV1) + base64(out);
}

Result<std::string> Sealer::unseal(std::string_view stored, std::string_view context) const {
  if (!is_sealed(stored)) return std::string(stored);
  if (stored.substr(0, kV1.size()) != kV1)
    return fail("unseal: unknown format \"" +
                std::string(stored.substr(0, stored.find(':', kSealedPrefix.size()))) +
                "\" (written by a newer stack?)");
  auto raw = unbase64(stored.substr(kV1.size()));
  if (!raw || raw->size() < kNonce + kTag) return fail("unseal: damaged value");
  const size_t n = raw->size() - kNonce - kTag;
  std::string plain(n, '\0');
  CipherCtx c(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok =
      c && EVP_DecryptInit_ex(c.get(), EVP_aes_256_gcm(), nullptr, key_.data(), raw->data()) == 1;
  ok = ok && EVP_DecryptUpdate(c.get(), nullptr, &len,
                               reinterpret_cast<const unsigned char*>(context.data()),
                               static_cast<int>(context.size())) == 1;
  ok = ok && EVP_DecryptUpdate(c.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                               raw->data() + kNonce, static_cast<int>(n)) == 1;
  ok =
      ok && EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_TAG, kTag, raw->data() + kNonce + n) == 1;
  if (!ok || EVP_DecryptFinal_ex(c.get(), nullptr, &len) != 1)
    return fail(
        "unseal: authentication failed (damaged value, or a state.key that is not the "
        "one it was sealed with)");
  return plain;
}

}  // namespace stack::state
