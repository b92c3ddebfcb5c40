// What happened, as `stack events` streams it: create, start, die (with exit code), oom,
// health_status, restart, drift_repaired, stop, destroy, adopt. Published on the loop thread;
// subscribers are called synchronously and must not block.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>

namespace stack::reconciler {

struct Event {
  int64_t time = 0;  // unix ms
  std::string type;
  std::string project, service, container;
  std::map<std::string, std::string> attributes;  // exit_code, health, reason, ...
};

class EventBus {
 public:
  using Subscriber = std::function<void(const Event&)>;
  int subscribe(Subscriber s);
  void unsubscribe(int id);
  void publish(Event e);
  // The last events kept for late subscribers (`stack events --since`), oldest first.
  [[nodiscard]] const std::deque<Event>& recent() const { return recent_; }

 private:
  std::map<int, Subscriber> subscribers_;
  std::deque<Event> recent_;
  int next_id_ = 1;
};

}  // namespace stack::reconciler
