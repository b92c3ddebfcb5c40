// Cross-reference checks of a normalised stack: depends_on (known services, no cycle),
// networks, volumes, secrets and configs that must exist. Also adds the implicit `default`
// network. Private to the spec module.
#pragma once

#include <vector>

#include "spec/field.h"
#include "spec/stack.h"

namespace stack::spec {

// OUT holds the enabled services; DISABLED those the active profiles leave out (a required
// dependency on one is an error, an optional one is dropped).
void check_references(const FieldCtx& ctx, Stack& out, const std::vector<Service>& disabled);

// A host port published by two services: a file compose loads, but one `up` cannot run. Checked
// by check_supported(), before the host is touched, naming both services.
void check_host_ports(Diagnostics& diag, const Stack& stack);

}  // namespace stack::spec
