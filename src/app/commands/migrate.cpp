// `outbox-relay migrate`: applies sql/ migrations not applied yet (pg/common/migrate.h).

#include <spdlog/spdlog.h>

#include "app/commands/commands.h"
#include "app/exit_codes.h"
#include "pg/common/migrate.h"

namespace outbox_relay::app {

int run_migrate(const Options& o) {
  return run_guarded("migrate failed", [&] {
    const auto applied = pg::migrate(o.db_url);
    spdlog::info("schema is current ({} migrations applied now)", applied.size());
    if (o.layout_name == "debezium") {
      // Debezium's table has no write order of its own (uuid id): poll mode claims by this column.
      const bool added = pg::add_order_column(o.db_url, o.table);
      spdlog::info("table \"{}\" {} ordering column \"seq\": run poll mode with --order-by seq", o.table,
                   added ? "has a new" : "already has its");
    }
    return kExitOk;
  });
}

}  // namespace outbox_relay::app
