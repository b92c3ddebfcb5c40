// The engine <-> stack-init message format: the engine's encoder against the init's own
// decoder (init/config.c, linked here), so that no byte of a user's value can change what a
// message means, and malformed messages are refused. No root needed.
#include <doctest/doctest.h>
#include <unistd.h>

#include <string>

#include "engine/init_message.h"
#include "engine/wire.h"

extern "C" {
#include "engine/init/init.h"
}

using namespace stack;
using namespace stack::engine;

namespace {

// The init's read_config of MESSAGE, through a pipe as the init reads its socket.
struct Decoded {
  int rc = -1;
  std::string err;
  config cfg{};
};

Decoded init_decode(const std::string& message) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  REQUIRE(::write(fds[1], message.data(), message.size()) == static_cast<ssize_t>(message.size()));
  ::close(fds[1]);
  Decoded d;
  char err[4096] = "";
  d.rc = read_config(fds[0], &d.cfg, err, sizeof err);
  d.err = err;
  ::close(fds[0]);
  return d;
}

std::string every_byte() {
  std::string s;
  for (int c = 0; c < 256; c++) s.push_back(static_cast<char>(c));
  return s;
}

}  // namespace

TEST_CASE("wire: values with every byte 0..255 round-trip, NUL included") {
  std::string all = every_byte() + every_byte();
  wire::Writer w;
  w.bytes(W_ARG, "sh").bytes(W_SECCOMP, all).u32(W_UID, 0xdeadbeef).u64(W_CAPS, 0xa80425fbull << 8);
  w.nested(W_MOUNT, wire::Writer().bytes(W_MOUNT_SRC, all).u32(W_MOUNT_FLAGS, 1));
  auto msg = w.message();
  REQUIRE(msg.size() == 4 + w.body().size());
  auto records = wire::decode(w.body());
  REQUIRE(records);
  REQUIRE(records->size() == 5);
  CHECK((*records)[1].tag == W_SECCOMP);
  CHECK((*records)[1].value == all);
  CHECK(wire::as_u32((*records)[2]).value() == 0xdeadbeef);
  CHECK(wire::as_u64((*records)[3]).value() == (0xa80425fbull << 8));
  auto inner = wire::decode((*records)[4].value);
  REQUIRE(inner);
  CHECK((*inner)[0].value == all);
  CHECK(!wire::as_u32((*records)[3]));  // 8 bytes are not a u32

  // The init's decoder: the program arrives byte for byte (512 bytes: 64 instructions); a path
  // is a C string for the kernel, so the mount's NUL is refused, naming what holds it.
  auto refused = init_decode(msg);
  CHECK(refused.rc == -1);
  CHECK(refused.err == "a mount source holds a NUL byte");
  wire::Writer program;
  program.bytes(W_ARG, "sh")
      .bytes(W_SECCOMP, all)
      .u32(W_UID, 0xdeadbeef)
      .u64(W_CAPS, 0xa80425fbull << 8);
  auto d = init_decode(program.message());
  REQUIRE_MESSAGE(d.rc == 0, d.err);
  REQUIRE(d.cfg.seccomp_len == all.size());
  CHECK(std::string(reinterpret_cast<const char*>(d.cfg.seccomp), d.cfg.seccomp_len) == all);
  CHECK(d.cfg.uid == 0xdeadbeef);
  CHECK(d.cfg.caps == (0xa80425fbull << 8));
}

TEST_CASE("wire: every byte but NUL reaches the init in arguments, environment and paths") {
  std::string text = every_byte().substr(1);
  wire::Writer w;
  w.bytes(W_ARG, text).bytes(W_ENV, "X=" + text).bytes(W_CWD, text);
  w.nested(W_MOUNT, wire::Writer().bytes(W_MOUNT_SRC, text).bytes(W_MOUNT_DST, "/" + text));
  auto d = init_decode(w.message());
  REQUIRE_MESSAGE(d.rc == 0, d.err);
  REQUIRE(d.cfg.args.n == 1);
  CHECK(std::string(d.cfg.args.v[0]) == text);
  CHECK(std::string(d.cfg.env.v[0]) == "X=" + text);
  CHECK(std::string(d.cfg.cwd) == text);
  REQUIRE(d.cfg.nbinds == 1);
  CHECK(std::string(d.cfg.binds[0].src) == text);
  CHECK(std::string(d.cfg.binds[0].dst) == "/" + text);
  CHECK(d.cfg.binds[0].ro == 0);
}

TEST_CASE("wire: the old injection is a variable with NULs, refused by name, never a mount") {
  wire::Writer w;
  w.bytes(W_ARG, "sleep").bytes(W_ENV, std::string("X=a\0bind\0/tmp/x\0bind_dst\0/injected", 33));
  auto d = init_decode(w.message());
  CHECK(d.rc == -1);
  CHECK(d.err == "environment variable X holds a NUL byte");
  CHECK(d.cfg.nbinds == 0);
}

TEST_CASE("wire: unknown tags, short records and wrong sizes are errors") {
  auto framed = [](const std::string& body) {
    std::string m(4, '\0');
    for (int i = 0; i < 4; i++) m[i] = static_cast<char>((body.size() >> (8 * i)) & 0xff);
    return m + body;
  };
  wire::Writer ok;
  ok.bytes(W_ARG, "true");

  wire::Writer unknown = ok;
  unknown.bytes(999, "x");
  auto d = init_decode(unknown.message());
  CHECK(d.rc == -1);
  CHECK(d.err == "config: unknown record 999");

  // A record whose length runs past the message.
  std::string body = ok.body();
  body += std::string(
      "\x20\x00\xff\x00\x00\x00"
      "abc",
      9);
  d = init_decode(framed(body));
  CHECK(d.rc == -1);
  CHECK(d.err == "config: a record runs past the end of the message");
  CHECK(!wire::decode(body));

  // A header cut short, and a length near 2^32 that must not wrap the bounds check.
  d = init_decode(framed(ok.body() + std::string("\x20\x00\x01", 3)));
  CHECK(d.rc == -1);
  d = init_decode(framed(ok.body() + std::string("\x20\x00\xff\xff\xff\xff", 6)));
  CHECK(d.rc == -1);

  wire::Writer badnum = ok;
  badnum.bytes(W_UID, "12");  // a number is 4 bytes
  d = init_decode(badnum.message());
  CHECK(d.rc == -1);
  CHECK(d.err == "config: record 35 must be 4 bytes, got 2");

  wire::Writer nested = ok;
  nested.nested(W_MOUNT, wire::Writer().bytes(W_MOUNT_SRC, "/a").bytes(W_ARG, "x"));
  d = init_decode(nested.message());
  CHECK(d.rc == -1);
  CHECK(d.err == "config: unknown record 32 in a mount");

  d = init_decode(framed(""));  // no command
  CHECK(d.rc == -1);
  CHECK(d.err == "config: no command to run");
  d = init_decode(std::string("\xff\xff\xff\x7f", 4));  // 2 GiB announced
  CHECK(d.rc == -1);
  CHECK(d.err.find("too large") != std::string::npos);
}

TEST_CASE("wire: an exec with a terminal asks the init for a controlling terminal") {
  wire::Writer w;
  w.bytes(W_ARG, "sh");
  auto d = init_decode(w.message());
  REQUIRE(d.rc == 0);
  CHECK(d.cfg.tty == 0);
  w.u32(W_TTY, 1);
  d = init_decode(w.message());
  REQUIRE(d.rc == 0);
  CHECK(d.cfg.tty == 1);
  wire::Writer bad;
  bad.bytes(W_ARG, "sh").bytes(W_TTY, "x");
  d = init_decode(bad.message());
  CHECK(d.rc == -1);
}

TEST_CASE("wire: an OCI bundle's process settings reach the init as the engine wrote them") {
  ProcessSpec p;
  p.argv = {"sh"};
  p.uid = 1000;
  p.umask = 027;
  p.io_priority = 2u << 13 | 6;
  p.scheduler = model::Scheduler{6, -2, 0, 1, 1000000, 10000000, 20000000};
  p.memory_policy = model::MemoryPolicy{2u | 1u << 15, {1, 1u << 3}};
  p.user_permitted = 1u << 10;
  p.user_effective = 1u << 10;
  p.ambient = 1u << 10;
  wire::Writer w;
  add_process(w, p, Filter{});
  auto d = init_decode(w.message());
  REQUIRE_MESSAGE(d.rc == 0, d.err);
  CHECK(d.cfg.has_umask == 1);
  CHECK(d.cfg.umask_bits == 027);
  CHECK(d.cfg.ioprio == (2u << 13 | 6));
  REQUIRE(d.cfg.has_sched == 1);
  CHECK(d.cfg.sched.policy == 6);
  CHECK(d.cfg.sched.nice == -2);
  CHECK(d.cfg.sched.flags == 1);
  CHECK(d.cfg.sched.runtime == 1000000);
  CHECK(d.cfg.sched.deadline == 10000000);
  CHECK(d.cfg.sched.period == 20000000);
  REQUIRE(d.cfg.has_mempolicy == 1);
  CHECK(d.cfg.mempolicy_mode == (2u | 1u << 15));
  CHECK(d.cfg.mempolicy_words == 2);
  CHECK(d.cfg.mempolicy_nodes[1] == 8);
  CHECK(d.cfg.caps_permitted == 1u << 10);
  CHECK(d.cfg.caps_effective == 1u << 10);
  CHECK(d.cfg.caps_ambient == 1u << 10);
  // Unset: nothing sent, the init keeps its own.
  wire::Writer plain;
  ProcessSpec bare;
  bare.argv = {"sh"};
  add_process(plain, bare, Filter{});
  d = init_decode(plain.message());
  REQUIRE(d.rc == 0);
  CHECK(d.cfg.has_umask + d.cfg.has_ioprio + d.cfg.has_sched + d.cfg.has_mempolicy == 0);
  // A time namespace: the path joined, or the offsets of a new one.
  wire::Writer t;
  t.bytes(W_ARG, "sh").nested(W_TIMENS, wire::Writer().bytes(WT_OFFSETS, "boottime 5 0\n"));
  d = init_decode(t.message());
  REQUIRE(d.rc == 0);
  CHECK(d.cfg.timens == 1);
  CHECK(std::string(d.cfg.timens_offsets) == "boottime 5 0\n");
  wire::Writer bad;
  bad.bytes(W_ARG, "sh").nested(W_MEMPOLICY, wire::Writer().bytes(WM_NODES, "12345678"));
  CHECK(init_decode(bad.message()).rc == -1);  // no mode
}
