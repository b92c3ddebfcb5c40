// config_hash: sha256 over the canonical JSON of a normalised service (service_json). Replicas
// and source positions are left out: scaling or moving a line in the file must not recreate
// containers.
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "spec/loader.h"

namespace stack::spec {

std::string config_hash(const Service& service) {
  nlohmann::json doc = service_json(service);
  doc.erase("scale");
  // nlohmann::json objects are std::map based, so keys come out sorted.
  std::string text = nlohmann::json{{"name", service.name}, {"service", doc}}.dump();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    // sha256 of an in-memory buffer cannot fail short of a broken libcrypto.
    std::abort();
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace stack::spec
