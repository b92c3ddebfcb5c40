// A service's `build:` as the plan carries it to the build step: plain data, decoded once from
// the stack file (spec::Build), paths absolute. No dependencies beyond the standard library.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace stack::model {

struct BuildConfig {
  std::string image;                 // the name the result gets ("demo-web:latest", or image:)
  std::vector<std::string> tags;     // more names for it (build.tags)
  std::string context;               // absolute directory
  std::string dockerfile;            // absolute path; "" with DOCKERFILE_INLINE
  std::string dockerfile_inline;     // the Dockerfile's text itself
  std::string target;                // a stage name; "" the last one
  std::map<std::string, std::string> args;
  std::map<std::string, std::string> labels;
  std::string network;               // for RUN: "" default, none, host
  bool no_cache = false;
  bool pull = false;                 // FROM images pulled again
  int64_t shm_size = 0;
  std::vector<std::pair<std::string, std::string>> extra_hosts;  // (host, ip)
  std::string where;                 // "stack.yaml:4:12", for errors about the build itself
};

}  // namespace stack::model
