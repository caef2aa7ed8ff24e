// `outbox-relay cleanup`: one --retention pass, then exit. SIGINT/SIGTERM end it between batches.

#include <atomic>
#include <ostream>

#include "app/commands/commands.h"
#include "app/exit_codes.h"
#include "app/modes.h"
#include "app/signals.h"
#include "core/duration.h"

namespace outbox_relay::app {

int run_cleanup(const Options& o, std::ostream& out) {
  std::atomic<bool> stop{false};
  SignalThread signals(stop, nullptr);
  return run_guarded("cleanup", [&] {
    auto conn = pg::connect_side(o.db_url, "outbox-relay cleanup", kCommandStatementTimeout);
    const auto by = mode_for(o.mode).retention_by();
    const auto n = pg::delete_older_than(*conn, o.table, o.layout(), by, o.retention, kRetentionBatch,
                                         [&stop] { return !stop.load(); });
    out << "cleanup: deleted " << n << " row(s) of \"" << o.table << "\" "
        << (by == pg::RetentionBy::kSentAt ? "sent" : "created") << " more than "
        << core::format_duration(o.retention) << " ago" << (stop.load() ? " (interrupted)" : "") << '\n';
    return kExitOk;
  });
}

}  // namespace outbox_relay::app
