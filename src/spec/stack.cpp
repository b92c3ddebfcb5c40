#include "spec/stack.h"

namespace stack::spec {

std::string SourcePos::str() const {
  if (line == 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

const Service* Stack::find(std::string_view service) const {
  for (const auto& s : services)
    if (s.name == service) return &s;
  return nullptr;
}

}  // namespace stack::spec
