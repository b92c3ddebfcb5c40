// journald sink for spdlog through sd_journal_sendv(3): native protocol, one datagram per line,
// fields as journal-fields(7) names them. A line journald refuses goes to stderr instead.
#include "cmd/journal_sink.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include <spdlog/sinks/base_sink.h>
#include <systemd/sd-journal.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "common/log.h"

namespace stack {

namespace {

int priority(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace:
    case spdlog::level::debug: return LOG_DEBUG;
    case spdlog::level::info: return LOG_INFO;
    case spdlog::level::warn: return LOG_WARNING;
    case spdlog::level::err: return LOG_ERR;
    case spdlog::level::critical: return LOG_CRIT;
    default: return LOG_INFO;
  }
}

class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string_view text(msg.payload.data(), msg.payload.size());
    std::vector<std::string> fields = {
        "MESSAGE=" + std::string(text),
        "PRIORITY=" + std::to_string(priority(msg.level)),
        "SYSLOG_IDENTIFIER=stackd",
        "STACK_COMPONENT=" + std::string(msg.logger_name.data(), msg.logger_name.size())};
    for (const auto& [name, value] : log::journal_fields(text))
      fields.push_back(std::string(name) + "=" + std::string(value));
    std::vector<iovec> iov;
    for (auto& f : fields) iov.push_back({f.data(), f.size()});
    if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) < 0)
      std::fprintf(stderr, "%s\n", fields[0].c_str() + 8);
  }
  void flush_() override {}
};

}  // namespace

bool journal_wanted() {
  if (::access("/run/systemd/journal/socket", W_OK) != 0) return false;
  if (const char* js = std::getenv("JOURNAL_STREAM"); js && *js) {
    struct stat st{};
    if (::fstat(STDERR_FILENO, &st) == 0) {
      unsigned long long dev = 0, ino = 0;
      if (std::sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
          dev == static_cast<unsigned long long>(st.st_dev) &&
          ino == static_cast<unsigned long long>(st.st_ino))
        return true;
    }
  }
  const char* ns = std::getenv("NOTIFY_SOCKET");
  return ns && *ns;
}

std::shared_ptr<spdlog::sinks::sink> make_journal_sink() { return std::make_shared<JournalSink>(); }

}  // namespace stack
