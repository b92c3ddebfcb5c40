// The Store's side of sealing (seal.h): the key beside the database, sealing what an older
// version wrote in the clear, unsealing container records on the way out.
#include <unistd.h>

#include <tuple>
#include <vector>

#include "state/runtime_codec.h"
#include "state/seal.h"
#include "state/sqlite.h"
#include "state/store.h"

namespace stack::state {

using sql::exec;
using sql::Statement;
using sql::Transaction;

Result<void> Store::open_sealer(const std::filesystem::path& key_path) {
  if (::access(key_path.c_str(), F_OK) != 0) {
    // A missing key is made only for a database that holds nothing sealed: otherwise those
    // values would be lost for good, and the user must be told rather than see them vanish.
    Statement s(db_,
                "SELECT (SELECT count(*) FROM projects WHERE environment_json LIKE 'sealed:%')"
                " + (SELECT count(*) FROM containers WHERE runtime_json LIKE 'sealed:%')");
    auto row = s.step();
    if (!row) return fail(row.error());
    if (*row && s.int64(0) > 0)
      return fail(key_path.string() + " is missing, and " + std::to_string(s.int64(0)) +
                  " sealed values in the database cannot be read without it (restore the key, "
                  "or remove the database to start afresh)");
  }
  auto sealer = Sealer::load(key_path, ::access(key_path.c_str(), F_OK) != 0);
  if (!sealer) return fail(sealer.error());
  sealer_ = std::make_unique<Sealer>(*sealer);
  return {};
}

Result<void> Store::seal_plain_rows() {
  struct Plain {
    std::string name, value;
  };
  auto plain_rows = [&](const char* sql) -> Result<std::vector<Plain>> {
    Statement s(db_, sql);
    std::vector<Plain> out;
    for (;;) {
      auto row = s.step();
      if (!row) return fail(row.error());
      if (!*row) return out;
      out.push_back({s.text(0), s.text(1)});
    }
  };
  Transaction tx(db_);
  if (auto r = tx.begin(); !r) return r;
  auto projects = plain_rows(
      "SELECT name, environment_json FROM projects WHERE environment_json NOT LIKE 'sealed:%'");
  if (!projects) return fail(projects.error());
  auto containers = plain_rows(
      "SELECT name, runtime_json FROM containers WHERE runtime_json NOT LIKE 'sealed:%'");
  if (!containers) return fail(containers.error());
  if (projects->empty() && containers->empty()) return {};
  for (const auto& [rows, sql, context] :
       {std::tuple(&*projects, "UPDATE projects SET environment_json = ?2 WHERE name = ?1",
                   &project_env_context),
        std::tuple(&*containers, "UPDATE containers SET runtime_json = ?2 WHERE name = ?1",
                   &runtime_context)}) {
    for (const Plain& p : *rows) {
      auto sealed = sealer_->seal(p.value, context(p.name));
      if (!sealed) return fail(sealed.error());
      Statement up(db_, sql);
      up.bind(1, p.name).bind(2, *sealed);
      if (auto r = up.run(); !r) return r;
    }
  }
  if (auto r = tx.commit(); !r) return r;
  // The plain text is still in the WAL's older frames until they are checkpointed: copy them
  // into the database (where secure_delete zeroed the freed cells) and truncate the WAL.
  return exec(db_, "PRAGMA wal_checkpoint(TRUNCATE)");
}

Result<void> Store::unseal(ContainerRecord& c, const std::string& stored) const {
  auto plain = sealer_->unseal(stored, runtime_context(c.name));
  if (!plain) return fail(plain.error().wrap("runtime record of " + c.name));
  // A record that does not decode still names a container to stop and remove: kept, with why.
  auto decoded = decode_runtime(*plain);
  if (decoded) c.runtime = std::make_shared<const model::RuntimeRecord>(std::move(*decoded));
  else c.runtime_error = decoded.error().message;
  return {};
}

}  // namespace stack::state
