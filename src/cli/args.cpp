// The global flags and the arguments of `stack exec` and `stack run`, before CLI11 sees them.
#include <set>

#include "cli/cli.h"

namespace stack::cli {

Globals& globals() {
  static Globals g;
  return g;
}

std::vector<std::string>& exec_command() {
  static std::vector<std::string> command;
  return command;
}

void split_exec_command(std::vector<std::string>& args) {
  // Options that take a value, global or exec's own: their value is not a positional.
  static const std::set<std::string> with_value = {
      "--root", "--run-root", "-f", "--file", "-p", "--project-name", "--log-level", "--index",
      "-e",     "--env",      "-u", "--user", "-w", "--workdir",
      // run's own (its -p is --publish)
      "--entrypoint", "--publish", "--name", "-v", "--volume", "-l", "--label"};
  // Short ones also end a cluster ("-Te K=V": the value is the next argument).
  static const std::string short_with_value = "fpeuwvl";
  bool in_exec = false;
  for (size_t i = 0; i < args.size(); i++) {
    const std::string& a = args[i];
    if (a == "--") {  // the end of options: the next argument is the subcommand or the service
      if (in_exec && i + 1 < args.size()) {
        exec_command().assign(args.begin() + static_cast<long>(i) + 2, args.end());
        args.resize(i + 2);
        return;
      }
      continue;
    }
    if (a.size() > 1 && a[0] == '-') {
      bool cluster = a[1] != '-' && a.size() > 2;  // "-Te": flags, maybe a value-taker last
      if (with_value.count(a) || (cluster && a.find_first_of('=') == std::string::npos &&
                                  short_with_value.find(a.back()) != std::string::npos &&
                                  a.find_first_of(short_with_value) == a.size() - 1))
        i++;
      continue;
    }
    if (!in_exec) {
      if (a != "exec" && a != "run") return;  // another command: nothing to split
      in_exec = true;
      continue;
    }
    // The service: everything after it is the command.
    exec_command().assign(args.begin() + static_cast<long>(i) + 1, args.end());
    args.resize(i + 1);
    return;
  }
}

}  // namespace stack::cli
