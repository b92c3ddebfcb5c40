// A named volume as the reconciler makes it: plain data carried by the plan's EnsureVolume
// step and kept by the state store. No dependencies beyond the standard library.
#pragma once

#include <map>
#include <string>

namespace stack::model {

struct VolumeConfig {
  std::string name;     // on the host: "<project>_<key>", or `name:`
  std::string project;  // "" when made by `stack volume create`
  // The local driver's options as mount(8) takes them: type, o, device. Empty: a directory.
  std::map<std::string, std::string> driver_opts;
  std::map<std::string, std::string> labels;
};

}  // namespace stack::model
