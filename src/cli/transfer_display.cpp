// The progress of a registry pull or push streamed from the daemon, drawn on stderr as compose
// does (transfer_display.h). Prints only: the daemon does the transfer; stdout stays the
// caller's.
#include "cli/transfer_display.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/registry_credentials.h"

namespace stack::cli {

namespace {

using nlohmann::json;

// The progress of a pull or a push, as compose shows it: one line per layer and a total. A TTY is
// redrawn in place (at most 10 times a second); a pipe gets a line per change of state.
class TransferDisplay {
 public:
  // PUSH: "Pushing"/"Pushed" instead of "Pulling"/"Pulled".
  TransferDisplay(bool quiet, bool push) : quiet_(quiet), tty_(::isatty(2) == 1), push_(push) {}

  void event(const nlohmann::json& e) {
    if (quiet_) return;
    std::string kind = e.value("kind", "");
    reference_ = e.value("reference", reference_);
    if (kind == "resolving" && !tty_) std::fprintf(stderr, "%s: resolving\n", reference_.c_str());
    if (kind != "layer") return;
    std::string id = e["id"];
    auto it =
        std::find_if(layers_.begin(), layers_.end(), [&](const Layer& l) { return l.id == id; });
    if (it == layers_.end()) it = layers_.insert(layers_.end(), Layer{id, "", "", 0, 0});
    std::string status = e["status"];
    bool changed = it->status != status;
    it->status = status;
    it->current = e.value("current", uint64_t{0});
    it->total = e.value("total", uint64_t{0});
    it->message = e.value("message", "");
    if (tty_) {
      if (changed || std::chrono::steady_clock::now() - drawn_ > std::chrono::milliseconds(100))
        draw();
    } else if (changed || !it->message.empty()) {
      std::fprintf(stderr, "%s: %s%s%s\n", id.c_str(), status.c_str(),
                   it->message.empty() ? "" : ": ", it->message.c_str());
    }
  }

  void finish(bool ok) {
    if (quiet_) return;
    if (tty_) draw();
    uint64_t total = 0;
    for (const auto& l : layers_) total += l.total;
    std::fprintf(stderr, " %s %s %s (%zu layers, %s)\n", ok ? "\u2714" : "\u2718",
                 reference_.c_str(), ok ? (push_ ? "Pushed" : "Pulled") : "Error", layers_.size(),
                 human_size(total).c_str());
  }

 private:
  struct Layer {
    std::string id, status, message;
    uint64_t current = 0, total = 0;
  };

  static bool done_status(const std::string& s) {
    return s == "Pull complete" || s == "Already exists" || s == "Pushed" ||
           s == "Layer already exists";
  }
  static bool moving(const std::string& s) {
    return s == "Downloading" || s == "Pushing" || s == "Retrying";
  }

  void draw() {
    drawn_ = std::chrono::steady_clock::now();
    std::string out;
    if (lines_ > 0) out += "\033[" + std::to_string(lines_) + "F";  // back to the first line
    uint64_t done = 0, total = 0;
    int complete = 0;
    for (const auto& l : layers_) {
      bool finished = done_status(l.status);
      complete += finished;
      done += finished ? l.total : (moving(l.status) ? l.current : 0);
      total += l.total;
    }
    char head[256];
    std::snprintf(head, sizeof head, "\033[2K[+] %s %s %d/%zu  %s/%s\n",
                  push_ ? "Pushing" : "Pulling", reference_.c_str(), complete, layers_.size(),
                  human_size(done).c_str(), human_size(total).c_str());
    out += head;
    for (const auto& l : layers_) {
      bool finished = done_status(l.status);
      char line[512];
      std::string bar;
      if ((l.status == "Downloading" || l.status == "Pushing") && l.total > 0) {
        int filled = static_cast<int>(20 * std::min(l.current, l.total) / l.total);
        bar = "[" + std::string(filled, '=') + ">" + std::string(20 - filled, ' ') + "] " +
              human_size(l.current) + "/" + human_size(l.total);
      } else if (!l.message.empty()) {
        bar = l.message;
      } else if (l.total > 0) {
        bar = human_size(l.total);
      }
      std::snprintf(line, sizeof line, "\033[2K   %s %s %-15s %s\n",
                    finished ? "\033[32m\u2714\033[0m" : "\u283f", l.id.c_str(), l.status.c_str(),
                    bar.c_str());
      out += line;
    }
    lines_ = static_cast<int>(layers_.size()) + 1;
    std::fputs(out.c_str(), stderr);
    std::fflush(stderr);
  }

  bool quiet_, tty_, push_;
  std::string reference_;
  std::vector<Layer> layers_;
  int lines_ = 0;
  std::chrono::steady_clock::time_point drawn_{};
};

}  // namespace

json stream_transfer(Transfer kind, json body, bool quiet) {
  std::string registry = registry_of_reference(body.value("reference", ""));
  auto creds = value_or_exit(find_credentials(default_auth_file(), registry));
  if (creds)
    body["credentials"] = {{"username", creds->username},
                           {"password", creds->password},
                           {"identity_token", creds->identity_token}};
  const bool push = kind == Transfer::push;
  const char* event_key = push ? "push" : "pull";
  const char* result_key = push ? "pushed" : "pulled";
  TransferDisplay display(quiet, push);
  json result;
  std::string error;
  auto status = daemon_client().stream(
      "POST", push ? "/v1/images/push" : "/v1/images/pull", body.dump(),
      [&](std::string_view line) {
        auto j = json::parse(line, nullptr, false);
        if (!j.is_object()) return true;
        if (j.contains(event_key))
          display.event(j[event_key]);
        else if (j.contains(result_key))
          result = j[result_key];
        else if (j.contains("error"))
          error = j["error"].get<std::string>();
        return true;
      });
  if (!status) throw ExitCode{report(status.error())};
  display.finish(error.empty() && !result.is_null());
  if (!error.empty() || result.is_null()) {
    std::fprintf(stderr, "stack: %s\n",
                 error.empty() ? (push ? "the daemon ended the push" : "the daemon ended the pull")
                               : error.c_str());
    throw ExitCode{1};
  }
  return result;
}

}  // namespace stack::cli
