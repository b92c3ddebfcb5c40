// Operations on one project are serialised: each takes its project's lock at its start and
// releases it at its end; different projects run side by side. Loop thread only. Private to
// the daemon.
#pragma once

#include <set>
#include <string>

#include "reconciler/async.h"

namespace stack::reconciler {

// Serialises operations on one project: taken at the start of each, released at its end.
class ProjectLock {
 public:
  static awaitable<ProjectLock> take(std::set<std::string>& busy, Notifier& changed,
                                     std::string project) {
    while (busy.count(project)) co_await changed.wait();
    busy.insert(project);
    co_return ProjectLock(busy, changed, std::move(project));
  }
  ProjectLock(ProjectLock&& o) noexcept
      : busy_(o.busy_), changed_(o.changed_), project_(std::move(o.project_)) {
    o.project_.clear();
  }
  ~ProjectLock() {
    if (project_.empty()) return;
    busy_.erase(project_);
    changed_.notify();
  }

 private:
  ProjectLock(std::set<std::string>& busy, Notifier& changed, std::string project)
      : busy_(busy), changed_(changed), project_(std::move(project)) {}
  std::set<std::string>& busy_;
  Notifier& changed_;
  std::string project_;
};


}  // namespace stack::reconciler
