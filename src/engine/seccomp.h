// The seccomp filter of a container: Docker's default profile, a Docker-format JSON profile
// (`security_opt: [seccomp=PATH]`) or none, compiled once with libseccomp into a BPF program
// and cached. Installing the program (no_new_privs, seccomp(2)) is the container setup's job.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/container.h"

namespace stack::engine {

using model::SeccompSpec;


// The BPF program (a `struct sock_filter` array as raw bytes, ready for
// seccomp(SECCOMP_SET_MODE_FILTER) / prctl(PR_SET_SECCOMP)) for SPEC, compiled with
// libseccomp once per distinct spec and cached (thread-safe). nullptr for kUnconfined.
[[nodiscard]] Result<std::shared_ptr<const std::string>> seccomp_program(const SeccompSpec& spec);

// Compose `security_opt` values: "seccomp=unconfined", "seccomp:unconfined", "seccomp=PATH"
// (the file read now, relative to BASE; errors name the file and the JSON position); other
// options are ignored here. Default mode when none is given.
[[nodiscard]] Result<SeccompSpec> seccomp_from_security_opt(const std::vector<std::string>& opts,
                                                            const std::filesystem::path& base,
                                                            uint64_t caps);

// Added to the contract: the SECCOMP_FILTER_FLAG_* bits a profile's "flags" ask for, to pass as
// the flags argument of seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog) with the program.
// SECCOMP_FILTER_FLAG_LOG and SECCOMP_FILTER_FLAG_SPEC_ALLOW are honoured; TSYNC is accepted
// and not needed (the filter is installed by a single-threaded process). 0 for the default
// profile and for kUnconfined.
[[nodiscard]] Result<unsigned> seccomp_filter_flags(const SeccompSpec& spec);

}  // namespace stack::engine
