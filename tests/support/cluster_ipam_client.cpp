// A cluster IPAM client as its own process, for the test that several processes allocate at
// once: `cluster_ipam_client ENDPOINT NETWORK OWNER_PREFIX COUNT` prints one address a line,
// or the error on stderr with exit 1.
#include <cstdio>
#include <string>

#include "cluster/etcd_store.h"
#include "cluster/ipam.h"

int main(int argc, char** argv) {
  using namespace stack::cluster;
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s ENDPOINT NETWORK OWNER_PREFIX COUNT\n", argv[0]);
    return 2;
  }
  EtcdOptions o;
  o.endpoints = {argv[1]};
  auto store = EtcdStore::open(o);
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().message.c_str());
    return 1;
  }
  ClusterIpam ipam(**store);
  int count = std::stoi(argv[4]);
  for (int i = 0; i < count; ++i) {
    auto a = ipam.allocate(argv[2], std::string(argv[3]) + std::to_string(i));
    if (!a) {
      std::fprintf(stderr, "%s\n", a.error().message.c_str());
      return 1;
    }
    std::printf("%s\n", a->str().c_str());
  }
  std::fprintf(stderr, "conflicts %d\n", ipam.conflicts());
  return 0;
}
