#include "pg/common/parking.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "pg/common/migrate.h"
#include "pg/decode/text_codec.h"

namespace outbox_relay::pg {

namespace {

constexpr const char* kParkedMigration = "003_parked.sql";

nlohmann::json text_value(const std::optional<std::string>& v) {
  if (!v) return nullptr;
  return text_or_hex(*v);
}

nlohmann::json text_value(const std::string& v) { return text_or_hex(v); }

}  // namespace

const std::string& parked_id(const core::Batch& batch, const core::Settlement::Park& p) {
  return p.rejected ? batch.rejected[p.index].row.id : batch.messages[p.index].id;
}

std::string parked_rows_json(const core::Batch& batch, const core::Settlement& settlement,
                             const core::Layout& layout, const std::string& source) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& p : settlement.park) {
    if (!p.rejected) {
      const auto& m = batch.messages[p.index];
      nlohmann::json headers = nlohmann::json::object();
      for (const auto& [k, v] : m.headers) headers[text_or_hex(k)] = text_value(v);
      rows.push_back({{"id", text_value(m.id)},
                      {"topic", text_value(m.topic)},
                      {"key", text_value(m.key)},
                      {"payload", text_value(m.value)},
                      {"headers", std::move(headers)},
                      {"error", text_value(p.reason)},
                      {"source", source},
                      {"rejected", false}});
      continue;
    }
    const auto& r = batch.rejected[p.index].row;
    auto col = [&r](const std::string& name) -> std::optional<std::string> {
      if (name.empty()) return std::nullopt;
      const auto* v = r.find(name);
      return v != nullptr ? *v : std::nullopt;
    };
    nlohmann::json columns = nlohmann::json::object();
    for (const auto& c : r.columns) columns[c.name] = text_value(c.value);
    rows.push_back({{"id", text_value(r.id)},
                    {"topic", text_value(col(layout.topic_column))},
                    {"key", text_value(col(layout.key_column))},
                    {"payload", text_value(col(layout.value_column))},
                    {"headers", std::move(columns)},
                    {"error", text_value(p.reason)},
                    {"source", source},
                    {"rejected", true}});
  }
  return rows.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string insert_parked_sql(int param, const std::string& deleted, bool once) {
  const std::string headers =
      deleted.empty() ? "x.headers" : "CASE WHEN x.rejected THEN d.row || x.headers ELSE x.headers END";
  return "INSERT INTO outbox_relay_parked (id, topic, key, payload, headers, error, source) "
         "SELECT x.id, x.topic, x.key, x.payload, " +
         headers + ", x.error, x.source FROM jsonb_to_recordset($" + std::to_string(param) +
         "::jsonb) AS x(id text, topic text, key text, payload text, headers jsonb, error text, source text, "
         "rejected boolean)" +
         (deleted.empty() ? "" : " JOIN " + deleted + " AS d ON d.id = x.id") +
         (once ? " WHERE NOT EXISTS (SELECT 1 FROM outbox_relay_parked p WHERE p.id = x.id AND p.source = "
                 "x.source)"
               : "");
}

const std::string& parked_table_ddl() { return migration_sql(kParkedMigration); }

void ensure_parked_table(const TextQuery& query) {
  const auto r = query("SELECT to_regclass('outbox_relay_parked') IS NOT NULL", {});
  if (!r.empty() && r[0][0] == std::optional<std::string>("t")) return;
  query(parked_table_ddl(), {});
}

}  // namespace outbox_relay::pg
