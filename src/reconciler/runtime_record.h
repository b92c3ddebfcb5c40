// A runtime record (model/runtime_record.h) as JSON, the form ContainerRecord::runtime_json
// keeps it in. Private to the reconciler.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "common/result.h"
#include "model/runtime_record.h"

namespace stack::reconciler {

using model::NetworkJoin;
using model::PublishedPort;
using model::RuntimeRecord;

std::string to_json(const RuntimeRecord& r);
[[nodiscard]] Result<RuntimeRecord> runtime_from_json(const std::string& text);

}  // namespace stack::reconciler
