// /proc/PID/net/dev, parsed (net_counters.h). The header's two lines name the columns; each
// interface line is "  name: rx_bytes rx_packets ... (8 receive columns) tx_bytes ...".
#include "engine/net_counters.h"

#include <charconv>
#include <string>
#include <vector>

#include "common/files.h"

namespace stack::engine {

Result<NetCounters> parse_net_dev(std::string_view text) {
  NetCounters c;
  size_t line_no = 0;
  while (!text.empty()) {
    auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    if (++line_no <= 2 || line.empty()) continue;  // the column titles
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return fail("net/dev: no ':' in line " + std::to_string(line_no));
    std::string_view name = line.substr(0, colon);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    std::vector<uint64_t> cols;
    std::string_view rest = line.substr(colon + 1);
    for (size_t i = 0; i < rest.size();) {
      while (i < rest.size() && rest[i] == ' ') i++;
      size_t j = i;
      while (j < rest.size() && rest[j] != ' ') j++;
      if (j > i) {
        uint64_t v = 0;
        auto [p, ec] = std::from_chars(rest.data() + i, rest.data() + j, v);
        if (ec != std::errc{} || p != rest.data() + j)
          return fail("net/dev: bad number in line " + std::to_string(line_no));
        cols.push_back(v);
      }
      i = j;
    }
    if (cols.size() < 16) return fail("net/dev: short line " + std::to_string(line_no));
    if (name == "lo") continue;
    c.rx_bytes += cols[0];
    c.tx_bytes += cols[8];
  }
  return c;
}

Result<NetCounters> net_counters(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/net/dev";
  auto text = read_file(path);
  if (!text) return fail(text.error().wrap("network counters"));
  return parse_net_dev(*text);
}

}  // namespace stack::engine
