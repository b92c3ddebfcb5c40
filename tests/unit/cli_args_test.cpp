// How `stack exec` arguments are cut before the option parser sees them (src/cli/args.cpp):
// everything after the service is the command, whatever it looks like; the options before it
// (global or exec's own, in any of their spellings) keep their values. No root needed.
#include <doctest/doctest.h>

#include "cli/cli.h"

using namespace stack::cli;

namespace {

// The arguments left for the parser and the command cut off, for ARGS.
std::pair<std::vector<std::string>, std::vector<std::string>> split(std::vector<std::string> args) {
  exec_command().clear();
  split_exec_command(args);
  return {args, exec_command()};
}

using Args = std::vector<std::string>;

}  // namespace

TEST_CASE("cli args: after exec's service everything is the command") {
  CHECK(split({"exec", "web", "ls", "-la"}) == std::pair{Args{"exec", "web"}, Args{"ls", "-la"}});
  CHECK(split({"-f", "a.yaml", "exec", "-e", "K=V", "-u", "root", "-w", "/", "--index", "2", "web",
               "sh", "-c", "echo -f x"}) ==
        std::pair{Args{"-f", "a.yaml", "exec", "-e", "K=V", "-u", "root", "-w", "/", "--index", "2",
                       "web"},
                  Args{"sh", "-c", "echo -f x"}});
  // Global flags after the subcommand, with their value; flags without one.
  CHECK(split({"exec", "-f", "stack.yaml", "-p", "proj", "-T", "-d", "web", "true"}).second ==
        Args{"true"});
  CHECK(split({"exec", "--root", "/r", "--run-root", "/rr", "--log-level", "debug", "web", "x"})
            .first.back() == "web");
  // A value attached (=, or to a short option), and short flags clustered with a value-taker
  // last: its value is the next argument.
  CHECK(split({"exec", "--env=K=V", "-eK=V", "web", "x"}).first.back() == "web");
  CHECK(split({"exec", "-Te", "K=V", "web", "x"}).first.back() == "web");
  CHECK(split({"exec", "-dTu", "nobody", "web", "x"}).first.back() == "web");
  CHECK(split({"exec", "-uT", "web", "x"}).first.back() == "web");  // -u with "T" attached
  // "--" ends stack's options: the next argument is the service.
  CHECK(split({"exec", "--", "web", "-T"}) == std::pair{Args{"exec", "--", "web"}, Args{"-T"}});
  // No command: nothing cut (the parser says what is missing).
  CHECK(split({"exec", "web"}) == std::pair{Args{"exec", "web"}, Args{}});
}

TEST_CASE("cli args: other commands are left alone") {
  CHECK(split({"restart", "-f", "stack.yaml", "web"}) ==
        std::pair{Args{"restart", "-f", "stack.yaml", "web"}, Args{}});
  CHECK(split({"-p", "exec", "ps"}) == std::pair{Args{"-p", "exec", "ps"}, Args{}});
  CHECK(split({"config", "exec"}).second.empty());
}

TEST_CASE("cli args: run cuts its command after the service, its value options keep their values") {
  CHECK(split({"run", "--rm", "-e", "K=V", "-v", "/a:/b", "-l", "x=y", "-p", "8080:80", "--name",
               "n", "--entrypoint", "sh", "web", "-c", "echo -v"}) ==
        std::pair{Args{"run", "--rm", "-e", "K=V", "-v", "/a:/b", "-l", "x=y", "-p", "8080:80",
                       "--name", "n", "--entrypoint", "sh", "web"},
                  Args{"-c", "echo -v"}});
  CHECK(split({"-p", "proj", "run", "-dTv", "/a:/b", "web", "ls"}).first.back() == "web");
  CHECK(split({"run", "web"}).second.empty());
}
