#pragma once
// Parking: where the events of a batch that can never be published (poison messages, rows the router
// rejected) are kept when the outbox table has no failed_at/error columns (a Debezium table, WAL mode,
// logical messages): table outbox_relay_parked, whose DDL is migration sql/003_parked.sql only. Both
// sources park through these functions, so a parked event looks the same whichever mode parked it:
//   id, topic, key, payload   text; bytes that are not valid UTF-8 (a bytea payload) in bytea hex form
//                             ("\x00ff..."), so that any payload parks and none is cut at a NUL byte
//   headers                   a message's record headers, or every column of a rejected row (nothing
//                             of the event is lost: it may exist nowhere else)
//   error, source             the reason, and which source parked it ("table outbox", "wal slot s")

#include <string>

#include "core/batch.h"
#include "core/routing.h"
#include "core/settlement.h"
#include "pg/common/text_query.h"

namespace outbox_relay::pg {

// The id (as text) of one parked event.
[[nodiscard]] const std::string& parked_id(const core::Batch& batch, const core::Settlement::Park& p);

// The events of settlement.park as the JSON array insert_parked_sql() reads.
[[nodiscard]] std::string parked_rows_json(const core::Batch& batch, const core::Settlement& settlement,
                                           const core::Layout& layout, const std::string& source);

// INSERT INTO outbox_relay_parked ... SELECT ... FROM jsonb_to_recordset($<param>::jsonb) AS x(id, ...).
// With `deleted`, the name of a relation of (id text, row jsonb) holding the rows just deleted from the
// outbox (poll mode): only the events found there are parked, and a rejected row's headers get every
// column of its deleted row, the ones the relay does not read included (the text forms it read win).
// With `once`, an event parked already by the same source is not added again.
[[nodiscard]] std::string insert_parked_sql(int param, const std::string& deleted = "", bool once = false);

// The text of migration 003_parked.sql as compiled in (std::logic_error if it is not).
[[nodiscard]] const std::string& parked_table_ddl();

// Creates outbox_relay_parked from parked_table_ddl() when it does not exist (a database that never
// ran `outbox-relay migrate`). Errors are the query's.
void ensure_parked_table(const TextQuery& query);

}  // namespace outbox_relay::pg
