// A plan as a person reads it: one line per step, a sign for what kind of change it is, the
// object, and why. `stack plan` prints this; the JSON form is the API's (src/api).
#include <type_traits>

#include "planner/plan.h"

namespace stack::planner {

namespace {

template <class... F>
struct Overload : F... {
  using F::operator()...;
};
template <class... F>
Overload(F...) -> Overload<F...>;

}  // namespace

const char* condition_name(Condition c) {
  switch (c) {
    case Condition::kStarted: return "started";
    case Condition::kHealthy: return "healthy";
    case Condition::kCompletedSuccessfully: return "completed successfully";
  }
  return "?";
}

const char* step_kind(const Step& step) {
  return std::visit(Overload{[](const EnsureNetwork&) { return "network"; },
                             [](const RemoveNetwork&) { return "remove network"; },
                             [](const CreateContainer&) { return "create"; },
                             [](const StartContainer&) { return "start"; },
                             [](const AwaitContainer&) { return "await"; },
                             [](const StopContainer&) { return "stop"; },
                             [](const RemoveContainer&) { return "remove"; },
                             [](const RenameContainer&) { return "rename"; },
                             [](const SwitchTraffic&) { return "switch"; },
                             [](const Delay&) { return "delay"; },
                             [](const EnsureVolume&) { return "volume"; },
                             [](const RemoveVolume&) { return "remove volume"; },
                             [](const PullImage&) { return "pull"; },
                             [](const BuildImage&) { return "build"; },
                             [](const RunProvider&) { return "provider"; }},
                    step);
}

std::string step_object(const Step& step) {
  return std::visit(Overload{[](const EnsureNetwork& s) { return s.name; },
                             [](const RemoveNetwork& s) { return s.name; },
                             [](const CreateContainer& s) { return s.name; },
                             [](const StartContainer& s) { return s.name; },
                             [](const AwaitContainer& s) { return s.name; },
                             [](const StopContainer& s) { return s.name; },
                             [](const RemoveContainer& s) { return s.name; },
                             [](const RenameContainer& s) { return s.from; },
                             [](const SwitchTraffic& s) { return s.to; },
                             [](const Delay&) { return std::string(); },
                             [](const EnsureVolume& s) { return s.name; },
                             [](const RemoveVolume& s) { return s.name; },
                             [](const PullImage& s) { return s.ref; },
                             [](const BuildImage& s) { return s.image; },
                             [](const RunProvider& s) { return s.service; }},
                    step);
}

std::string render_step(const Node& node) {
  std::string text = std::visit(
      Overload{[](const EnsureNetwork& s) {
                 return std::string(s.recreate ? "~ network " : "+ network ") + s.name;
               },
               [](const RemoveNetwork& s) { return "- network " + s.name; },
               [](const CreateContainer& s) { return "+ create " + s.name; },
               [](const StartContainer& s) { return "> start " + s.name; },
               [](const AwaitContainer& s) {
                 std::string t = "= await " + s.name + " " + condition_name(s.condition);
                 if (s.monitor.count() > 0)
                   t += " for " + std::to_string(s.monitor.count()) + " ms";
                 return t;
               },
               [](const StopContainer& s) { return "< stop " + s.name; },
               [](const RemoveContainer& s) { return "- remove " + s.name; },
               [](const RenameContainer& s) { return "~ rename " + s.from + " to " + s.to; },
               [](const SwitchTraffic& s) { return "~ switch traffic " + s.from + " to " + s.to; },
               [](const Delay& s) { return "= delay " + std::to_string(s.duration.count()) + " ms"; },
               [](const EnsureVolume& s) { return "+ volume " + s.name; },
               [](const RemoveVolume& s) { return "- volume " + s.name; },
               [](const PullImage& s) {
                 return "+ pull " + s.ref + (s.platform.empty() ? "" : " for " + s.platform);
               },
               [](const BuildImage& s) {
                 std::string users;
                 for (const auto& name : s.services) users += (users.empty() ? "" : ", ") + name;
                 return "+ build " + s.image + " for " + users;
               },
               [](const RunProvider& s) {
                 std::string type = s.config ? s.config->type : std::string("?");
                 return (s.command == "down" ? "- provider " : "+ provider ") + s.service + " " +
                        s.command + " (" + type + ")";
               }},
      node.step);
  if (!node.reason.empty()) text += " (" + node.reason + ")";
  return text;
}

std::string render(const Plan& plan) {
  std::string out;
  for (const auto& n : plan.nodes) out += render_step(n) + "\n";
  return out;
}

}  // namespace stack::planner
