// Per-component spdlog loggers ("engine", "fs", "reconciler", ...), set up once by main.
#pragma once

#include <memory>
#include <string_view>

namespace spdlog {
class logger;
}

namespace stack::log {

// Level from "debug", "info", "warn", "error"; output to stderr.
void setup(std::string_view level);
std::shared_ptr<spdlog::logger> get(std::string_view component);

}  // namespace stack::log
