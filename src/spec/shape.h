// Shapes: small descriptions of the Compose fields stack keeps generically (the ones the
// engine does not read), used to validate them (types, unknown keys with a suggestion) and to
// turn them into normalised JSON (numbers as numbers, sizes in bytes, durations canonical,
// list-or-dict as a dict). Private to the spec module.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "spec/field.h"
#include "spec/node.h"

namespace stack::spec {

struct Shape {
  enum class Kind {
    any,       // kept as written: scalars typed the YAML way, mappings and lists recursively
    string,    // a scalar, kept as text
    number,    // a number (a numeric string too)
    integer,   // an integer
    boolean,   // true/false
    bytes,     // "512m" -> 536870912
    duration,  // "90s" -> "1m30s"
    scalar,    // string, number or boolean: plain scalars typed, quoted ones strings
    strings,   // a string or a list of strings -> a list
    dict,      // a mapping, or a list of KEY=VALUE -> a mapping of strings (null kept)
    list,      // a list of `item`
    map,       // a mapping with free keys, values of `item`
    object,    // a mapping with the keys of `fields`
    either,    // the first of `alternatives` whose kind (scalar, list, mapping) matches
  };
  // Declared here, defined in shape.cpp where Shape is complete: `fields` holds pairs of
  // Shape, and clang (with libstdc++) cannot instantiate their members while Shape is being
  // defined.
  Shape();
  ~Shape();
  Shape(const Shape&);
  Shape(Shape&&) noexcept;
  Shape& operator=(const Shape&);
  Shape& operator=(Shape&&) noexcept;

  Kind kind = Kind::any;
  std::vector<std::string> values;  // string: the allowed values (empty: any)
  std::shared_ptr<Shape> item;
  std::vector<std::pair<std::string, Shape>> fields;
  std::vector<std::string> required;
  std::vector<Shape> alternatives;
};

namespace shapes {
Shape any();
Shape str(std::vector<std::string> allowed = {});
Shape num();
Shape integer();
Shape boolean();
Shape bytes();
Shape duration();
Shape scalar();
Shape strings();
Shape dict();
Shape list(Shape item);
Shape map(Shape value);
Shape object(std::vector<std::pair<std::string, Shape>> fields,
             std::vector<std::string> required = {});
Shape either(std::vector<Shape> alternatives);
}  // namespace shapes

// Validates N against SHAPE, reporting through CTX, and returns its normalised JSON (null for
// a null value or a value in error).
[[nodiscard]] nlohmann::json shape_json(const FieldCtx& ctx, const Node& n, const Shape& shape);

// The plain YAML reading of a scalar: quoted -> string; true/false, integers and decimals ->
// boolean and numbers; null/~ -> null; anything else -> string.
[[nodiscard]] nlohmann::json scalar_json(const Node& n);

// The shapes of the service keys that have no typed field, and of other generic places.
[[nodiscard]] const std::map<std::string, Shape>& generic_service_fields();
[[nodiscard]] const Shape& deploy_shape();
[[nodiscard]] const Shape& build_shape();
[[nodiscard]] const Shape& model_shape();

}  // namespace stack::spec
