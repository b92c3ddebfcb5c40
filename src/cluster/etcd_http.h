// One HTTP/1.1 connection to one etcd endpoint, plain or TLS with a client certificate, used
// synchronously with deadlines (each connection runs its own private io_context; never the
// daemon's loop). Internal to src/cluster: Beast and OpenSSL stay in etcd_http.cpp.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace stack::cluster {

struct Endpoint {
  bool tls = false;
  std::string host;
  std::string port;
  std::string url;  // as given, for messages
};

// "http://127.0.0.1:2379" or "https://host:port"; errors name the endpoint and the reason.
[[nodiscard]] Result<Endpoint> parse_endpoint(std::string_view url);

// The client side of TLS: the CA that signs the members' certificates, and this client's
// certificate and key (etcd's --client-cert-auth). Loaded once, shared by every connection.
struct TlsConfig;
struct TlsFiles {
  std::string ca;
  std::string cert;
  std::string key;
};
[[nodiscard]] Result<std::shared_ptr<TlsConfig>> load_tls(const TlsFiles& files);

struct HttpResponse {
  unsigned status = 0;
  std::string body;
};

class HttpConnection {
 public:
  virtual ~HttpConnection() = default;

  // TLS must be given for an https endpoint.
  [[nodiscard]] static Result<std::unique_ptr<HttpConnection>> open(
      const Endpoint& ep, std::shared_ptr<TlsConfig> tls, std::chrono::milliseconds timeout);

  // POST TARGET with a JSON BODY and read the whole response (the connection stays usable).
  [[nodiscard]] virtual Result<HttpResponse> post(const std::string& target,
                                                  const std::string& body,
                                                  std::chrono::milliseconds timeout) = 0;

  // POST TARGET and read only the response's header: the body is a stream of JSON messages,
  // one a line (etcd's gateway streams watch, observe and keepalive so). A status other than
  // 200 is an error carrying the body.
  [[nodiscard]] virtual Result<void> open_stream(const std::string& target,
                                                 const std::string& body,
                                                 std::chrono::milliseconds timeout) = 0;
  // The next message of the stream, or nullopt when none came within TIMEOUT (the read stays
  // pending for the next call). An error when the stream ended or broke.
  [[nodiscard]] virtual Result<std::optional<std::string>> next_message(
      std::chrono::milliseconds timeout) = 0;

  // From any thread: whatever waits on this connection (a stream read) fails at once, and the
  // connection is broken from then on. The socket is shut down, not closed: only its owner's
  // thread closes it, so no descriptor number is reused under a waiting read.
  virtual void interrupt() = 0;

  virtual const Endpoint& endpoint() const = 0;
  // False once a call failed or timed out, the server closed, or it carried a stream.
  virtual bool reusable() const = 0;
};

// RFC 4648 base64 with padding: etcd's JSON carries keys and values so.
[[nodiscard]] std::string base64_encode(std::string_view in);
[[nodiscard]] Result<std::string> base64_decode(std::string_view in);

}  // namespace stack::cluster
