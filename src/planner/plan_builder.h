// Building a plan's DAG: nodes are appended after everything they follow, so the node list is
// always in an order that respects `after`. Private to the planner.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "planner/plan.h"

namespace stack::planner {

class PlanBuilder {
 public:
  // Appends STEP after the nodes AFTER (indexes of earlier nodes; duplicates dropped).
  size_t add(Step step, std::string reason, std::string service, std::vector<size_t> after) {
    std::sort(after.begin(), after.end());
    after.erase(std::unique(after.begin(), after.end()), after.end());
    plan.nodes.push_back({std::move(step), std::move(reason), std::move(service), std::move(after)});
    return plan.nodes.size() - 1;
  }
  Plan plan;
};

}  // namespace stack::planner
