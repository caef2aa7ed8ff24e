#include "pg/common/migrate.h"

#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include "core/errors.h"
#include "pg/common/conninfo.h"
#include "pg/common/migrations_data.h"
#include "pg/common/session.h"

namespace outbox_relay::pg {

namespace {
constexpr long kMigrationLockKey = 0x6f7574626f78;  // "outbox": serializes concurrent migrate runs
}

std::vector<std::string> migrate(const std::string& conninfo) {
  std::unique_ptr<pqxx::connection> conn;
  try {
    conn = std::make_unique<pqxx::connection>(session_conninfo(
        conninfo, {"outbox-relay migrate", std::chrono::seconds(10), std::chrono::seconds(60)}));
  } catch (const pqxx::broken_connection& e) {
    throw core::TransientError(std::string("could not connect to ") + redact_conninfo(conninfo) + ": " +
                               e.what());
  }
  {
    pqxx::nontransaction n(*conn);
    n.exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLockKey) + ")");
    n.exec(
        "CREATE TABLE IF NOT EXISTS outbox_relay_migrations ("
        " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
  }
  std::vector<std::string> applied;
  for (const auto& m : embedded_migrations()) {
    pqxx::work tx(*conn);
    if (!tx.exec_params("SELECT 1 FROM outbox_relay_migrations WHERE name = $1", m.name).empty()) continue;
    try {
      tx.exec(m.sql);
    } catch (const pqxx::sql_error& e) {
      throw std::runtime_error("migration \"" + m.name + "\" failed: " + e.what());
    }
    tx.exec_params("INSERT INTO outbox_relay_migrations (name) VALUES ($1)", m.name);
    tx.commit();
    spdlog::info("applied migration \"{}\"", m.name);
    applied.push_back(m.name);
  }
  pqxx::nontransaction n(*conn);
  n.exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLockKey) + ")");
  return applied;
}

}  // namespace outbox_relay::pg
