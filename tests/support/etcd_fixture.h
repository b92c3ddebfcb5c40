// etcd for tests: one member on free loopback ports in a temp dir (plain or TLS with client
// certificates made by openssl for the test), or three members in three network namespaces
// (stack-test-etcd-<pid>-<n>) on a bridge of the test's own (stkteb<pid>). Everything is removed on
// destruction, pass or fail: members stopped in RECIPES.md's order (followers first, SIGKILL
// after a grace time), namespaces, links and directories deleted.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace stack::test {

// Why etcd tests cannot run here ("" when they can): no etcd binary.
std::string etcd_missing();

// A CA, a member certificate (for ADDRESSES, serverAuth and clientAuth: etcd's gateway dials
// its own gRPC server with it) and a client certificate, all under DIR.
struct TestPki {
  std::string ca, server_cert, server_key, client_cert, client_key;
  std::string other_ca;  // a CA that signed nothing here: a client trusting it must fail
};
TestPki make_test_pki(const std::filesystem::path& dir, const std::vector<std::string>& addresses);

struct EtcdMember {
  std::string name;
  std::string client_url;
  std::string peer_url;
  pid_t pid = -1;
  std::string netns;  // empty: the host's
};

class EtcdCluster {
 public:
  // One member on 127.0.0.1; TLS: https with --client-cert-auth.
  static std::unique_ptr<EtcdCluster> single(bool tls = false);
  // Three members in three namespaces (root).
  static std::unique_ptr<EtcdCluster> three();
  ~EtcdCluster();

  [[nodiscard]] std::vector<std::string> endpoints() const;
  [[nodiscard]] const std::vector<EtcdMember>& members() const { return members_; }
  [[nodiscard]] const TestPki& pki() const { return pki_; }
  // The member that leads now (by etcdctl endpoint status), or -1.
  [[nodiscard]] int leader() const;
  // SIGKILL member I (as a crash would) and reap it.
  void kill(int i);
  // Starts member I again on its data (after kill); true once it is healthy.
  bool restart(int i);
  [[nodiscard]] bool healthy() const { return healthy_; }
  // three(): the bridge (in the host's namespace) the members' namespaces are joined by, on
  // which a test may put simulated hosts of its own; "" for single().
  [[nodiscard]] const std::string& bridge() const { return bridge_; }
  [[nodiscard]] std::string log(int i) const;

 private:
  EtcdCluster() = default;
  void start_member(int i);
  bool wait_healthy(int i, int seconds);
  void stop_all();

  std::unique_ptr<TempDir> dir_;
  std::vector<EtcdMember> members_;
  TestPki pki_;
  bool tls_ = false;
  std::string initial_cluster_;
  bool healthy_ = false;
  std::string bridge_;
  std::vector<std::string> links_;
};

}  // namespace stack::test
