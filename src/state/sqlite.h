// SQLite helpers of the state store: a checked exec, a prepared statement whose bind errors are
// reported by step(), and a write transaction that rolls back unless committed. Private to
// src/state; inline, so each .cpp of the store uses the same ones.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace stack::state::sql {

inline Error db_error(sqlite3* db) { return Error{sqlite3_errmsg(db), 0}; }

inline Result<void> exec(sqlite3* db, const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    Error e{msg ? msg : sqlite3_errmsg(db), 0};
    sqlite3_free(msg);
    return fail(std::move(e));
  }
  return {};
}

// A prepared statement. Bind errors are kept and reported by step().
class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, std::string_view v) {
    // SQLITE_TRANSIENT: the caller's string may not outlive the statement.
    return check(
        sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Statement& bind(int i, int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }

  // True when a row is available, false when done.
  [[nodiscard]] Result<bool> step() {
    if (rc_ != SQLITE_OK) return fail(db_error(db_));
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return fail(db_error(db_));
  }
  [[nodiscard]] Result<void> run() {
    auto r = step();
    if (!r) return fail(r.error());
    return {};
  }
  [[nodiscard]] int extended_error() const { return sqlite3_extended_errcode(db_); }

  [[nodiscard]] std::string text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  [[nodiscard]] int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  [[nodiscard]] bool is_null(int col) const {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }

 private:
  Statement& check(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
    return *this;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

// BEGIN IMMEDIATE takes the write lock up front, so busy_timeout applies to the whole change
// instead of failing half-way with SQLITE_BUSY on lock upgrade. Rolls back unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {}
  ~Transaction() {
    if (open_) (void)exec(db_, "ROLLBACK");
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  [[nodiscard]] Result<void> begin(const char* sql = "BEGIN IMMEDIATE") {
    auto r = exec(db_, sql);
    if (r) open_ = true;
    return r;
  }
  [[nodiscard]] Result<void> commit() {
    auto r = exec(db_, "COMMIT");
    if (r) open_ = false;
    return r;
  }

 private:
  sqlite3* db_;
  bool open_ = false;
};

}  // namespace stack::state::sql
