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
    return kExitOk;
  });
}

}  // namespace outbox_relay::app
