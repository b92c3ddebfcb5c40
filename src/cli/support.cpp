// What every `stack` command shares: the daemon client (starting a daemon when none answers),
// the stack file, errors, progress and log lines.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "common/registry_credentials.h"
#include "spec/loader.h"

extern char** environ;

namespace stack::cli {

using nlohmann::json;

namespace {

std::filesystem::path self_dir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  return std::filesystem::path(buf).parent_path();
}

spec::LoadOptions load_options() {
  spec::LoadOptions opts;
  for (const auto& f : globals().files) opts.files.emplace_back(f);
  if (!globals().project.empty()) opts.project_name = globals().project;
  opts.working_dir = std::filesystem::current_path();
  for (char** e = environ; *e; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq) opts.environment.emplace(std::string(*e, static_cast<size_t>(eq - *e)), eq + 1);
  }
  return opts;
}

}  // namespace

std::filesystem::path daemon_binary() {
  auto dir = self_dir();
  for (auto p : {dir / "stackd", dir / "../libexec/stack/stackd"})
    if (::access(p.c_str(), X_OK) == 0) return p.lexically_normal();
  return dir / "stackd";
}

std::vector<std::string> daemon_global_args() {
  std::vector<std::string> args = {"--root", globals().root, "--run-root", globals().run_root};
  if (!globals().log_level.empty()) args.insert(args.end(), {"--log-level", globals().log_level});
  return args;
}

api::Client& daemon_client() {
  static std::unique_ptr<api::Client> client;
  if (client) return *client;
  client = std::make_unique<api::Client>(std::filesystem::path(globals().run_root) / "stack.sock");
  auto ping = client->ping();
  if (!ping) {
    // A socket this user may not use is said as it is; anything else (no socket, nobody
    // listening, a daemon that died while answering) means no daemon answers: start one.
    if (ping.error().sys_errno == EACCES || ping.error().sys_errno == EPERM)
      throw ExitCode{report(ping.error())};
    if (::geteuid() != 0) {
      std::fprintf(stderr, "stack: no daemon answers on %s, and only root can start one\n",
                   client->socket().c_str());
      throw ExitCode{1};
    }
    check(client->ensure_daemon({daemon_binary(), daemon_global_args()}));
  }
  return *client;
}

Result<spec::Stack> load_stack() { return spec::load(load_options()); }

Result<std::string> project_name() {
  if (!globals().project.empty()) return spec::normalize_project_name(globals().project);
  auto stack = load_stack();
  if (!stack) return fail(stack.error());
  return stack->name;
}

std::string load_request_json() {
  auto opts = load_options();
  auto files = spec::resolve_files(opts);
  json files_json = json::array();
  if (files)
    for (const auto& f : *files) files_json.push_back(f.string());
  // The user's registry credentials, as docker's CLI sends its auth config with a build: the
  // pulls of this request use them and nothing else, never the daemon's own login.
  json auth = json::object();
  auto creds = value_or_exit(all_credentials(default_auth_file()));
  for (const auto& [registry, c] : creds) {
    json one = json::object();
    if (!c.username.empty()) one["username"] = c.username, one["password"] = c.password;
    if (!c.identity_token.empty()) one["identity_token"] = c.identity_token;
    auth[registry] = one;
  }
  return json{{"files", files_json},
              {"project_name", opts.project_name.value_or("")},
              {"working_dir", opts.working_dir.string()},
              {"environment", opts.environment},
              {"registry_auth", auth}}
      .dump();
}

void check(Result<void> r) {
  if (!r) throw ExitCode{report(r.error())};
}

int report(const Error& e) {
  std::fprintf(stderr, "stack: %s\n", e.message.c_str());
  return 1;
}

bool stdout_is_tty() { return ::isatty(1) == 1; }

std::string url_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string call(std::string_view method, std::string_view target, std::string_view body) {
  auto r = value_or_exit(daemon_client().call(method, target, body));
  if (r.status >= 400) {
    auto j = json::parse(r.body, nullptr, false);
    std::string msg = j.is_object() && j.contains("error") ? j["error"].get<std::string>() : r.body;
    std::fprintf(stderr, "stack: %s\n", msg.c_str());
    throw ExitCode{1};
  }
  return r.body;
}

namespace {

// The layers of the images an operation pulls (progress lines from "image REF" with an action
// "Pulling", "Pulled" or "LAYER STATUS [BYTES/TOTAL]"), as compose shows them: on a terminal a
// block redrawn in place, in a pipe one line per status change.
class PullLines {
 public:
  explicit PullLines(bool tty) : tty_(tty) {}

  void event(const std::string& object, const std::string& action, double seconds) {
    std::string ref = object.substr(6);
    if (action == "Pulling" || action == "Pulled") {
      if (action == "Pulled") {
        if (tty_ && drawn_ > 0) draw();  // the layers' last state stays above the line
        std::erase_if(layers_, [&](const Layer& l) { return l.ref == ref; });
        drawn_ = 0;
      }
      if (!tty_ || action == "Pulled")
        std::fprintf(stderr, " %s%s%s Image %s %s %.1fs\n", tty_ ? "\033[32m" : "",
                     action == "Pulled" ? "\u2714" : "\u283f", tty_ ? "\033[0m" : "", ref.c_str(),
                     action.c_str(), seconds);
      return;
    }
    size_t sp = action.find(' ');
    std::string id = action.substr(0, sp), rest = sp == std::string::npos ? "" : action.substr(sp + 1);
    std::string status = rest, detail;
    if (rest.rfind("Downloading ", 0) == 0) {
      status = "Downloading";
      unsigned long long cur = 0, total = 0;
      if (std::sscanf(rest.c_str() + 12, "%llu/%llu", &cur, &total) == 2)
        detail = human_size(cur) + "/" + human_size(total);
    }
    auto it = std::find_if(layers_.begin(), layers_.end(),
                           [&](const Layer& l) { return l.ref == ref && l.id == id; });
    if (it == layers_.end()) it = layers_.insert(layers_.end(), Layer{ref, id, "", ""});
    bool changed = it->status != status;
    it->status = status;
    it->detail = detail;
    if (!tty_) {
      if (changed) std::fprintf(stderr, "   %s %s %s\n", ref.c_str(), id.c_str(), status.c_str());
      return;
    }
    draw();
  }
  // Another line is about to be printed: the block stays where it is, finished.
  void interrupt() { drawn_ = 0; }

 private:
  struct Layer {
    std::string ref, id, status, detail;
  };
  void draw() {
    std::string out;
    if (drawn_ > 0) out += "\033[" + std::to_string(drawn_) + "F";
    for (const auto& l : layers_)
      out += "\033[2K   " + l.id + " " + l.status + (l.detail.empty() ? "" : " " + l.detail) + "\n";
    drawn_ = layers_.size();
    std::fputs(out.c_str(), stderr);
    std::fflush(stderr);
  }
  bool tty_;
  std::vector<Layer> layers_;
  size_t drawn_ = 0;
};

}  // namespace

void print_build_line(const std::string& service, const std::string& line) {
  std::fprintf(stderr, "[%s] %s\n", service.c_str(), line.c_str());
}

std::string run_operation(std::string_view method, std::string_view target, std::string_view body,
                          const std::function<bool()>& stop) {
  bool tty = ::isatty(2) == 1;
  std::string last;
  PullLines pulls(tty);
  auto status = daemon_client().stream(
      method, target, body,
      [&](std::string_view line) {
        auto j = json::parse(line, nullptr, false);
        if (!j.is_object()) return true;
        if (j.contains("progress")) {
          const auto& p = j["progress"];
          std::string object = p["container"].get<std::string>();
          if (object.rfind("image ", 0) == 0) {
            pulls.event(object, p["action"].get<std::string>(), p["ms"].get<double>() / 1000.0);
            return true;
          }
          if (object.rfind("build ", 0) == 0) {
            pulls.interrupt();
            print_build_line(object.substr(6), p["action"].get<std::string>());
            return true;
          }
          pulls.interrupt();
          // "network NAME", "volume NAME" (steps.cpp): compose's kind first, then the name.
          std::string kind = "Container";
          for (auto [prefix, name] : {std::pair{"network ", "Network"}, {"volume ", "Volume"}})
            if (object.rfind(prefix, 0) == 0) {
              kind = name;
              object.erase(0, std::strlen(prefix));
            }
          std::fprintf(stderr, " %s✔%s %s %-28s %-10s %6.1fs\n", tty ? "\033[32m" : "",
                       tty ? "\033[0m" : "", kind.c_str(), object.c_str(),
                       p["action"].get<std::string>().c_str(), p["ms"].get<double>() / 1000.0);
        } else if (j.contains("warning")) {
          std::fprintf(stderr, "warning: %s\n", j["warning"].get<std::string>().c_str());
        } else {
          last = std::string(line);
        }
        return true;
      },
      stop);
  if (!status) throw ExitCode{report(status.error())};
  auto j = json::parse(last, nullptr, false);
  if (j.is_object() && j.contains("error")) {
    std::fprintf(stderr, "stack: %s\n", j["error"].get<std::string>().c_str());
    throw ExitCode{1};
  }
  return last;
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); i++) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); i++) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

void LogPrinter::print(std::string_view line) {
  static const char* colors[] = {"\033[36m", "\033[33m", "\033[32m", "\033[35m", "\033[34m",
                                 "\033[96m", "\033[93m", "\033[92m"};
  auto j = json::parse(line, nullptr, false);
  if (!j.is_object() || !j.contains("container")) return;
  std::string name = j["container"];
  size_t i = std::find(seen_.begin(), seen_.end(), name) - seen_.begin();
  if (i == seen_.size()) seen_.push_back(name);
  bool tty = color_ && stdout_is_tty();
  std::string time = timestamps_ ? j["time"].get<std::string>() + " " : "";
  if (!prefix_) {
    std::printf("%s%s\n", time.c_str(), j["text"].get<std::string>().c_str());
    std::fflush(stdout);
    return;
  }
  std::printf("%s%-*s |%s %s%s\n", tty ? colors[i % 8] : "", static_cast<int>(width_),
              name.c_str(), tty ? "\033[0m" : "", time.c_str(),
              j["text"].get<std::string>().c_str());
  std::fflush(stdout);
}

}  // namespace stack::cli
