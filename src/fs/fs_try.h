// FS_TRY: the error of a Result expression passed on as it is, or its value. Private to src/fs
// (a statement expression, as STACK_TRY_CTX in common/result.h, for errors that need no context).
#pragma once

#include "common/result.h"

// Propagates the error of a Result expression unchanged, or yields its value.
#define FS_TRY(expr)                                                    \
  ({                                                                    \
    auto&& fs_try_r_ = (expr);                                          \
    if (!fs_try_r_) return ::stack::fail(std::move(fs_try_r_).error()); \
    std::move(fs_try_r_).value();                                       \
  })
