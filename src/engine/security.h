// Internal to src/engine: the device nodes a container's /dev gets. The public security
// settings (capabilities, masked paths) are in container.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace stack::engine {

struct DeviceNode {
  std::string path;  // "/dev/null"
  char type = 'c';   // 'c' or 'b'
  uint32_t major = 0, minor = 0;
  uint32_t mode = 0666;
};

// The minimal /dev of a container (runc's default devices): null, zero, full, random,
// urandom, tty. ptmx links to the container's own devpts.
const std::vector<DeviceNode>& default_devices();
// Every device node of the host's /dev, for a privileged container.
std::vector<DeviceNode> host_devices();

}  // namespace stack::engine
