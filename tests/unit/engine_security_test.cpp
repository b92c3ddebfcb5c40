// Capability sets from compose's cap_add/cap_drop (names through libcap, Docker's rules for
// ALL) and no_new_privs from security_opt. No root needed.
#include <doctest/doctest.h>

#include "engine/container.h"

using namespace stack;
using namespace stack::engine;

namespace {

uint64_t bit(int cap) { return 1ull << cap; }
constexpr int kNetAdmin = 12, kMknod = 27, kChown = 0, kSysAdmin = 21;

}  // namespace

TEST_CASE("Docker's default capability set is CapEff 00000000a80425fb") {
  CHECK(default_capabilities() == 0xa80425fbull);
  CHECK((all_capabilities() & default_capabilities()) == default_capabilities());
}

TEST_CASE("cap_add and cap_drop combine as Docker combines them") {
  CHECK(capabilities_from({}, {}).value() == default_capabilities());
  // With or without CAP_, any case.
  for (const char* n : {"NET_ADMIN", "CAP_NET_ADMIN", "net_admin", "Cap_Net_Admin"})
    CHECK(capabilities_from({n}, {}).value() == (default_capabilities() | bit(kNetAdmin)));
  CHECK(capabilities_from({"NET_ADMIN"}, {"MKNOD"}).value() ==
        ((default_capabilities() | bit(kNetAdmin)) & ~bit(kMknod)));
  // ALL in cap_drop keeps only cap_add; ALL in cap_add is everything but cap_drop.
  CHECK(capabilities_from({}, {"ALL"}).value() == 0);
  CHECK(capabilities_from({"CHOWN"}, {"ALL"}).value() == bit(kChown));
  CHECK(capabilities_from({"ALL"}, {"SYS_ADMIN"}).value() ==
        (all_capabilities() & ~bit(kSysAdmin)));
  // Added wins over dropped, as in moby (cap_add is applied after cap_drop).
  CHECK(capabilities_from({"MKNOD"}, {"MKNOD"}).value() == default_capabilities());
}

TEST_CASE("an unknown capability is an error naming it and the field") {
  auto r = capabilities_from({"NET_ADMIN", "WARP_DRIVE"}, {});
  REQUIRE(!r);
  CHECK(r.error().message == "cap_add: unknown capability CAP_WARP_DRIVE");
  auto d = capabilities_from({}, {"cap_nope"});
  REQUIRE(!d);
  CHECK(d.error().message == "cap_drop: unknown capability CAP_NOPE");
  CHECK(!capabilities_from({"12"}, {}));  // libcap takes numbers; compose names are names
}

TEST_CASE("no_new_privs is on unless security_opt turns it off") {
  CHECK(no_new_privileges_from({}).value());
  CHECK(no_new_privileges_from({"seccomp=unconfined"}).value());
  CHECK(no_new_privileges_from({"no-new-privileges"}).value());
  CHECK(no_new_privileges_from({"no-new-privileges:true"}).value());
  CHECK(no_new_privileges_from({"no-new-privileges=true"}).value());
  CHECK(!no_new_privileges_from({"no-new-privileges:false"}).value());
  CHECK(!no_new_privileges_from({"no-new-privileges=false"}).value());
  auto bad = no_new_privileges_from({"no-new-privileges:maybe"});
  REQUIRE(!bad);
  CHECK(bad.error().message.find("no-new-privileges:maybe") != std::string::npos);
}

TEST_CASE("Docker's masked and read-only paths") {
  const auto& m = masked_paths();
  for (const char* p :
       {"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
        "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"})
    CHECK(std::find(m.begin(), m.end(), p) != m.end());
  CHECK(readonly_paths() == std::vector<std::string>{"/proc/bus", "/proc/fs", "/proc/irq",
                                                     "/proc/sys", "/proc/sysrq-trigger"});
}
