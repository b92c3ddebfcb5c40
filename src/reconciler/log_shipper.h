// Dual logging: each container whose logging driver is syslog, journald, gelf or fluentd has its
// new log lines followed (the init's own files stay the local copy `stack logs` reads) and sent
// to that driver's sink. One follower per container, by name, on the daemon's loop; private to
// the reconciler (the supervisor starts and stops them).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "common/result.h"
#include <boost/asio/awaitable.hpp>  // private to the reconciler: supervisor.cpp only


namespace stack::model {
struct RuntimeRecord;
}

namespace stack::reconciler {

class LogShipper {
 public:
  explicit LogShipper(boost::asio::io_context& io);
  ~LogShipper();
  LogShipper(const LogShipper&) = delete;
  LogShipper& operator=(const LogShipper&) = delete;

  // From now on, the lines NAME writes to its log in DIR (from the log's current end) go to
  // RT's logging driver as well. Nothing for json-file, local and none, nor when NAME is
  // already followed. An error when a syslog or journald destination cannot be reached: the
  // start fails. A stream driver (tcp gelf, fluentd) is dialled in the background, except
  // with CHECK: then connected() dials it first. CREATED_MS: the container's creation.
  [[nodiscard]] Result<void> follow(const std::string& name, const std::filesystem::path& dir,
                                    const model::RuntimeRecord& rt, int64_t created_ms,
                                    bool check = false);
  // The start's check of a driver that must reach its collector first, as docker's (tcp gelf,
  // fluentd without fluentd-async): one dial within 5 s, an error naming the address. Then
  // the lines flow. Nothing to do for the others.
  [[nodiscard]] boost::asio::awaitable<Result<void>> connected(const std::string& name);
  void rename(const std::string& from, const std::string& to);
  void stop(const std::string& name);
  void stop_all();
  [[nodiscard]] bool following(const std::string& name) const { return shipments_.count(name); }

  struct Shipment;  // one container's follower and sink (log_shipper.cpp)

 private:
  boost::asio::io_context& io_;
  std::map<std::string, std::shared_ptr<Shipment>> shipments_;
};

}  // namespace stack::reconciler
