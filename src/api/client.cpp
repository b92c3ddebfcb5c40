// libcurl over the daemon's Unix socket (CURLOPT_UNIX_SOCKET_PATH), and starting the daemon
// when none answers: `stack daemon` detached in its own session, its log in the run root.
#include "api/client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

namespace stack::api {

namespace {

struct Transfer {
  std::string buffer;  // the partial line
  std::string body;    // the whole body, when not streaming
  const std::function<bool(std::string_view)>* on_line = nullptr;
  const std::function<bool()>* stop = nullptr;
  bool stopped = false;
};

size_t on_data(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (!t->on_line) {
    t->body.append(data, len);
    return len;
  }
  t->buffer.append(data, len);
  size_t start = 0;
  for (size_t nl; (nl = t->buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view line(t->buffer.data() + start, nl - start);
    if (!line.empty() && !(*t->on_line)(line)) {
      t->stopped = true;
      return 0;  // aborts the transfer
    }
  }
  t->buffer.erase(0, start);
  return len;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->stop && *t->stop && (*t->stop)()) {
    t->stopped = true;
    return 1;
  }
  return 0;
}

Result<int> perform(const std::filesystem::path& socket, std::string_view method,
                    std::string_view target, std::string_view body, Transfer& t) {
  static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  (void)initialised;
  CURL* curl = curl_easy_init();
  if (!curl) return fail("curl_easy_init failed");
  std::string url = "http://stack" + std::string(target);
  std::string m(method);
  curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, m.c_str());
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (!body.empty() || method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (t.stop && *t.stop) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
  }
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK && !t.stopped) {
    if (rc == CURLE_COULDNT_CONNECT)
      return fail("no stack daemon answers on " + socket.string(), ECONNREFUSED);
    return fail(std::string("daemon request ") + m + " " + std::string(target) + ": " +
                curl_easy_strerror(rc));
  }
  return static_cast<int>(status);
}

}  // namespace

bool Client::ping() {
  Transfer t;
  auto r = perform(socket_, "GET", "/v1/version", {}, t);
  return r && *r == 200;
}

Result<Response> Client::call(std::string_view method, std::string_view target,
                              std::string_view body) {
  Transfer t;
  auto status = perform(socket_, method, target, body, t);
  if (!status) return fail(status.error());
  return Response{*status, std::move(t.body)};
}

Result<int> Client::stream(std::string_view method, std::string_view target, std::string_view body,
                           const std::function<bool(std::string_view)>& on_line,
                           const std::function<bool()>& stop) {
  Transfer t;
  t.on_line = &on_line;
  t.stop = &stop;
  auto status = perform(socket_, method, target, body, t);
  if (status && !t.buffer.empty() && !t.stopped) on_line(t.buffer);
  return status;
}

Result<void> Client::ensure_daemon(const DaemonCommand& command) {
  if (ping()) return {};
  std::filesystem::path log = socket_.parent_path() / "daemon.log";
  std::error_code ec;
  std::filesystem::create_directories(socket_.parent_path(), ec);
  std::vector<std::string> args = {command.stack_binary.string()};
  args.insert(args.end(), command.args.begin(), command.args.end());
  args.push_back("daemon");
  // Double fork: the daemon is nobody's child here and outlives this command.
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork");
  if (pid == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0640);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::waitpid(pid, nullptr, 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ping()) {
      std::fprintf(stderr, "stack: started the stack daemon (log: %s)\n", log.c_str());
      return {};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return fail("started the stack daemon, but it does not answer on " + socket_.string() +
              " (see " + log.string() + ")");
}

}  // namespace stack::api
