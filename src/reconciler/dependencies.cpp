#include "reconciler/dependencies.h"

namespace stack::reconciler {

std::vector<Dependency> dependencies_of(const spec::Service& service) {
  std::vector<Dependency> out;
  for (const auto& name : service.depends_on) out.push_back({name});
  return out;
}

}  // namespace stack::reconciler
