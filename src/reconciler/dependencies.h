// depends_on as the reconciler uses it: which services a service waits for, on what
// condition, whether it may start without them, and whether it follows their restarts.
#pragma once

#include <string>
#include <vector>

#include "spec/stack.h"

namespace stack::reconciler {

struct Dependency {
  enum class Condition { Started, Healthy, CompletedSuccessfully };
  std::string service;
  Condition condition = Condition::Started;
  bool required = true;
  bool restart = false;  // restart this service after the dependency is restarted
};

std::vector<Dependency> dependencies_of(const spec::Service& service);

}  // namespace stack::reconciler
