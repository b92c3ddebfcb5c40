#include "common/result.h"

#include <cstring>

namespace stack {

Error Error::wrap(std::string_view context) const {
  std::string m;
  m.reserve(context.size() + 2 + message.size());
  m.append(context).append(": ").append(message);
  return Error{std::move(m), sys_errno};
}

Error Error::from_errno(std::string_view context, int err) {
  std::string m(context);
  m.append(": ").append(std::strerror(err));
  return Error{std::move(m), err};
}

}  // namespace stack
