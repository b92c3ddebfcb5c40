// Small pieces the daemon's coroutines share: running blocking work on the worker pool, a
// condition that coroutines wait on, and awaiting a pidfd. Private to the reconciler (and the
// API server); Asio stays out of every other header.
#pragma once

#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "common/result.h"

// Two rules for coroutines in this project, both from g++ 12's coroutine bugs:
// - no lambda expression inside a co_await expression: its closure is destroyed twice
//   (name the lambda, or the std::function made from it, before co_await);
// - no capturing coroutine lambda: pass what a coroutine needs as parameters, which its frame
//   owns (a coroutine lambda's captures live in a closure that may be gone when it resumes).

namespace stack::reconciler {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
inline constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);

// F's result; an exception F throws (std::bad_alloc from a hostile input, say) becomes an
// error result instead of ending the thread it ran on, and with it the process.
template <class F>
std::invoke_result_t<F> guarded(F& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return stack::fail(std::string("unexpected failure: ") + e.what());
  }
}

// Runs F on the worker pool and resumes the caller on its own executor with F's result.
// For work that blocks: clone and the init handshake, unpacking, waiting on a process.
// (A plain completion handler, not a coroutine lambda: g++ 12 mishandles the lifetime of a
// coroutine lambda's captures.)
template <class F>
auto on_pool(asio::thread_pool& pool, F f) {
  using R = std::invoke_result_t<F>;
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(R)>(
      [&pool](auto handler, F work) {
        auto ex = asio::get_associated_executor(handler);
        asio::post(pool, [h = std::move(handler), work = std::move(work), ex]() mutable {
          R result = guarded(work);
          asio::post(ex, [h = std::move(h), result = std::move(result)]() mutable {
            std::move(h)(std::move(result));
          });
        });
      },
      use_awaitable, std::move(f));
}

// Something coroutines wait for: they re-check their condition after every notify().
class Notifier {
 public:
  explicit Notifier(asio::any_io_executor ex) : timer_(ex, asio::steady_timer::time_point::max()) {}
  awaitable<void> wait() { co_await timer_.async_wait(no_throw); }
  // Waits at most D; false when D passed without a notify (a notify may also be spurious:
  // waiters re-check their condition either way).
  awaitable<bool> wait_for(std::chrono::milliseconds d) {
    auto deadline = asio::steady_timer::clock_type::now() + d;
    asio::steady_timer t(timer_.get_executor(), d);
    t.async_wait([this](boost::system::error_code ec) {
      if (!ec) timer_.cancel();
    });
    co_await timer_.async_wait(no_throw);
    t.cancel();
    co_return asio::steady_timer::clock_type::now() < deadline;
  }
  void notify() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

// Sleeps for D on the current executor.
inline awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(no_throw);
}

// Reaps the exited process behind PIDFD if it is our child: its wait status (as waitpid(2)
// encodes it), or -1 when it was not ours to reap.
inline int reap_pidfd(int pidfd) {
  siginfo_t si{};
  if (::waitid(static_cast<idtype_t>(3 /* P_PIDFD */), static_cast<id_t>(pidfd), &si,
               WEXITED | WNOHANG) != 0 || si.si_pid == 0)
    return -1;
  return si.si_code == CLD_EXITED ? (si.si_status << 8) : si.si_status;
}

// Waits until the process behind PIDFD has exited (the descriptor turns readable), then reaps
// it if it is our child. Returns its wait status when we reaped it, -1 otherwise. The
// descriptor is duplicated: the caller keeps ownership of PIDFD.
inline awaitable<int> wait_pidfd(int pidfd) {
  asio::posix::stream_descriptor d(co_await asio::this_coro::executor, ::dup(pidfd));
  co_await d.async_wait(asio::posix::stream_descriptor::wait_read, no_throw);
  co_return reap_pidfd(pidfd);
}

// As wait_pidfd, but gives up after TIMEOUT: nullopt then (the process still runs).
inline awaitable<std::optional<int>> wait_pidfd_for(int pidfd, std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  // Shared with the timer's handler, which may already be queued when the wait completes.
  struct Wait {
    asio::posix::stream_descriptor d;
    bool timed_out = false;
  };
  auto w = std::make_shared<Wait>(Wait{asio::posix::stream_descriptor(ex, ::dup(pidfd))});
  asio::steady_timer t(ex, timeout);
  t.async_wait([w](boost::system::error_code ec) {
    if (!ec) {
      w->timed_out = true;
      w->d.cancel();
    }
  });
  co_await w->d.async_wait(asio::posix::stream_descriptor::wait_read, no_throw);
  t.cancel();
  if (w->timed_out) co_return std::nullopt;
  co_return reap_pidfd(pidfd);
}

}  // namespace stack::reconciler
