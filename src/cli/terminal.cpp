// See terminal.h. One terminal at a time: its saved settings live in a global so that the
// signal handlers can restore them (tcsetattr(3) is async-signal-safe, signal-safety(7)).
#include "cli/terminal.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

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

}  // namespace stack::cli
