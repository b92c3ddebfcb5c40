// A node of the cluster as the store keeps it: the record under /stack/nodes/<name> (JSON,
// under the node's lease) and its labels under /stack/node-labels/<name> (JSON object, no
// lease). Pure: encoding, decoding and label edits; no store, no host.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stack::cluster {

using Labels = std::map<std::string, std::string>;

struct NodeRecord {
  std::string name;
  std::string address;  // the advertised underlay address (IPv4)
  Labels labels;        // a copy of /stack/node-labels/<name> as of the last write
  int cpus = 0;
  std::int64_t memory_bytes = 0;
  std::string engine_version;
  std::string started_at;  // ISO 8601 UTC: when this daemon started
  // Which daemon holds the name: a random id kept in the daemon's --root. The same id may take
  // its own name back at once (a restarted daemon); another is refused while the lease lives.
  std::string daemon_id;
  bool operator==(const NodeRecord&) const = default;
};

[[nodiscard]] std::string encode_node(const NodeRecord& node);
// WHAT names the key in errors.
[[nodiscard]] Result<NodeRecord> decode_node(std::string_view json, std::string_view what);

[[nodiscard]] std::string encode_labels(const Labels& labels);
[[nodiscard]] Result<Labels> decode_labels(std::string_view json, std::string_view what);

// LABELS with ADD set and REMOVE gone (a key in both: added). A key must be 1 to 128
// characters of [A-Za-z0-9._/-] and a value at most 256 bytes without control characters:
// a constraint (node.labels.KEY==VALUE) must be able to name them.
[[nodiscard]] Result<Labels> edit_labels(Labels labels, const Labels& add,
                                         const std::vector<std::string>& remove);

}  // namespace stack::cluster
