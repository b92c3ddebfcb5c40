// Cross-reference checks of a normalised stack: depends_on, networks, volumes, secrets and
// configs that must exist, published ports used twice. Also adds the implicit `default`
// network. Private to the spec module.
#pragma once

#include <vector>

#include "spec/field.h"
#include "spec/stack.h"

namespace stack::spec {

// OUT holds the enabled services; DISABLED those the active profiles leave out (a required
// dependency on one is an error, an optional one is dropped).
void check_references(const FieldCtx& ctx, Stack& out, const std::vector<Service>& disabled);

}  // namespace stack::spec
