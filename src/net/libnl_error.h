// libnl's error codes as Error: shared by the two files that speak libnl (libnl_netlink.cpp,
// libnl_sublinks.cpp); internal to src/net, never included outside it.
#pragma once

#include <netlink/errno.h>

#include <cerrno>
#include <string>
#include <string_view>

#include "common/result.h"

namespace stack::net {

// libnl turns the kernel's errno into its own codes; turn the common ones back.
inline int nl_to_errno(int nlerr) {
  switch (nlerr < 0 ? -nlerr : nlerr) {
    case NLE_EXIST:
      return EEXIST;
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV:
      return ENODEV;
    case NLE_PERM:
      return EPERM;
    case NLE_BUSY:
      return EBUSY;
    case NLE_INVAL:
      return EINVAL;
    case NLE_OPNOTSUPP:
      return EOPNOTSUPP;
    case NLE_NOMEM:
      return ENOMEM;
    case NLE_NOADDR:
      return EADDRNOTAVAIL;
    default:
      return EIO;
  }
}

inline Error nl_error(std::string_view context, int nlerr) {
  return Error{std::string(context) + ": " + nl_geterror(nlerr), nl_to_errno(nlerr)};
}

}  // namespace stack::net
