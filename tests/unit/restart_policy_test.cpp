#include <doctest/doctest.h>

#include "reconciler/restart_policy.h"

using namespace stack::reconciler;
using namespace std::chrono_literals;

TEST_CASE("restart policies parse as compose writes them") {
  CHECK(RestartPolicy::parse("no")->kind == RestartPolicy::Kind::No);
  CHECK(RestartPolicy::parse("always")->kind == RestartPolicy::Kind::Always);
  CHECK(RestartPolicy::parse("unless-stopped")->kind == RestartPolicy::Kind::UnlessStopped);
  auto p = RestartPolicy::parse("on-failure:3");
  REQUIRE(p);
  CHECK(p->kind == RestartPolicy::Kind::OnFailure);
  CHECK(p->max_retries == 3);
  CHECK(p->str() == "on-failure:3");
  CHECK(!RestartPolicy::parse("sometimes"));
  CHECK(!RestartPolicy::parse("on-failure:x"));
}

TEST_CASE("backoff starts at 100 ms, doubles, is capped at a minute, resets after 10 s") {
  auto always = RestartPolicy::parse("always").value();
  int streak = 0;
  std::vector<long> delays;
  for (int i = 0; i < 12; i++)
    delays.push_back(restart_delay(always, {1, false, 50ms, i}, streak)->count());
  CHECK(delays == std::vector<long>{100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200,
                                    60000, 60000});
  // A run of 10 s or more starts the streak again.
  CHECK(restart_delay(always, {1, false, 10s, 12}, streak)->count() == 100);
  CHECK(restart_delay(always, {1, false, 1s, 13}, streak)->count() == 200);
}

TEST_CASE("which exits restart") {
  int streak = 0;
  auto no = RestartPolicy::parse("no").value();
  auto on_failure = RestartPolicy::parse("on-failure:2").value();
  auto unless = RestartPolicy::parse("unless-stopped").value();
  CHECK(!restart_delay(no, {1, false, 1s, 0}, streak));
  CHECK(!restart_delay(on_failure, {0, false, 1s, 0}, streak));  // success: done
  CHECK(restart_delay(on_failure, {1, false, 1s, 1}, streak));
  CHECK(!restart_delay(on_failure, {1, false, 1s, 2}, streak));  // max retries reached
  CHECK(!restart_delay(unless, {1, true, 1s, 0}, streak));        // stopped by the user
  CHECK(restart_delay(unless, {0, false, 1s, 0}, streak));
}
