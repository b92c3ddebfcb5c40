// Internal to src/engine: the real implementations of kernel.h's interfaces, one stateless
// instance of each for the process (KernelSeams::real() hands them out).
#pragma once

#include "engine/kernel.h"

namespace stack::engine {

InitLauncher& real_launcher();  // init_launcher.cpp: ForkExecLauncher
Processes& real_processes();    // kernel_real.cpp: LinuxProcesses
ContainerFiles& real_files();   // kernel_real.cpp: HostFiles
UserNamespaces& real_userns();  // kernel_real.cpp: LinuxUserNamespaces

}  // namespace stack::engine
