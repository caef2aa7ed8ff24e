#include "pg/poll/claim_sql.h"

#include "pg/common/parking.h"
#include "pg/common/sql_text.h"

namespace outbox_relay::pg {

ClaimStatements claim_statements(const core::Layout& layout, const TableShape& table,
                                 const PollSourceConfig& cfg) {
  ClaimStatements s;
  const auto quoted_table = table.quoted();
  const auto id = quote_ident(layout.id_column);
  const auto id_type = table.type_of(layout.id_column);
  const auto& order_column = cfg.order_column.empty() ? layout.id_column : cfg.order_column;
  s.watermark = order_column == layout.id_column &&
                (id_type == "bigint" || id_type == "integer" || id_type == "smallint");
  s.failed_columns = table.has("failed_at") && table.has("error");

  std::string select = "SELECT ";
  bool first = true;
  for (const auto& col : layout.columns()) {
    if (!table.has(col)) continue;  // optional, absent
    if (!first) select += ", ";
    first = false;
    const auto q = quote_ident(col);
    if (col == layout.timestamp_column) {
      select += "(extract(epoch FROM o." + q + ") * 1000)::bigint::text AS " + q;
    } else {
      select += "o." + q + "::text AS " + q;
    }
  }
  std::string pending;
  if (table.has("sent_at")) pending += " AND o.sent_at IS NULL";
  if (s.failed_columns) pending += " AND o.failed_at IS NULL";
  const auto key = quote_ident(layout.key_column);
  if (cfg.shard_count > 1) {
    pending += " AND mod(abs(hashtextextended(o." + key + "::text, 0)), " + std::to_string(cfg.shard_count) +
               ") = " + std::to_string(cfg.shard_index);
  }
  if (cfg.skip_blocked_keys) {
    pending += " AND NOT EXISTS (SELECT 1 FROM " + quoted_table +
               " AS f WHERE f.failed_at IS NOT NULL AND f." + key + " = o." + key + " AND f." + id + " < o." +
               id + ")";
  }
  // ORDER BY the column itself (o.id), not its text alias: as text, "10" sorts before "9".
  const auto order = quote_ident(order_column);
  s.claim = select + " FROM " + quoted_table + " AS o WHERE true" + pending +
            (s.watermark ? " AND o." + id + " > $2::bigint" : "") + " ORDER BY o." + order +
            (order == id ? "" : ", o." + id) + " LIMIT $1 FOR UPDATE OF o SKIP LOCKED";
  if (s.watermark) {
    s.snapshot_xmax = "SELECT txid_snapshot_xmax(txid_current_snapshot())::text";
    // Whether every transaction up to the candidate's xmax has ended, and the first claimable row at
    // or below the candidate (in flight on the other session, or skipped by a claim's LIMIT race).
    s.advance = "SELECT txid_snapshot_xmin(txid_current_snapshot()) >= $1::bigint, (SELECT min(o." + id +
                ")::text FROM " + quoted_table + " AS o WHERE true" + pending + " AND o." + id +
                " > $2::bigint AND o." + id + " <= $3::bigint)";
  }

  const std::string ids = id + " = ANY($1::" + id_type + "[])";
  if (cfg.on_sent == OnSent::kDelete) {
    s.done = "DELETE FROM " + quoted_table + " WHERE " + ids;
  } else {
    s.done = "UPDATE " + quoted_table + " SET sent_at = now() WHERE " + ids;
  }
  if (s.failed_columns) {
    s.park = "UPDATE " + quoted_table + " SET failed_at = now(), error = $2" +
             (table.has("attempts") ? ", attempts = attempts + 1" : "") + " WHERE " + id +
             " = $1::" + id_type;
  } else {
    // Only rows still in the table are parked: one deleted meanwhile (by an operator) is not parked twice.
    s.park = "WITH gone AS (DELETE FROM " + quoted_table + " AS o WHERE " + ids + " RETURNING o." + id +
             "::text AS id, to_jsonb(o) AS row) " + insert_parked_sql(2, "gone");
  }
  return s;
}

}  // namespace outbox_relay::pg
