// Normalisation of the top level of a stack file other than services: networks, volumes,
// secrets, configs and models; and the check of top-level keys. Private to the spec module.
#pragma once

#include <string>

#include "spec/field.h"
#include "spec/node.h"
#include "spec/stack.h"

namespace stack::spec {

// Unknown top-level keys (with a suggestion) and non-mapping sections.
void check_top_level(const FieldCtx& ctx, const Node& root);

// Fills OUT.networks, volumes, secrets, configs and extra from ROOT. OUT.name is set already
// (default names are "<project>_<key>").
void normalize_top_level(const FieldCtx& ctx, const Node& root, Stack& out);

// Letters, digits, '.', '_' and '-': names of services, networks, volumes, secrets, configs.
[[nodiscard]] bool valid_object_name(const std::string& name);

}  // namespace stack::spec
