#include <doctest/doctest.h>

#include "reconciler/health.h"

using namespace stack::reconciler;
using namespace std::chrono_literals;

TEST_CASE("a container is healthy at its first success and unhealthy after retries failures") {
  HealthConfig c;
  c.argv = {"true"};
  c.retries = 3;
  HealthState h(c);
  CHECK(h.status() == Health::Starting);
  CHECK(h.record(false, 1s) == Health::Starting);
  CHECK(h.record(true, 2s) == Health::Healthy);
  CHECK(h.record(false, 3s) == Health::Healthy);
  CHECK(h.record(false, 4s) == Health::Healthy);
  CHECK(h.record(false, 5s) == Health::Unhealthy);
  CHECK(h.record(true, 6s) == Health::Healthy);
  CHECK(h.failing_streak() == 0);
}

TEST_CASE("failures in the start period do not count: probes come every start_interval") {
  HealthConfig c;
  c.argv = {"true"};
  c.retries = 1;
  c.start_period = 10s;
  c.start_interval = 1s;
  c.interval = 30s;
  HealthState h(c);
  CHECK(h.next_delay(0s) == 1s);
  for (int i = 0; i < 5; i++) CHECK(h.record(false, std::chrono::seconds(i)) == Health::Starting);
  CHECK(h.next_delay(5s) == 1s);
  CHECK(h.next_delay(11s) == 30s);
  CHECK(h.record(false, 11s) == Health::Unhealthy);
}
