// Host users for the tests of who may use the daemon: the group `stack` (made when missing, and
// then removed again), a member of it and an outsider, both removed at the end, pass or fail.
// Commands run as either through setpriv(1) with the user's own groups. Root only.
#pragma once

#include <doctest/doctest.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "e2e/stack_env.h"
#include "support/fixtures.h"

namespace stack::test {

class StackGroupUsers {
 public:
  StackGroupUsers()
      : member_("stkmem" + std::to_string(::getpid() % 100000)),
        outsider_("stkout" + std::to_string(::getpid() % 100000)) {
    if (::getgrnam("stack") == nullptr) {
      auto g = run({"/usr/sbin/groupadd", "--system", "stack"});
      REQUIRE_MESSAGE(g.code == 0, g.err);
      made_group_ = true;
    }
    for (const auto& [name, groups] : {std::pair{member_, "stack"}, std::pair{outsider_, ""}}) {
      std::vector<std::string> argv = {"/usr/sbin/useradd", "--system", "--user-group",
                                       "--no-create-home",  "--shell",  "/usr/sbin/nologin"};
      if (*groups) argv.insert(argv.end(), {"--groups", groups});
      argv.push_back(name);
      auto r = run(argv);
      REQUIRE_MESSAGE(r.code == 0, r.err);
      made_.push_back(name);
    }
  }
  ~StackGroupUsers() {
    for (const auto& u : made_) run({"/usr/sbin/userdel", u});
    if (made_group_) run({"/usr/sbin/groupdel", "stack"});
  }
  StackGroupUsers(const StackGroupUsers&) = delete;
  StackGroupUsers& operator=(const StackGroupUsers&) = delete;

  const std::string& member() const { return member_; }
  const std::string& outsider() const { return outsider_; }

  // ENV's daemon again, now that the group exists (the socket takes its group at bind time),
  // and ENV's directories open to other users on the way to the socket.
  static void open_to_users(StackEnv& env) {
    REQUIRE(::chmod(env.root().parent_path().c_str(), 0711) == 0);
    env.start_daemon({});
  }

  // `stack ARGS` of ENV as USER (its own groups), for project P.
  static RunResult stack_as(StackEnv& env, const std::string& user, const std::string& project,
                            const std::vector<std::string>& args, const std::string& input = "") {
    std::vector<std::string> argv = {"/usr/bin/setpriv",
                                     "--reuid=" + user,
                                     "--regid=" + user,
                                     "--init-groups",
                                     "--",
                                     std::string(STACK_BUILD_DIR) + "/stack",
                                     "--root",
                                     env.root().string(),
                                     "--run-root",
                                     (env.root().parent_path() / "run").string(),
                                     "-p",
                                     project};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, {}, input);
  }

 private:
  std::string member_, outsider_;
  std::vector<std::string> made_;
  bool made_group_ = false;
};

}  // namespace stack::test
