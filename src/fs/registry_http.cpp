// http_request over libcurl's easy interface, one handle per request (requests of a pull run on
// several threads; curl handles are not shared between them). curl_global_init runs once.
#include "fs/registry_http.h"

#include <curl/curl.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>

namespace stack::fs {

namespace {

constexpr size_t kMaxCollected = 4 << 20;

struct Transfer {
  const HttpRequest* req;
  HttpResponse* resp;
  bool too_large = false;
  bool aborted = false;
  FILE* upload = nullptr;  // BODY_FILE, or null: BODY from UPLOADED on
  size_t uploaded = 0;
};

size_t on_read(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->upload) {
    size_t got = std::fread(data, 1, size * n, t->upload);
    if (got == 0 && std::ferror(t->upload)) return CURL_READFUNC_ABORT;
    return got;
  }
  size_t m = std::min(size * n, t->req->body.size() - t->uploaded);
  std::memcpy(data, t->req->body.data() + t->uploaded, m);
  t->uploaded += m;
  return m;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  // A redirect starts a new response: its headers replace the last one's. The status is known
  // before the body arrives (on_data routes the body by it).
  if (line.starts_with("HTTP/")) {
    t->resp->headers.clear();
    size_t sp = line.find(' ');
    t->resp->status =
        sp == std::string_view::npos ? 0 : std::atol(std::string(line.substr(sp + 1, 3)).c_str());
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
      value.remove_suffix(1);
    t->resp->headers[name] = std::string(value);
  }
  return size * n;
}

size_t on_data(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  // Only a successful answer's body goes to the caller's sink; error bodies are collected.
  bool success = t->resp->status >= 200 && t->resp->status < 300;
  if (success && t->req->on_body) {
    if (!t->req->on_body(data, len)) {
      t->aborted = true;
      return 0;
    }
    return len;
  }
  if (t->resp->body.size() + len > kMaxCollected) {
    t->too_large = true;
    return 0;
  }
  t->resp->body.append(data, len);
  return len;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(user);
  if (t->req->on_sent && ulnow > 0) t->req->on_sent(static_cast<uint64_t>(ulnow));
  return t->req->cancelled && t->req->cancelled() ? 1 : 0;
}

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct ListDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

bool transient(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_COULDNT_RESOLVE_HOST:
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<HttpResponse> http_request(const HttpRequest& req) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, EasyDeleter> curl(curl_easy_init());
  if (!curl) return fail("curl_easy_init failed");
  HttpResponse resp;
  Transfer t{&req, &resp};
  std::unique_ptr<curl_slist, ListDeleter> headers;
  for (const auto& h : req.headers) headers.reset(curl_slist_append(headers.release(), h.c_str()));
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  const std::string& m = req.method;
  bool sends = m == "POST" || m == "PUT" || m == "PATCH";
  struct FileCloser {
    void operator()(FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<FILE, FileCloser> file;
  int64_t body_size = static_cast<int64_t>(req.body.size());
  if (sends && !req.body_file.empty()) {
    file.reset(std::fopen(req.body_file.c_str(), "rbe"));
    if (!file) return fail_errno("open " + req.body_file.string());
    std::error_code ec;
    body_size = static_cast<int64_t>(std::filesystem::file_size(req.body_file, ec));
    if (ec) return fail("size of " + req.body_file.string() + ": " + ec.message());
    t.upload = file.get();
  }
  if (m == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (sends) {
    // UPLOAD streams the body through on_read with its length known (Content-Length); the
    // method is set after it, which would otherwise make every upload a PUT.
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body_size));
    if (m != "PUT") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m.c_str());
    // No "Expect: 100-continue": a registry answers at once, curl would wait a second for it.
    headers.reset(curl_slist_append(headers.release(), "Expect:"));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  } else if (m != "GET") {
    return fail("HTTP method " + m + " is not one the registry client sends");
  }
  // Redirects only for reads: a registry's blob GET may point at a storage service.
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, sends ? 0L : 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  // Only HTTP(S) anywhere, redirects included: a registry must not send us to file:// or ftp://.
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, req.connect_seconds);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, req.stall_seconds);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "stack/" STACK_VERSION);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  if (!req.verify_tls) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (req.resume_from > 0)
    curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(req.resume_from));
  CURLcode rc = curl_easy_perform(c);
  char* effective = nullptr;
  curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective);
  if (effective) resp.url = effective;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  if (rc == CURLE_WRITE_ERROR && t.aborted) return fail(m + " " + req.url + ": stopped");
  if (rc == CURLE_WRITE_ERROR && t.too_large)
    return fail(m + " " + req.url + ": answer larger than 4 MiB");
  if (rc == CURLE_ABORTED_BY_CALLBACK) return fail(m + " " + req.url + ": cancelled");
  // A server that ignores the range answers 200 with the whole body: that is a response too.
  if (rc == CURLE_RANGE_ERROR) return resp;
  if (rc != CURLE_OK)
    return fail(m + " " + req.url + ": " + curl_easy_strerror(rc), transient(rc) ? kTransient : 0);
  return resp;
}

}  // namespace stack::fs
