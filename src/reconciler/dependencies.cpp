#include "reconciler/dependencies.h"

namespace stack::reconciler {

std::vector<Dependency> dependencies_of(const spec::Service& service) {
  std::vector<Dependency> out;
  for (const auto& d : service.dependencies) {
    Dependency dep{d.service, Dependency::Condition::Started, d.required, d.restart};
    if (d.condition == "service_healthy") dep.condition = Dependency::Condition::Healthy;
    if (d.condition == "service_completed_successfully")
      dep.condition = Dependency::Condition::CompletedSuccessfully;
    out.push_back(std::move(dep));
  }
  return out;
}

}  // namespace stack::reconciler
