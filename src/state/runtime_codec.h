// A runtime record (model/runtime_record.h) in the JSON form the store keeps it in. Internal to
// the state store (and its tests): callers get the decoded record from ContainerRecord.
#pragma once

#include <string>

#include "common/result.h"
#include "model/runtime_record.h"

namespace stack::state {

std::string encode_runtime(const model::RuntimeRecord& r);
[[nodiscard]] Result<model::RuntimeRecord> decode_runtime(const std::string& text);

}  // namespace stack::state
