// `outbox-relay status`: the table's counts and the slot, on a connection of its own.

#include <fmt/format.h>

#include <ostream>

#include "app/commands/commands.h"
#include "app/exit_codes.h"
#include "app/modes.h"
#include "app/signals.h"
#include "pg/common/conninfo.h"

namespace outbox_relay::app {

int run_status(const Options& o, std::ostream& out) {
  default_signals();
  return run_guarded("status", [&] {
    const auto& mode = mode_for(o.mode);
    auto conn = pg::connect_side(o.db_url, "outbox-relay status", kCommandStatementTimeout);
    const auto layout = o.layout();
    const auto s = pg::table_stats(*conn, o.table, layout, true);
    out << "table \"" << o.table << "\" at " << pg::redact_conninfo(o.db_url) << " (mode " << mode.name()
        << ", layout " << layout.name << ")\n";
    auto row = [&](const std::string& name, const std::string& value) {
      out << fmt::format("  {:<20}{}\n", name, value);
    };
    auto count = [](int64_t v) { return v < 0 ? std::string("-") : std::to_string(v); };
    mode.status_backlog(s, row);
    row("failed rows", s.failed_rows < 0 ? "- (no failed_at column)" : count(s.failed_rows));
    row("sent rows (marked)", s.sent_rows < 0 ? "- (no sent_at column)" : count(s.sent_rows));
    row("parked rows", s.parked_rows < 0 ? "- (no outbox_relay_parked table)"
                                         : count(s.parked_rows) + " (outbox_relay_parked)");
    const auto slot = pg::slot_stats(*conn, o.slot);
    if (slot.exists) {
      out << fmt::format("  slot \"{}\": {}, plugin {}, confirmed {}, lag {} bytes{}\n", o.slot,
                         slot.active ? "active" : "inactive", slot.plugin,
                         slot.confirmed_flush_lsn.empty() ? "-" : slot.confirmed_flush_lsn, slot.lag_bytes,
                         slot.wal_status.empty() ? "" : ", wal_status " + slot.wal_status);
    } else if (mode.reports_missing_slot()) {
      out << "  slot \"" << o.slot << "\": does not exist\n";
    }
    for (const auto& l : mode.failover(*conn, o)) {
      out << "  " << (l.level == CheckLine::Level::kOk ? "" : "warning: ") << l.text << '\n';
    }
    if (o.transactions && !o.kafka_brokers.empty()) {
      try {
        row("exactly-once", describe_exactly_once(o, std::chrono::seconds(10)));
      } catch (const std::exception& e) {
        row("exactly-once", std::string("checkpoint unreadable: ") + e.what());
      }
    }
    return kExitOk;
  });
}

}  // namespace outbox_relay::app
