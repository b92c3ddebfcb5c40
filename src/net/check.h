// Private to src/net: propagate a failed Result<void> with context (STACK_TRY_CTX needs a
// value to yield).
#pragma once

#include "common/result.h"

#define NET_CHECK(expr, ctx)                                \
  do {                                                      \
    if (auto net_check_r_ = (expr); !net_check_r_)          \
      return ::stack::fail(net_check_r_.error().wrap(ctx)); \
  } while (0)
