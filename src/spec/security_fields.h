// security_opt's Linux Security Module options (apparmor, label): what this kernel can honour.
// Reads which LSMs the kernel runs (sysfs) and nothing else; changes nothing.
// Context: stack confines containers with namespaces, capabilities and seccomp; it loads no
// AppArmor profile and sets no SELinux label.
#pragma once

#include <string>

#include "spec/diagnostics.h"
#include "spec/stack.h"

namespace stack::spec {

// Which LSMs this kernel runs, as /sys/kernel/security/lsm lists them; when securityfs is not
// mounted, AppArmor from /sys/module/apparmor/parameters/enabled and SELinux from selinuxfs.
struct HostLsms {
  bool apparmor = false;
  bool selinux = false;
  std::string listed;  // "lockdown,capability,landlock" or "" when not known
};
[[nodiscard]] HostLsms host_lsms();

// Whether OPT ("apparmor:unconfined", "label=disable") asks for no confinement by an LSM: what
// stack does anyway, so it is taken as a no-op (the reconciler says so once).
[[nodiscard]] bool lsm_noop_option(const std::string& opt);
// Whether OPT is an apparmor or label option at all.
[[nodiscard]] bool lsm_option(const std::string& opt);

// Every apparmor or label option of a service that is not a no-op is refused ("refused: ...")
// with the reason LSMS gives: the kernel does not run that LSM, or stack applies none.
void check_lsm_options(const Service& service, const HostLsms& lsms, Diagnostics& diag);

}  // namespace stack::spec
