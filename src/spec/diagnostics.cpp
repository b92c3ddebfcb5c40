// Sorting and rendering of load errors; see diagnostics.h.
#include "spec/diagnostics.h"

#include <algorithm>
#include <tuple>

namespace stack::spec {

void Diagnostics::error(const SourcePos& pos, std::string message) {
  errors_.push_back(Item{pos, pos.str() + ": " + message});
}

void Diagnostics::error_text(std::string line) {
  // Lower layers (the YAML parser) render their own positions; order them by file only.
  SourcePos pos;
  for (const auto& f : file_order_)
    if (line.rfind(f + ":", 0) == 0 && f.size() > pos.file.size()) pos.file = f;
  errors_.push_back(Item{pos, std::move(line)});
}

void Diagnostics::warn(const SourcePos& pos, std::string message) {
  std::string line = pos.str() + ": " + message;
  if (warned_.insert(line).second) warnings_.push_back(std::move(line));
}

Error Diagnostics::to_error() const {
  auto file_index = [&](const std::string& f) {
    auto it = std::find(file_order_.begin(), file_order_.end(), f);
    return static_cast<size_t>(it - file_order_.begin());
  };
  std::vector<Item> sorted = errors_;
  std::stable_sort(sorted.begin(), sorted.end(), [&](const Item& a, const Item& b) {
    return std::tuple(file_index(a.pos.file), a.pos.line, a.pos.column) <
           std::tuple(file_index(b.pos.file), b.pos.line, b.pos.column);
  });
  std::string message;
  for (const Item& item : sorted) {
    if (!message.empty()) message += "\n";
    message += item.text;
  }
  return Error{message, 0};
}

}  // namespace stack::spec
