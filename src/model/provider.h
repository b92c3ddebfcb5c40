// A provider service (compose's `provider:`) as the plan's RunProvider step carries it: the
// binary to ask, the options it is given as flags, and where it runs. Plain data, no
// dependencies beyond the standard library.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace stack::model {

struct ProviderConfig {
  std::string type;  // provider.type: a name looked up as compose does, or a path
  // provider.options, each value of a list its own flag: {"size", "1"} → --size=1, in key order.
  std::vector<std::pair<std::string, std::string>> options;
  std::string working_dir;                         // the project's directory (a relative type)
  std::map<std::string, std::string> environment;  // the project's (PATH, among others)
};

}  // namespace stack::model
