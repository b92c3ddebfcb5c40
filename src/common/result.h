// One error type for the whole project: a message that each layer prefixes with its context
// ("start demo-web-1: mount overlay: Operation not permitted") and the errno it came from.
// Fallible functions return Result<T>; lower layers add context instead of logging.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace stack {

struct Error {
  std::string message;
  int sys_errno = 0;  // 0 when the error did not come from a syscall

  // "context: message"
  [[nodiscard]] Error wrap(std::string_view context) const;
  // The current errno, described: "open /x: No such file or directory".
  [[nodiscard]] static Error from_errno(std::string_view context, int err = errno);
};

template <class T = void>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(std::string message, int sys_errno = 0) {
  return tl::unexpected(Error{std::move(message), sys_errno});
}
inline tl::unexpected<Error> fail(Error e) { return tl::unexpected(std::move(e)); }
inline tl::unexpected<Error> fail_errno(std::string_view context, int err = errno) {
  return tl::unexpected(Error::from_errno(context, err));
}

// Propagates the error of a Result expression with added context, or yields its value.
#define STACK_TRY_CTX(expr, ctx)                         \
  ({                                                     \
    auto&& stack_try_r_ = (expr);                        \
    if (!stack_try_r_) return ::stack::fail(stack_try_r_.error().wrap(ctx)); \
    std::move(stack_try_r_).value();                     \
  })

}  // namespace stack
