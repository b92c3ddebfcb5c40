// Per-component spdlog loggers ("engine", "fs", "reconciler", ...), set up once by main.
// Output goes to stderr, or to the one sink main gives (stackd's journald sink under systemd).
#pragma once

#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace spdlog {
class logger;
namespace sinks {
class sink;
}
}  // namespace spdlog

namespace stack::log {

// Level from "debug", "info", "warn", "error"; output to SINK, or to stderr when null. Loggers
// already made keep theirs: call before the first get().
void setup(std::string_view level, std::shared_ptr<spdlog::sinks::sink> sink = nullptr);
std::shared_ptr<spdlog::logger> get(std::string_view component);

// The fields of a log line that journald indexes, from its `key=value` words: project=,
// container=, pass= become PROJECT=, CONTAINER=, PASS= (first of each); the name= of a line
// about a container ("started container name=web-1") is its CONTAINER=. Views into MESSAGE.
std::vector<std::pair<std::string_view, std::string_view>> journal_fields(
    std::string_view message);

}  // namespace stack::log
