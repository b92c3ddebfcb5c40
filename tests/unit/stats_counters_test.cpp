// The counters `stack stats` reads: /proc/PID/net/dev and the block I/O files of both cgroup
// versions, parsed from the kernel's own formats.
#include <doctest/doctest.h>

#include "engine/cgroup.h"
#include "engine/net_counters.h"

using namespace stack::engine;

TEST_CASE("net/dev: the byte columns of every interface but lo are summed") {
  const char* text =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
      "drop fifo colls carrier compressed\n"
      "    lo:    1000      10    0    0    0     0          0         0     1000      10    0 "
      "   0    0     0       0          0\n"
      "  eth0:    2048       5    0    0    0     0          0         0      512       3    0 "
      "   0    0     0       0          0\n"
      "  eth1:       2       1    0    0    0     0          0         0        8       1    0 "
      "   0    0     0       0          0\n";
  auto c = parse_net_dev(text);
  REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
  CHECK(c->rx_bytes == 2050);
  CHECK(c->tx_bytes == 520);
  auto bad = parse_net_dev("a\nb\n  eth0: 1 2 x\n");
  REQUIRE(!bad);
  CHECK(bad.error().message.find("line 3") != std::string::npos);
}

TEST_CASE("block I/O: v1 Read and Write lines and v2 rbytes and wbytes are totalled") {
  uint64_t r = 1, w = 1;
  parse_block_io("8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:0 Total 4608\n"
                 "8:16 Read 4\n8:16 Write 0\nTotal 4612\n",
                 r, w);
  CHECK(r == 4100);
  CHECK(w == 512);
  parse_block_io("8:0 rbytes=100 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2\n",
                 r, w);
  CHECK(r == 101);
  CHECK(w == 22);
  parse_block_io("", r, w);
  CHECK(r == 0);
  CHECK(w == 0);
}
