// security_opt apparmor and label (see security_fields.h): a no-op when it asks for none, else
// refused with what this kernel runs. Reads sysfs only.
#include "spec/security_fields.h"

#include <fstream>
#include <sstream>

namespace stack::spec {
namespace {

std::string first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// "apparmor:x", "apparmor=x" -> {"apparmor", "x"}; anything else: {"", ""}.
std::pair<std::string, std::string> split_option(const std::string& opt) {
  for (const char* key : {"apparmor", "label"}) {
    std::string k = key;
    if (opt.size() > k.size() && opt.compare(0, k.size(), k) == 0 &&
        (opt[k.size()] == ':' || opt[k.size()] == '='))
      return {k, opt.substr(k.size() + 1)};
  }
  return {"", ""};
}

SourcePos key_pos(const Service& s, const std::string& key) {
  for (const KeyUse& k : s.keys)
    if (k.path == "services." + s.name + "." + key) return k.pos;
  return s.pos;
}

}  // namespace

HostLsms host_lsms() {
  HostLsms out;
  std::ifstream lsm("/sys/kernel/security/lsm");
  if (lsm) {
    std::getline(lsm, out.listed);
    std::stringstream in(out.listed);
    for (std::string name; std::getline(in, name, ',');) {
      out.apparmor |= name == "apparmor";
      out.selinux |= name == "selinux";
    }
    return out;
  }
  // securityfs is not mounted: AppArmor says whether it runs in its module parameter (what
  // docker reads), SELinux by its own filesystem.
  out.apparmor = first_line("/sys/module/apparmor/parameters/enabled") == "Y";
  out.selinux = std::ifstream("/sys/fs/selinux/enforce").good();
  return out;
}

bool lsm_option(const std::string& opt) { return !split_option(opt).first.empty(); }

bool lsm_noop_option(const std::string& opt) {
  auto [key, value] = split_option(opt);
  return (key == "apparmor" && value == "unconfined") ||
         (key == "label" && (value == "disable" || value == "disable:true"));
}

void check_lsm_options(const Service& s, const HostLsms& lsms, Diagnostics& diag) {
  auto it = s.extra.find("security_opt");
  if (it == s.extra.end() || !it->is_array()) return;
  std::string kernel = lsms.listed.empty() ? "" : " (its LSMs: " + lsms.listed + ")";
  for (const auto& v : *it) {
    if (!v.is_string()) continue;
    std::string opt = v.get<std::string>();
    auto [key, value] = split_option(opt);
    if (key.empty() || lsm_noop_option(opt)) continue;
    std::string reason;
    if (key == "apparmor")
      reason = lsms.apparmor ? "stack loads no AppArmor profile; apparmor:unconfined is what it "
                               "does"
                             : "this kernel does not run AppArmor" + kernel +
                                   ": no profile can confine the container";
    else
      reason = lsms.selinux ? "stack sets no SELinux label; label:disable is what it does"
                            : "this kernel does not run SELinux" + kernel +
                                  ": no label can be applied";
    diag.error(key_pos(s, "security_opt"),
               "refused: services." + s.name + ".security_opt " + opt + " (" + reason + ")");
  }
}

}  // namespace stack::spec
