#include "reconciler/events.h"

#include <chrono>
#include <vector>

namespace stack::reconciler {

int EventBus::subscribe(Subscriber s) {
  int id = next_id_++;
  subscribers_.emplace(id, std::move(s));
  return id;
}

void EventBus::unsubscribe(int id) { subscribers_.erase(id); }

void EventBus::publish(Event e) {
  if (e.time == 0)
    e.time = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  recent_.push_back(e);
  if (recent_.size() > 1000) recent_.pop_front();
  // A subscriber may unsubscribe itself (or another) while being called.
  std::vector<int> ids;
  for (const auto& [id, _] : subscribers_) ids.push_back(id);
  for (int id : ids)
    if (auto it = subscribers_.find(id); it != subscribers_.end()) it->second(e);
}

}  // namespace stack::reconciler
