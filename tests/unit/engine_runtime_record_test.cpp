// What the runtime record keeps of a container's security settings, so that a restart, a
// health probe or `stack exec` gets the same as the first start: capabilities, no_new_privs,
// privileged, the seccomp profile (a file's text, not its path) and the user namespace's
// mapping. No root needed.
#include <doctest/doctest.h>

#include "state/runtime_codec.h"

using namespace stack;
using namespace stack::state;
using stack::model::RuntimeRecord;
using Mode = model::SeccompSpec::Mode;

TEST_CASE("runtime record: security settings round-trip") {
  RuntimeRecord r;
  r.spec.name = "p-s-1";
  r.spec.process.argv = {"sleep", "1"};
  r.spec.process.capabilities = 0x1234;
  r.spec.process.no_new_privs = false;
  r.spec.process.seccomp = {Mode::kProfile, R"({"defaultAction": "SCMP_ACT_ALLOW"})", 0};
  r.spec.privileged = true;
  r.spec.userns = model::IdMapping{100000, 200000, 65536};
  auto back = decode_runtime(encode_runtime(r));
  REQUIRE_MESSAGE(back, (back ? "" : back.error().message));
  const auto& p = back->spec.process;
  CHECK(p.capabilities == 0x1234);
  CHECK(!p.no_new_privs);
  CHECK(p.seccomp.mode == Mode::kProfile);
  CHECK(p.seccomp.profile_json == R"({"defaultAction": "SCMP_ACT_ALLOW"})");
  CHECK(back->spec.privileged);
  REQUIRE(back->spec.userns);
  CHECK(*back->spec.userns == model::IdMapping{100000, 200000, 65536});

  r.spec.process.seccomp = {Mode::kUnconfined, "", 0};
  CHECK(decode_runtime(encode_runtime(r))->spec.process.seccomp.mode == Mode::kUnconfined);
}

TEST_CASE("runtime record: a record made before these settings gets the safe defaults") {
  RuntimeRecord r;
  r.spec.process.argv = {"true"};
  auto text = encode_runtime(r);
  for (const char* field :
       {",\"no_new_privs\":true", ",\"seccomp\":{\"mode\":\"default\"}", ",\"privileged\":false"}) {
    auto at = text.find(field);
    REQUIRE_MESSAGE(at != std::string::npos, field);
    text.erase(at, std::string(field).size());
  }
  auto old = decode_runtime(text);
  REQUIRE(old);
  CHECK(old->spec.process.no_new_privs);
  CHECK(old->spec.process.seccomp.mode == Mode::kDefault);
  CHECK(!old->spec.privileged);
  CHECK(!old->spec.userns);
}
