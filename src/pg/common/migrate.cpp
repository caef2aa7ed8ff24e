#include "pg/common/migrate.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <pqxx/pqxx>
#include <regex>

#include "core/errors.h"
#include "pg/common/conninfo.h"
#include "pg/common/migrations_data.h"
#include "pg/common/session.h"
#include "pg/common/sql_text.h"

namespace outbox_relay::pg {

namespace {

constexpr long kMigrationLockKey = 0x6f7574626f78;  // "outbox": serializes concurrent migrate runs

// The objects of `m` that do not exist, as "table outbox", "trigger outbox_notify", ...
std::vector<std::string> missing_objects(pqxx::transaction_base& tx, const EmbeddedMigration& m) {
  std::vector<std::string> out;
  for (const auto& o : migration_objects(m.sql)) {
    bool exists = true;
    if (o.kind == "relation") {
      exists = !tx.exec_params("SELECT to_regclass($1)", quote_ident(o.name))[0][0].is_null();
    } else if (o.kind == "function") {
      exists = tx.exec_params(
                     "SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = $1 AND "
                     "pg_function_is_visible(oid))",
                     o.name)[0][0]
                   .as<bool>();
    } else if (o.kind == "trigger") {
      exists = tx.exec_params(
                     "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = $1 AND tgrelid = "
                     "to_regclass($2))",
                     o.name, quote_ident(o.table))[0][0]
                   .as<bool>();
    }
    if (!exists) out.push_back(o.kind + " " + o.name);
  }
  return out;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

std::vector<MigrationObject> migration_objects(const std::string& sql) {
  std::string text;  // without -- comments, lower case
  for (std::size_t i = 0; i < sql.size(); ++i) {
    if (sql.compare(i, 2, "--") == 0) {
      i = sql.find('\n', i);
      if (i == std::string::npos) break;
    }
    text += static_cast<char>(std::tolower(static_cast<unsigned char>(sql[i])));
  }
  static const std::regex create(
      R"(create\s+(?:(table|unique\s+index|index)\s+if\s+not\s+exists|(?:or\s+replace\s+)?(function)|(trigger))\s+(\w+)(?:[^;]*?\son\s+(\w+))?)");
  std::vector<MigrationObject> out;
  for (std::sregex_iterator it(text.begin(), text.end(), create), end; it != end; ++it) {
    const auto& m = *it;
    if (m[2].matched) {
      out.push_back({"function", m[4], ""});
    } else if (m[3].matched) {
      out.push_back({"trigger", m[4], m[5]});
    } else {
      out.push_back({"relation", m[4], ""});
    }
  }
  return out;
}

const std::string& migration_sql(const std::string& name) {
  for (const auto& m : embedded_migrations()) {
    if (m.name == name) return m.sql;
  }
  throw std::logic_error("migration " + name + " is not compiled in");
}

namespace {

// The migrate command's connection (bounded connect, statements up to a minute).
std::unique_ptr<pqxx::connection> connect_migrate(const std::string& conninfo) {
  try {
    return std::make_unique<pqxx::connection>(session_conninfo(
        conninfo, {"outbox-relay migrate", std::chrono::seconds(10), std::chrono::seconds(60)}));
  } catch (const pqxx::broken_connection& e) {
    throw_connect_error(conninfo, "could not connect to " + redact_conninfo(conninfo), e.what());
  }
}

}  // namespace

bool add_order_column(const std::string& conninfo, const std::string& table) {
  const auto conn = connect_migrate(conninfo);
  const auto quoted = quote_qualified(table);
  pqxx::work tx(*conn);
  try {
    const bool had = tx.exec_params(
                           "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = "
                           "'seq' AND NOT attisdropped",
                           quoted)
                         .size() > 0;
    if (tx.exec_params("SELECT to_regclass($1)", quoted)[0][0].is_null()) {
      throw std::runtime_error("table \"" + table + "\" does not exist");
    }
    tx.exec("ALTER TABLE " + quoted + " ADD COLUMN IF NOT EXISTS seq bigint GENERATED ALWAYS AS IDENTITY");
    tx.exec("CREATE INDEX IF NOT EXISTS " + quote_ident(split_qualified(table).back() + "_seq_idx") + " ON " +
            quoted + " (seq)");
    tx.commit();
    return !had;
  } catch (const pqxx::sql_error& e) {
    throw std::runtime_error("could not add column \"seq\" to \"" + table + "\": " + e.what());
  }
}

std::vector<std::string> migrate(const std::string& conninfo) {
  const auto conn = connect_migrate(conninfo);
  {
    pqxx::nontransaction n(*conn);
    n.exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLockKey) + ")");
    n.exec(
        "CREATE TABLE IF NOT EXISTS outbox_relay_migrations ("
        " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
  }
  std::vector<std::string> applied;
  bool again = false;  // an earlier migration was applied again: so are the later ones
  for (const auto& m : embedded_migrations()) {
    pqxx::work tx(*conn);
    const bool recorded =
        !tx.exec_params("SELECT 1 FROM outbox_relay_migrations WHERE name = $1", m.name).empty();
    const auto missing = recorded ? missing_objects(tx, m) : std::vector<std::string>{};
    if (recorded && missing.empty() && !again) continue;
    try {
      tx.exec(m.sql);
    } catch (const pqxx::sql_error& e) {
      throw std::runtime_error("migration \"" + m.name + "\" failed: " + e.what());
    }
    tx.exec_params("INSERT INTO outbox_relay_migrations (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
                   m.name);
    tx.commit();
    if (!recorded) {
      spdlog::info("applied migration \"{}\"", m.name);
    } else if (!missing.empty()) {
      spdlog::warn("applied migration \"{}\" again: {} did not exist", m.name, joined(missing));
    } else {
      spdlog::info("applied migration \"{}\" again after an earlier one", m.name);
    }
    again = again || recorded;
    applied.push_back(m.name);
  }
  pqxx::nontransaction n(*conn);
  n.exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLockKey) + ")");
  return applied;
}

}  // namespace outbox_relay::pg
