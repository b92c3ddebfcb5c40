// A YAML document as a plain tree that remembers where every value came from: what the
// loader interpolates, merges across files and validates. Owns the YAML parser adapter
// (libyaml); no libyaml type leaves node.cpp.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "spec/stack.h"

namespace stack::spec {

struct Entry;

struct Node {
  enum class Kind { null_value, scalar, sequence, mapping };
  Kind kind = Kind::null_value;
  std::string value;           // scalar text as written (numbers and booleans too)
  bool quoted = false;         // a quoted scalar: always a string, never a number or boolean
  std::vector<Node> items;     // sequence
  std::vector<Entry> entries;  // mapping, in file order
  SourcePos pos;

  [[nodiscard]] bool is_null() const { return kind == Kind::null_value; }
  [[nodiscard]] bool is_scalar() const { return kind == Kind::scalar; }
  [[nodiscard]] bool is_sequence() const { return kind == Kind::sequence; }
  [[nodiscard]] bool is_mapping() const { return kind == Kind::mapping; }
  [[nodiscard]] const Node* find(std::string_view key) const;
  [[nodiscard]] Node* find(std::string_view key);
  // "a string", "a list", "a mapping", "null", for "expected X, got Y" messages.
  [[nodiscard]] std::string describe() const;
};

struct Entry {
  std::string key;
  SourcePos key_pos;
  Node value;
};

// Lookups by key in a mapping that may be large (Node::find scans): an index built once, kept
// up to date by append(). Merging two files of 100,000 services with a scan per key was
// quadratic. The mapping must not change other than through this while the index is used.
class KeyIndex {
 public:
  explicit KeyIndex(Node& mapping);
  [[nodiscard]] Node* find(const std::string& key);
  // Appends E to the mapping (its key must not be there yet).
  void append(Entry e);

 private:
  Node& mapping_;
  std::unordered_map<std::string, size_t> position_;
};

// Bounds of a YAML document (README, "Limits"). Aliases are expanded into copies, so a few
// lines of nested anchors (the "billion laughs") would make 10^9 nodes: as yaml.v3 and
// compose-go do, the nodes aliases create are counted against the document's own size.
inline constexpr size_t kMaxAliasNodesFloor = 100'000;  // always allowed
inline constexpr size_t kMaxAliasNodesRatio = 10;       // x the nodes written in the file
inline constexpr size_t kMaxYamlDepth = 200;            // nested mappings and sequences

// Parses YAML text; DISPLAY_NAME is the file name used in positions. Aliases are expanded
// and merge keys (`<<`) applied here. A second YAML document in the text is an error, and so
// is a document over the bounds above. STOP, when given, is asked every few thousand events
// and ends the parse with its message (the daemon's time budget).
using StopCheck = std::function<std::optional<std::string>()>;
[[nodiscard]] Result<Node> parse_yaml(const std::string& text, const std::string& display_name,
                                      const StopCheck& stop = {});

}  // namespace stack::spec
