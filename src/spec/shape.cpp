// See shape.h: the generic validator and normaliser.
#include "spec/shape.h"

#include <algorithm>
#include <cstdlib>

#include "spec/loader.h"
#include "spec/text.h"

namespace stack::spec {

Shape::Shape() = default;
Shape::~Shape() = default;
Shape::Shape(const Shape&) = default;
Shape::Shape(Shape&&) noexcept = default;
Shape& Shape::operator=(const Shape&) = default;
Shape& Shape::operator=(Shape&&) noexcept = default;


namespace shapes {
namespace {
Shape of(Shape::Kind kind) {
  Shape s;
  s.kind = kind;
  return s;
}
}  // namespace
Shape any() { return of(Shape::Kind::any); }
Shape str(std::vector<std::string> allowed) {
  Shape s = of(Shape::Kind::string);
  s.values = std::move(allowed);
  return s;
}
Shape num() { return of(Shape::Kind::number); }
Shape integer() { return of(Shape::Kind::integer); }
Shape boolean() { return of(Shape::Kind::boolean); }
Shape bytes() { return of(Shape::Kind::bytes); }
Shape duration() { return of(Shape::Kind::duration); }
Shape scalar() { return of(Shape::Kind::scalar); }
Shape strings() { return of(Shape::Kind::strings); }
Shape dict() { return of(Shape::Kind::dict); }
Shape list(Shape item) {
  Shape s = of(Shape::Kind::list);
  s.item = std::make_shared<Shape>(std::move(item));
  return s;
}
Shape map(Shape value) {
  Shape s = of(Shape::Kind::map);
  s.item = std::make_shared<Shape>(std::move(value));
  return s;
}
Shape object(std::vector<std::pair<std::string, Shape>> fields, std::vector<std::string> required) {
  Shape s = of(Shape::Kind::object);
  s.fields = std::move(fields);
  s.required = std::move(required);
  return s;
}
Shape either(std::vector<Shape> alternatives) {
  Shape s = of(Shape::Kind::either);
  s.alternatives = std::move(alternatives);
  return s;
}
}  // namespace shapes

namespace {

using Kind = Shape::Kind;
using nlohmann::json;

bool accepts(const Shape& s, const Node& n) {
  switch (s.kind) {
    case Kind::any:
      return true;
    case Kind::strings:
      return n.is_scalar() || n.is_sequence();
    case Kind::dict:
      return n.is_mapping() || n.is_sequence();
    case Kind::list:
      return n.is_sequence();
    case Kind::map:
    case Kind::object:
      return n.is_mapping();
    case Kind::either:
      return std::any_of(s.alternatives.begin(), s.alternatives.end(),
                         [&](const Shape& a) { return accepts(a, n); });
    default:
      return n.is_scalar();
  }
}

std::string expectation(const Shape& s) {
  switch (s.kind) {
    case Kind::string:
      if (s.values.empty()) return "a string";
      {
        std::string out;
        for (size_t i = 0; i < s.values.size(); ++i)
          out += (i == 0 ? "" : i + 1 == s.values.size() ? " or " : ", ") + s.values[i];
        return out;
      }
    case Kind::number:
      return "a number";
    case Kind::integer:
      return "an integer";
    case Kind::boolean:
      return "true or false";
    case Kind::bytes:
      return "a byte size like 512m";
    case Kind::duration:
      return "a duration like 10s or 1m30s";
    case Kind::scalar:
      return "a string, number or boolean";
    case Kind::strings:
      return "a string or a list of strings";
    case Kind::dict:
      return "a mapping or a list of KEY=VALUE";
    case Kind::list:
      return "a list";
    case Kind::map:
    case Kind::object:
      return "a mapping";
    case Kind::either: {
      std::string out;
      for (size_t i = 0; i < s.alternatives.size(); ++i)
        out += (i == 0 ? "" : " or ") + expectation(s.alternatives[i]);
      return out;
    }
    default:
      return "a value";
  }
}

json object_json(const FieldCtx& ctx, const Node& n, const Shape& s) {
  std::vector<std::string> known;
  for (const auto& [key, _] : s.fields) known.push_back(key);
  ctx.check_keys(n, known, {});
  json out = json::object();
  for (const auto& [key, field] : s.fields) {
    const Node* v = n.find(key);
    if (v == nullptr) continue;
    json j = shape_json(ctx.child(key), *v, field);
    if (!j.is_null()) out[key] = std::move(j);
  }
  for (const std::string& key : s.required)
    if (n.find(key) == nullptr) ctx.error(n.pos, key + " is required");
  return out;
}

json dict_json(const FieldCtx& ctx, const Node& n) {
  json out = json::object();
  if (n.is_mapping()) {
    for (const Entry& e : n.entries) {
      if (e.value.is_null())
        out[e.key] = nullptr;
      else if (e.value.is_scalar())
        out[e.key] = e.value.value;
      else
        ctx.child(e.key).type_error(e.value, "a string");
    }
    return out;
  }
  for (const Node& item : n.items) {
    auto text = ctx.string(item);
    if (!text) continue;
    size_t eq = text->find('=');
    if (eq == std::string::npos)
      out[*text] = nullptr;
    else
      out[text->substr(0, eq)] = text->substr(eq + 1);
  }
  return out;
}

}  // namespace

json scalar_json(const Node& n) {
  if (n.is_null()) return nullptr;
  if (!n.is_scalar()) return nullptr;
  const std::string& v = n.value;
  if (n.quoted || v.empty()) return v;
  if (v == "true" || v == "True" || v == "TRUE") return true;
  if (v == "false" || v == "False" || v == "FALSE") return false;
  if (v == "null" || v == "~" || v == "Null" || v == "NULL") return nullptr;
  char* end = nullptr;
  errno = 0;
  long long i = std::strtoll(v.c_str(), &end, 10);
  if (errno == 0 && *end == '\0' && (std::isdigit(static_cast<unsigned char>(v[0])) ||
                                     ((v[0] == '-' || v[0] == '+') && v.size() > 1)))
    return i;
  double d = std::strtod(v.c_str(), &end);
  if (*end == '\0' && v.find_first_of("0123456789") != std::string::npos &&
      v.find_first_of("xXnNiI") == std::string::npos)
    return d;
  return v;
}

json shape_json(const FieldCtx& ctx, const Node& n, const Shape& s) {
  if (n.is_null()) return nullptr;
  if (!accepts(s, n)) {
    ctx.type_error(n, expectation(s));
    return nullptr;
  }
  switch (s.kind) {
    case Kind::any: {
      if (n.is_scalar()) return scalar_json(n);
      json out = n.is_sequence() ? json::array() : json::object();
      for (const Node& item : n.items) out.push_back(shape_json(ctx, item, s));
      for (const Entry& e : n.entries) out[e.key] = shape_json(ctx.child(e.key), e.value, s);
      return out;
    }
    case Kind::string:
      if (!s.values.empty() &&
          std::find(s.values.begin(), s.values.end(), n.value) == s.values.end()) {
        ctx.type_error(n, expectation(s));
        return nullptr;
      }
      return n.value;
    case Kind::number: {
      if (auto i = scalar_json(n); i.is_number()) return i;
      char* end = nullptr;
      double d = std::strtod(n.value.c_str(), &end);
      if (!n.value.empty() && *end == '\0') return d;
      ctx.type_error(n, expectation(s));
      return nullptr;
    }
    case Kind::integer:
      if (auto i = ctx.integer(n, INT64_MIN)) return *i;
      return nullptr;
    case Kind::boolean:
      if (auto b = ctx.boolean(n)) return *b;
      return nullptr;
    case Kind::bytes:
      if (n.value == "-1") return -1;
      if (auto b = ctx.bytes(n)) return *b;
      return nullptr;
    case Kind::duration:
      if (auto d = ctx.duration(n)) return format_duration(*d);
      return nullptr;
    case Kind::scalar:
      return scalar_json(n);
    case Kind::strings: {
      if (n.is_scalar()) return json::array({n.value});
      json out = json::array();
      for (const Node& item : n.items)
        if (auto v = ctx.string(item)) out.push_back(*v);
      return out;
    }
    case Kind::dict:
      return dict_json(ctx, n);
    case Kind::list: {
      json out = json::array();
      for (const Node& item : n.items) {
        json j = shape_json(ctx, item, *s.item);
        if (!j.is_null()) out.push_back(std::move(j));
      }
      return out;
    }
    case Kind::map: {
      json out = json::object();
      for (const Entry& e : n.entries) out[e.key] = shape_json(ctx.child(e.key), e.value, *s.item);
      return out;
    }
    case Kind::object:
      return object_json(ctx, n, s);
    case Kind::either:
      for (const Shape& a : s.alternatives)
        if (accepts(a, n)) return shape_json(ctx, n, a);
      return nullptr;
  }
  return nullptr;
}

}  // namespace stack::spec
