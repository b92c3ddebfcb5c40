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

const Network* Stack::find_network(std::string_view key) const {
  for (const auto& n : networks)
    if (n.key == key) return &n;
  return nullptr;
}

const Volume* Stack::find_volume(std::string_view key) const {
  for (const auto& v : volumes)
    if (v.key == key) return &v;
  return nullptr;
}

}  // namespace stack::spec
