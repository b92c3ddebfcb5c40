// Collects every problem found while loading so the user sees all of them at once, sorted by
// file (in load order), line and column. Also carries warnings (unset variables).
#pragma once

#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/result.h"
#include "spec/stack.h"

namespace stack::spec {

class Diagnostics {
 public:
  explicit Diagnostics(std::vector<std::string> file_order = {})
      : file_order_(std::move(file_order)) {}

  // A file read after construction (included, extended): its errors sort after the others.
  void add_file(const std::string& file) { file_order_.push_back(file); }
  void error(const SourcePos& pos, std::string message);
  // An error whose message already starts with "file:line:col: " (from a lower layer).
  void error_text(std::string line);
  void warn(const SourcePos& pos, std::string message);

  [[nodiscard]] bool has_errors() const { return !errors_.empty(); }
  [[nodiscard]] const std::vector<std::string>& files() const { return file_order_; }
  [[nodiscard]] const std::vector<std::string>& warnings() const { return warnings_; }
  // One Error holding every problem, one per line, sorted by position.
  [[nodiscard]] Error to_error() const;

 private:
  struct Item {
    SourcePos pos;
    std::string text;
  };
  std::vector<std::string> file_order_;
  std::vector<Item> errors_;
  std::vector<std::string> warnings_;
  std::unordered_set<std::string> warned_;  // warnings_, for de-duplication in linear time
};

}  // namespace stack::spec
