// A YAML document as a plain tree that remembers where every value came from: what the
// loader interpolates, merges across files and validates. Owns the YAML parser adapter
// (libyaml); no libyaml type leaves node.cpp.
#pragma once

#include <string>
#include <string_view>
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

// Parses YAML text; DISPLAY_NAME is the file name used in positions. Aliases are expanded
// and merge keys (`<<`) applied here. A second YAML document in the text is an error.
[[nodiscard]] Result<Node> parse_yaml(const std::string& text, const std::string& display_name);

}  // namespace stack::spec
