// config_hash: sha256 over the canonical JSON of a normalised service. Replicas and source
// positions are left out: scaling or moving a line in the file must not recreate containers.
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "spec/loader.h"

namespace stack::spec {
namespace {

template <class T>
nlohmann::json optional_json(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json canonical(const Service& s) {
  nlohmann::json mounts = nlohmann::json::array();
  for (const Mount& m : s.volumes)
    mounts.push_back({{"type", m.type},
                      {"source", m.source.string()},
                      {"target", m.target},
                      {"read_only", m.read_only}});
  // nlohmann::json objects are std::map based, so keys come out sorted.
  return {
      {"name", s.name},
      {"image", s.image},
      {"entrypoint", optional_json(s.entrypoint)},
      {"command", optional_json(s.command)},
      {"environment", s.environment},
      {"working_dir", s.working_dir},
      {"hostname", s.hostname},
      {"user", s.user},
      {"limits",
       {{"memory_bytes", optional_json(s.limits.memory_bytes)},
        {"cpus", optional_json(s.limits.cpus)},
        {"cpu_shares", optional_json(s.limits.cpu_shares)},
        {"pids", optional_json(s.limits.pids)}}},
      {"stop_signal", s.stop_signal},
      {"stop_grace_period_ms", s.stop_grace_period.count()},
      {"volumes", mounts},
      {"logging",
       {{"driver", s.logging.driver},
        {"max_size_bytes", s.logging.max_size_bytes},
        {"max_files", s.logging.max_files}}},
      {"depends_on", s.depends_on},
      {"restart", s.restart},
  };
}

}  // namespace

std::string config_hash(const Service& service) {
  std::string text = canonical(service).dump();
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
