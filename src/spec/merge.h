// Merging of several stack files (-f a -f b) with the Compose rules, on parsed trees before
// validation: mappings merge recursively, scalars and most lists are replaced, and a few
// service fields have their own rule (environment by key, volumes by target, depends_on union).
#pragma once

#include "spec/node.h"

namespace stack::spec {

// Folds OVERRIDE into BASE. Both are whole files (top-level mappings).
void merge_files(Node& base, const Node& override_file);

// Folds one service mapping into another with the per-field rules (also what `extends` does).
void merge_service(Node& base, const Node& over);

}  // namespace stack::spec
