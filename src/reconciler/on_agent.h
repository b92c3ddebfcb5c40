// Blocking cluster store calls from a coroutine on the daemon's loop: the work runs on the
// node agent's query thread (cluster/node_agent.h), the caller resumes on its own executor.
// Included by the few files that talk to the cluster (the API's /v1/nodes, daemon_cluster.cpp).
#pragma once

#include <memory>
#include <type_traits>

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "cluster/node_agent.h"
#include "reconciler/async.h"

namespace stack::reconciler {

// Runs F on AGENT's query thread and resumes the caller with F's result.
template <class F>
auto on_agent(cluster::NodeAgent& agent, F f) {
  namespace asio = boost::asio;
  using R = std::invoke_result_t<F>;
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(R)>(
      [&agent](auto handler, F work) {
        auto ex = asio::get_associated_executor(handler);
        // std::function wants a copyable callable: the handler is move-only.
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        agent.submit([h, work = std::move(work), ex]() mutable {
          auto result = std::make_shared<R>(guarded(work));
          asio::post(ex, [h, result]() mutable { std::move(*h)(std::move(*result)); });
        });
      },
      asio::use_awaitable, std::move(f));
}

}  // namespace stack::reconciler
