// Stages and what the target needs. Docker's rules: ARGs before the first FROM are usable in
// FROM lines only (a stage sees one by declaring `ARG NAME` again); stage names are
// case-insensitive; COPY --from takes a stage name, an earlier stage's index, or an image.
#include "build/stages.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <set>

namespace stack::build {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string host_platform() {
  utsname u{};
  ::uname(&u);
  std::string m = u.machine;
  if (m == "x86_64") return "linux/amd64";
  if (m == "aarch64") return "linux/arm64";
  return "linux/" + m;
}

int stage_ref(const StagePlan& plan, const std::string& from, int current) {
  std::string l = lower(from);
  for (const auto& s : plan.stages) {
    if (s.index >= current) break;
    if (!s.name.empty() && s.name == l) return s.index;
  }
  if (all_digits(from)) {
    int n = std::stoi(from);
    if (n < current) return n;
  }
  return -1;
}

Result<StagePlan> plan_stages(const Dockerfile& df, const Vars& build_args,
                              const std::string& target) {
  StagePlan plan;
  auto at = [&](int line, const std::string& why) {
    return fail(df.name + ":" + std::to_string(line) + ": " + why);
  };
  // BuildKit's automatic platform args, in the global scope.
  std::string platform = host_platform();
  std::string arch = platform.substr(platform.find('/') + 1);
  Vars automatic = {{"TARGETPLATFORM", platform}, {"TARGETOS", "linux"},
                    {"TARGETARCH", arch},         {"TARGETVARIANT", ""},
                    {"BUILDPLATFORM", platform},  {"BUILDOS", "linux"},
                    {"BUILDARCH", arch},          {"BUILDVARIANT", ""}};
  plan.global_args = automatic;
  std::set<std::string> declared;

  Stage* cur = nullptr;
  for (const auto& ins : df.instructions) {
    if (ins.keyword == "ARG" && cur == nullptr) {
      auto decls = arg_decls(ins.text, plan.global_args, df.escape);
      if (!decls) return at(ins.line, "ARG " + decls.error().message);
      for (const auto& [k, v] : *decls) {
        declared.insert(k);
        if (auto it = build_args.find(k); it != build_args.end()) plan.global_args[k] = it->second;
        else if (v) plan.global_args[k] = *v;
        else if (!automatic.count(k)) plan.global_args.erase(k);
      }
      continue;
    }
    if (ins.keyword == "FROM") {
      auto words = expand_words(ins.text, plan.global_args, df.escape);
      if (!words) return at(ins.line, "FROM: " + words.error().message);
      Stage s;
      s.index = static_cast<int>(plan.stages.size());
      s.line = ins.line;
      if (words->size() == 3 && lower((*words)[1]) == "as") {
        s.name = lower((*words)[2]);
        for (const auto& o : plan.stages)
          if (o.name == s.name) return at(ins.line, "duplicate stage name \"" + s.name + "\"");
        if (all_digits(s.name)) return at(ins.line, "stage name \"" + s.name + "\" is a number");
      } else if (words->size() != 1) {
        return at(ins.line, "FROM takes an image and an optional AS name: FROM " + ins.text);
      }
      if (words->empty() || words->front().empty())
        return at(ins.line, "FROM " + ins.text + ": the image is empty after expanding args");
      s.base = (*words)[0];
      for (const auto& o : plan.stages)
        if (!o.name.empty() && o.name == lower(s.base)) s.base_stage = o.index;
      if (const Flag* f = ins.flag("platform")) {
        auto p = expand_word(f->value, plan.global_args, df.escape);
        if (!p) return at(ins.line, "FROM --platform: " + p.error().message);
        s.platform = *p;
      }
      plan.stages.push_back(std::move(s));
      cur = &plan.stages.back();
      continue;
    }
    if (cur == nullptr)
      return at(ins.line, ins.keyword + " before the first FROM (only ARG may come before it)");
    if (ins.keyword == "ARG") {
      auto decls = arg_decls(ins.text, {}, df.escape);
      if (!decls) return at(ins.line, "ARG " + decls.error().message);
      for (const auto& d : *decls) declared.insert(d.first);
    }
    cur->body.push_back(ins);
  }
  if (plan.stages.empty()) return fail(df.name + ": no FROM instruction: nothing to build");

  if (target.empty()) {
    plan.target = static_cast<int>(plan.stages.size()) - 1;
  } else {
    plan.target = -1;
    for (const auto& s : plan.stages)
      if (s.name == lower(target)) plan.target = s.index;
    if (plan.target < 0) {
      std::string names;
      for (const auto& s : plan.stages)
        if (!s.name.empty()) names += (names.empty() ? "" : ", ") + s.name;
      return fail(df.name + ": target stage \"" + target + "\" not found" +
                  (names.empty() ? " (no stage has a name)" : " (stages: " + names + ")"));
    }
  }

  // Dependencies: the base stage and every COPY --from stage. A --from value may use the
  // stage's ARGs: expanded with the global ones and the defaults declared before it.
  std::vector<std::set<int>> deps(plan.stages.size());
  for (auto& s : plan.stages) {
    if (s.base_stage >= 0) deps[s.index].insert(s.base_stage);
    Vars vars;
    for (const auto& ins : s.body) {
      if (ins.keyword == "ARG") {
        auto decls = arg_decls(ins.text, vars, df.escape);
        if (decls)
          for (const auto& [k, v] : *decls) {
            if (auto it = build_args.find(k); it != build_args.end()) vars[k] = it->second;
            else if (v) vars[k] = *v;
            else if (auto g = plan.global_args.find(k); g != plan.global_args.end()) vars[k] = g->second;
          }
      }
      const Flag* from = ins.keyword == "COPY" ? ins.flag("from") : nullptr;
      if (from == nullptr) continue;
      auto v = expand_word(from->value, vars, df.escape);
      if (!v) return at(ins.line, "COPY --from: " + v.error().message);
      int ref = stage_ref(plan, *v, s.index);
      if (ref < 0 && lower(*v) == s.name)
        return at(ins.line, "COPY --from=" + *v + " names its own stage");
      if (ref < 0) {
        for (const auto& o : plan.stages)
          if (o.index > s.index && o.name == lower(*v))
            return at(ins.line, "COPY --from=" + *v + " names a stage defined later");
      }
      if (ref >= 0) deps[s.index].insert(ref);
    }
  }
  std::vector<int> state(plan.stages.size(), 0);
  std::function<void(int)> visit = [&](int i) {
    if (state[i]) return;
    state[i] = 1;
    for (int d : deps[i]) visit(d);
    plan.order.push_back(i);
  };
  visit(plan.target);

  for (const auto& [k, v] : build_args)
    if (!declared.count(k)) plan.unused_args.push_back(k);
  return plan;
}

}  // namespace stack::build
