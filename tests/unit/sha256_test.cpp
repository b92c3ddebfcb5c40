// The library-free SHA-256 (src/common/sha256.h) against FIPS 180-4's examples and OpenSSL, at
// every length around the padding's block boundaries. No root needed.
#include "common/sha256.h"

#include <doctest/doctest.h>
#include <openssl/evp.h>

#include <string>

namespace {

std::string openssl_hex(const std::string& text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  REQUIRE(EVP_Digest(text.data(), text.size(), md, &n, EVP_sha256(), nullptr) == 1);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; i++) out += {hex[md[i] >> 4], hex[md[i] & 0xf]};
  return out;
}

}  // namespace

TEST_CASE("sha256: FIPS 180-4 examples, and OpenSSL's digest at every length up to 300") {
  CHECK(stack::sha256_hex("") ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(stack::sha256_hex("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(stack::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string text;
  for (int i = 0; i <= 300; i++) {
    CAPTURE(i);
    CHECK(stack::sha256_hex(text) == openssl_hex(text));
    text.push_back(static_cast<char>(i * 37 + 11));
  }
}
