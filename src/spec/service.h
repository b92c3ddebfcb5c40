// Normalisation of one `services.NAME` mapping into spec::Service: a table of supported keys,
// each with its normaliser, and the Compose keys that are not supported yet.
#pragma once

#include <string>

#include "spec/field.h"
#include "spec/node.h"
#include "spec/stack.h"

namespace stack::spec {

// CTX.path is "services.NAME". Problems go to CTX.diag; the result is partial then.
[[nodiscard]] Service normalize_service(const FieldCtx& ctx, const Entry& entry);

// "busybox" -> "busybox:latest"; references with a tag or digest are kept.
[[nodiscard]] std::string default_image_tag(const std::string& image);

}  // namespace stack::spec
