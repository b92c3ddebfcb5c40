/* net_probe: the attacker's and the victim's tools for the network security tests, run inside
 * containers the test made (bind-mounted, run with `stack exec`). Crafts Ethernet frames on an
 * AF_PACKET socket (needs CAP_NET_RAW, which a default container has); sends only where told.
 * Static, no libraries, so it runs in any image (busybox cannot craft these frames).
 *
 *   net_probe udp IFACE VIA_IP SRC_IP DST_IP PORT PAYLOAD [SRC_MAC]
 *       one IPv4/UDP frame to VIA_IP's MAC (the gateway, or a container), any source address
 *       ("self": IFACE's own address and MAC)
 *   net_probe syn IFACE VIA_IP SRC_IP DST_IP PORT WAIT_MS
 *       a TCP SYN the same way; exit 0 and "syn-ack" if one comes back within WAIT_MS, else 1
 *   net_probe garp IFACE CLAIM_IP
 *       gratuitous ARP (a request and a reply) claiming CLAIM_IP for IFACE's MAC
 *   net_probe send IP PORT PAYLOAD          an ordinary UDP datagram
 *   net_probe send6 IFACE PORT PAYLOAD      an ordinary UDP datagram to ff02::1 (all nodes)
 *   net_probe listen PORT                   prints "from ADDR PAYLOAD" per UDP datagram, v4 or v6
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ETH_HLEN 14
#define IP_HLEN 20

_Noreturn static void die(const char *what) {
  fprintf(stderr, "net_probe: %s: %s\n", what, strerror(errno));
  exit(2);
}

_Noreturn static void usage(void) {
  fprintf(stderr, "net_probe: bad usage (see the top of net_probe.c)\n");
  exit(2);
}

static uint32_t parse_ip(const char *s) {
  struct in_addr a;
  if (inet_pton(AF_INET, s, &a) != 1) usage();
  return a.s_addr;
}

static int parse_mac(const char *s, uint8_t mac[6]) {
  unsigned b[6];
  if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) return -1;
  for (int i = 0; i < 6; i++) mac[i] = (uint8_t)b[i];
  return 0;
}

static uint16_t checksum(const void *data, size_t len, uint32_t sum) {
  const uint8_t *p = data;
  for (; len > 1; p += 2, len -= 2) sum += (uint32_t)(p[0] << 8 | p[1]);
  if (len) sum += (uint32_t)(p[0] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons((uint16_t)~sum);
}

struct iface {
  int index;
  uint8_t mac[6];
  uint32_t ip;
};

static struct iface iface_info(const char *name) {
  struct iface out;
  struct ifreq r;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  memset(&r, 0, sizeof r);
  snprintf(r.ifr_name, sizeof r.ifr_name, "%s", name);
  if (ioctl(fd, SIOCGIFINDEX, &r) != 0) die(name);
  out.index = r.ifr_ifindex;
  if (ioctl(fd, SIOCGIFHWADDR, &r) != 0) die("SIOCGIFHWADDR");
  memcpy(out.mac, r.ifr_hwaddr.sa_data, 6);
  if (ioctl(fd, SIOCGIFADDR, &r) != 0) die("SIOCGIFADDR");
  out.ip = ((struct sockaddr_in *)&r.ifr_addr)->sin_addr.s_addr;
  close(fd);
  return out;
}

/* VIA's MAC from the kernel's ARP table, after a datagram to its discard port made the kernel
 * resolve it. */
static void resolve_mac(uint32_t via, uint8_t mac[6]) {
  char want[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &via, want, sizeof want);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr = {via}};
  for (int attempt = 0; attempt < 40; attempt++) {
    if (attempt % 10 == 0) (void)sendto(fd, "", 0, 0, (struct sockaddr *)&to, sizeof to);
    FILE *f = fopen("/proc/net/arp", "r");
    char line[256], ip[64], hw[64];
    unsigned flags;
    while (f && fgets(line, sizeof line, f))
      if (sscanf(line, "%63s %*s %x %63s", ip, &flags, hw) == 3 && strcmp(ip, want) == 0 &&
          (flags & 2) && parse_mac(hw, mac) == 0) {
        fclose(f);
        close(fd);
        return;
      }
    if (f) fclose(f);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  fprintf(stderr, "net_probe: no ARP answer from %s\n", want);
  exit(2);
}

static int packet_socket(int ifindex, uint16_t proto) {
  int fd = socket(AF_PACKET, SOCK_RAW, htons(proto));
  if (fd < 0) die("AF_PACKET socket");
  struct sockaddr_ll a = {.sll_family = AF_PACKET, .sll_protocol = htons(proto),
                          .sll_ifindex = ifindex};
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) die("bind AF_PACKET");
  return fd;
}

static void send_frame(int fd, const uint8_t *frame, size_t len) {
  if (send(fd, frame, len, 0) != (ssize_t)len) die("send frame");
}

/* Ethernet + IPv4 header for PROTO with PAYLOAD_LEN bytes after it. */
static size_t put_eth_ip(uint8_t *f, const uint8_t dst_mac[6], const uint8_t src_mac[6],
                         uint32_t src, uint32_t dst, uint8_t proto, size_t payload_len) {
  memcpy(f, dst_mac, 6);
  memcpy(f + 6, src_mac, 6);
  f[12] = 0x08, f[13] = 0x00;
  uint8_t *ip = f + ETH_HLEN;
  memset(ip, 0, IP_HLEN);
  ip[0] = 0x45;
  uint16_t total = htons((uint16_t)(IP_HLEN + payload_len));
  memcpy(ip + 2, &total, 2);
  ip[6] = 0x40; /* don't fragment */
  ip[8] = 64;
  ip[9] = proto;
  memcpy(ip + 12, &src, 4);
  memcpy(ip + 16, &dst, 4);
  uint16_t sum = checksum(ip, IP_HLEN, 0);
  memcpy(ip + 10, &sum, 2);
  return ETH_HLEN + IP_HLEN;
}

/* The TCP/UDP checksum over the IPv4 pseudo-header and SEGMENT. */
static uint16_t l4_checksum(uint32_t src, uint32_t dst, uint8_t proto, const uint8_t *segment,
                            size_t len) {
  uint8_t pseudo[12];
  memcpy(pseudo, &src, 4);
  memcpy(pseudo + 4, &dst, 4);
  pseudo[8] = 0, pseudo[9] = proto;
  pseudo[10] = (uint8_t)(len >> 8), pseudo[11] = (uint8_t)len;
  uint32_t sum = 0;
  for (int i = 0; i < 12; i += 2) sum += (uint32_t)(pseudo[i] << 8 | pseudo[i + 1]);
  return checksum(segment, len, sum);
}

struct target {
  struct iface me;
  uint8_t dst_mac[6], src_mac[6];
  uint32_t src, dst;
  uint16_t port;
};

static struct target target_of(char **argv) {
  struct target t;
  t.me = iface_info(argv[0]);
  resolve_mac(parse_ip(argv[1]), t.dst_mac);
  t.src = strcmp(argv[2], "self") == 0 ? t.me.ip : parse_ip(argv[2]);
  t.dst = parse_ip(argv[3]);
  t.port = (uint16_t)atoi(argv[4]);
  memcpy(t.src_mac, t.me.mac, 6);
  return t;
}

static int cmd_udp(int argc, char **argv) {
  if (argc < 6) usage();
  struct target t = target_of(argv);
  if (argc > 6 && strcmp(argv[6], "self") != 0 && parse_mac(argv[6], t.src_mac) != 0) usage();
  const char *payload = argv[5];
  size_t plen = strlen(payload), ulen = 8 + plen;
  uint8_t f[1514];
  if (ulen > sizeof f - ETH_HLEN - IP_HLEN) usage();
  size_t off = put_eth_ip(f, t.dst_mac, t.src_mac, t.src, t.dst, IPPROTO_UDP, ulen);
  uint8_t *u = f + off;
  uint16_t sport = htons(40000 + (uint16_t)(getpid() % 20000)), dport = htons(t.port);
  uint16_t len = htons((uint16_t)ulen), zero = 0;
  memcpy(u, &sport, 2);
  memcpy(u + 2, &dport, 2);
  memcpy(u + 4, &len, 2);
  memcpy(u + 6, &zero, 2);
  memcpy(u + 8, payload, plen);
  uint16_t sum = l4_checksum(t.src, t.dst, IPPROTO_UDP, u, ulen);
  memcpy(u + 6, &sum, 2);
  int fd = packet_socket(t.me.index, 0x0800);
  send_frame(fd, f, off + ulen);
  return 0;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int cmd_syn(int argc, char **argv) {
  if (argc < 6) usage();
  struct target t = target_of(argv);
  int wait_ms = atoi(argv[5]);
  uint8_t f[ETH_HLEN + IP_HLEN + 20];
  size_t off = put_eth_ip(f, t.dst_mac, t.src_mac, t.src, t.dst, IPPROTO_TCP, 20);
  uint8_t *tcp = f + off;
  memset(tcp, 0, 20);
  uint16_t sport = htons(40000 + (uint16_t)(getpid() % 20000)), dport = htons(t.port);
  memcpy(tcp, &sport, 2);
  memcpy(tcp + 2, &dport, 2);
  uint32_t seq = htonl(0x5eed0001);
  memcpy(tcp + 4, &seq, 4);
  tcp[12] = 5 << 4; /* 20-byte header */
  tcp[13] = 0x02;   /* SYN */
  uint16_t window = htons(64240);
  memcpy(tcp + 14, &window, 2);
  uint16_t sum = l4_checksum(t.src, t.dst, IPPROTO_TCP, tcp, 20);
  memcpy(tcp + 16, &sum, 2);
  /* Listening before sending: the answer may come back at once. */
  int fd = packet_socket(t.me.index, 0x0800);
  send_frame(fd, f, sizeof f);
  for (long long end = now_ms() + wait_ms; now_ms() < end;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, (int)(end - now_ms())) <= 0) continue;
    uint8_t in[2048];
    ssize_t n = recv(fd, in, sizeof in, 0);
    if (n < ETH_HLEN + IP_HLEN + 20 || in[12] != 0x08 || in[13] != 0x00) continue;
    const uint8_t *ip = in + ETH_HLEN, *seg = ip + (ip[0] & 15) * 4;
    if (ip[9] != IPPROTO_TCP || seg + 20 > in + n) continue;
    if (memcmp(ip + 12, &t.dst, 4) != 0 || memcmp(seg, &dport, 2) != 0 ||
        memcmp(seg + 2, &sport, 2) != 0)
      continue;
    if ((seg[13] & 0x12) == 0x12) {
      printf("syn-ack\n");
      return 0;
    }
  }
  printf("no answer\n");
  return 1;
}

static int cmd_garp(int argc, char **argv) {
  if (argc < 2) usage();
  struct iface me = iface_info(argv[0]);
  uint32_t claim = parse_ip(argv[1]);
  int fd = packet_socket(me.index, 0x0806);
  for (int op = 1; op <= 2; op++) { /* a request, then an unsolicited reply */
    uint8_t f[ETH_HLEN + 28];
    memset(f, 0xff, 6);
    memcpy(f + 6, me.mac, 6);
    f[12] = 0x08, f[13] = 0x06;
    uint8_t *a = f + ETH_HLEN;
    a[0] = 0, a[1] = 1;    /* Ethernet */
    a[2] = 8, a[3] = 0;    /* IPv4 */
    a[4] = 6, a[5] = 4;
    a[6] = 0, a[7] = (uint8_t)op;
    memcpy(a + 8, me.mac, 6);
    memcpy(a + 14, &claim, 4);
    memset(a + 18, op == 1 ? 0 : 0xff, 6);
    memcpy(a + 24, &claim, 4);
    send_frame(fd, f, sizeof f);
  }
  return 0;
}

static int cmd_send(int argc, char **argv) {
  if (argc < 3) usage();
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                           .sin_addr = {parse_ip(argv[0])}};
  if (sendto(fd, argv[2], strlen(argv[2]), 0, (struct sockaddr *)&to, sizeof to) < 0)
    die("sendto");
  return 0;
}

static int cmd_send6(int argc, char **argv) {
  if (argc < 3) usage();
  int fd = socket(AF_INET6, SOCK_DGRAM, 0);
  if (fd < 0) die("socket AF_INET6");
  struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(argv[1]))};
  inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
  to.sin6_scope_id = if_nametoindex(argv[0]);
  /* A fresh link-local address is tentative for about a second (DAD): retry until it is not. */
  for (int i = 0; i < 50; i++) {
    if (sendto(fd, argv[2], strlen(argv[2]), 0, (struct sockaddr *)&to, sizeof to) >= 0) return 0;
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  die("sendto ff02::1");
}

static int cmd_listen(int argc, char **argv) {
  if (argc < 1) usage();
  int fd = socket(AF_INET6, SOCK_DGRAM, 0), off = 0;
  if (fd < 0) die("socket AF_INET6");
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off); /* IPv4 too */
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(argv[0]))};
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
  printf("listening\n");
  fflush(stdout);
  for (;;) {
    char buf[1500], addr[INET6_ADDRSTRLEN];
    struct sockaddr_in6 from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &len);
    if (n < 0) die("recvfrom");
    buf[n] = 0;
    inet_ntop(AF_INET6, &from.sin6_addr, addr, sizeof addr);
    const char *shown = strncmp(addr, "::ffff:", 7) == 0 ? addr + 7 : addr;  /* v4-mapped */
    printf("from %s %s\n", shown, buf);
    fflush(stdout);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  const char *cmd = argv[1];
  argc -= 2, argv += 2;
  if (strcmp(cmd, "udp") == 0) return cmd_udp(argc, argv);
  if (strcmp(cmd, "syn") == 0) return cmd_syn(argc, argv);
  if (strcmp(cmd, "garp") == 0) return cmd_garp(argc, argv);
  if (strcmp(cmd, "send") == 0) return cmd_send(argc, argv);
  if (strcmp(cmd, "send6") == 0) return cmd_send6(argc, argv);
  if (strcmp(cmd, "listen") == 0) return cmd_listen(argc, argv);
  usage();
}
