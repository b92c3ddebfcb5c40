// See terminal.h. One terminal at a time: its saved settings live in a global so that the
// signal handlers can restore them (tcsetattr(3) is async-signal-safe, signal-safety(7)).
#include "cli/terminal.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

#include <iterator>

namespace stack::cli {

namespace {

termios g_saved;
volatile sig_atomic_t g_fd = -1;  // the terminal in raw mode, -1: none

// In raw mode the terminal makes no signal of Ctrl-C, but kill(1), a closed terminal (SIGHUP)
// or a crash still end the process: the terminal is given back first, then the signal does
// what it would have done.
constexpr int kSignals[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS};
struct sigaction g_old[sizeof kSignals / sizeof *kSignals];

int g_winch[2] = {-1, -1};  // window_changes(): the handler writes a byte to [1]
int g_proxied[2] = {-1, -1};  // proxied_signals(): the handler writes the signal's number
// What a user sends to end or poke a process (SIGKILL and SIGSTOP cannot be caught).
constexpr int kProxiedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

void on_winch(int) {
  int saved = errno;
  char c = 0;
  (void)!::write(g_winch[1], &c, 1);
  errno = saved;
}

void on_proxied(int sig) {
  int saved = errno;
  char c = static_cast<char>(sig);
  (void)!::write(g_proxied[1], &c, 1);
  errno = saved;
}

void restore_and_reraise(int sig) {
  if (g_fd >= 0) ::tcsetattr(g_fd, TCSADRAIN, &g_saved);
  g_fd = -1;
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

std::optional<RawTerminal> RawTerminal::enter(int fd) {
  termios t{};
  if (g_fd >= 0 || ::isatty(fd) != 1 || ::tcgetattr(fd, &t) != 0) return std::nullopt;
  g_saved = t;
  struct sigaction sa {};
  sa.sa_handler = restore_and_reraise;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < std::size(kSignals); i++) ::sigaction(kSignals[i], &sa, &g_old[i]);
  ::cfmakeraw(&t);
  g_fd = fd;  // before the change: a signal in between restores what was
  if (::tcsetattr(fd, TCSADRAIN, &t) != 0) {
    g_fd = -1;
    for (size_t i = 0; i < std::size(kSignals); i++) ::sigaction(kSignals[i], &g_old[i], nullptr);
    return std::nullopt;
  }
  return RawTerminal(fd);
}

RawTerminal::~RawTerminal() {
  if (fd_ < 0) return;
  ::tcsetattr(fd_, TCSADRAIN, &g_saved);
  g_fd = -1;
  for (size_t i = 0; i < std::size(kSignals); i++) ::sigaction(kSignals[i], &g_old[i], nullptr);
}

std::optional<std::pair<uint16_t, uint16_t>> terminal_size(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0 || ws.ws_row == 0) return std::nullopt;
  return std::pair<uint16_t, uint16_t>{ws.ws_col, ws.ws_row};
}

int window_changes() {
  if (g_winch[0] >= 0) return g_winch[0];
  if (::pipe2(g_winch, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
  struct sigaction sa {};
  sa.sa_handler = on_winch;
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGWINCH, &sa, nullptr);
  return g_winch[0];
}

int proxied_signals() {
  if (g_proxied[0] >= 0) return g_proxied[0];
  if (::pipe2(g_proxied, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
  struct sigaction sa {};
  sa.sa_handler = on_proxied;
  sa.sa_flags = SA_RESTART;
  for (int sig : kProxiedSignals) ::sigaction(sig, &sa, nullptr);
  return g_proxied[0];
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, -1);
      continue;
    }
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace stack::cli
