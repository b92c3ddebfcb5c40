#include "common/log.h"

#include <mutex>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace stack::log {

namespace {
std::mutex g_mu;
spdlog::level::level_enum g_level = spdlog::level::warn;
std::shared_ptr<spdlog::sinks::sink> g_sink;
}  // namespace

void setup(std::string_view level, std::shared_ptr<spdlog::sinks::sink> sink) {
  std::lock_guard lock(g_mu);
  g_level = spdlog::level::from_str(std::string(level));
  g_sink = std::move(sink);
  spdlog::set_level(g_level);
  spdlog::set_pattern("%^%L%$ %H:%M:%S.%e %n: %v");
}

std::shared_ptr<spdlog::logger> get(std::string_view component) {
  std::lock_guard lock(g_mu);
  std::string name(component);
  if (auto l = spdlog::get(name)) return l;
  std::shared_ptr<spdlog::logger> l;
  if (g_sink) {
    l = std::make_shared<spdlog::logger>(name, g_sink);
    spdlog::register_logger(l);
  } else {
    l = spdlog::stderr_color_mt(name);
  }
  l->set_level(g_level);
  return l;
}

std::vector<std::pair<std::string_view, std::string_view>> journal_fields(
    std::string_view message) {
  static constexpr std::pair<std::string_view, std::string_view> kKeys[] = {
      {"project=", "PROJECT"}, {"container=", "CONTAINER"}, {"pass=", "PASS"}};
  std::vector<std::pair<std::string_view, std::string_view>> out;
  for (const auto& [key, field] : kKeys) {
    for (size_t at = message.find(key); at != std::string_view::npos;
         at = message.find(key, at + 1)) {
      if (at > 0 && message[at - 1] != ' ') continue;  // "old_project=" is not "project="
      auto value = message.substr(at + key.size());
      value = value.substr(0, value.find(' '));
      while (!value.empty() && (value.back() == ':' || value.back() == ',')) value.remove_suffix(1);
      if (value.empty()) continue;
      out.emplace_back(field, value);
      break;
    }
  }
  // The engine's lines about one container say "started container name=web-1" (STYLE.md's
  // name=): that name is the line's CONTAINER= when no container= names one.
  bool has_container = false;
  for (const auto& f : out) has_container |= f.first == "CONTAINER";
  auto name = message.find(" name=");
  if (!has_container && name != std::string_view::npos) {
    auto before = message.substr(0, name);
    if (before.find("container") != std::string_view::npos) {
      auto value = message.substr(name + 6);
      value = value.substr(0, value.find(' '));
      if (!value.empty()) out.emplace_back("CONTAINER", value);
    }
  }
  return out;
}

}  // namespace stack::log
