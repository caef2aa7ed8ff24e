// `outbox-relay replay`: makes chosen sent (or --failed) rows pending again and NOTIFYs, so a running
// relay publishes them once more. Modes that do not publish from table state refuse it.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ostream>

#include "app/commands/commands.h"
#include "app/exit_codes.h"
#include "app/format.h"
#include "app/modes.h"
#include "app/signals.h"
#include "pg/poll/poll_config.h"

namespace outbox_relay::app {

int run_replay(const Options& o, std::ostream& out) {
  default_signals();
  if (const auto refusal = mode_for(o.mode).replay_refusal()) {
    spdlog::error("{}", *refusal);
    return kExitConfig;
  }
  return run_guarded("replay", [&] {
    auto conn = pg::connect_side(o.db_url, "outbox-relay replay", kCommandStatementTimeout);
    pg::ReplaySelection sel;
    sel.from = o.replay_from;
    sel.to = o.replay_to;
    sel.ids = o.replay_ids;
    sel.failed = o.replay_failed;
    // The channel the poll source LISTENs on, so a running relay claims the rows at once.
    const auto r = pg::replay(*conn, o.table, o.layout(), sel, pg::PollSourceConfig{}.notify_channel);
    const char* what = o.replay_failed ? "failed" : "sent";
    out << "replay: " << r.reset << " " << what << " row(s) of \"" << o.table
        << "\" are pending again; a running relay publishes them now\n";
    if (!o.replay_ids.empty()) {
      std::vector<std::string> skipped;
      for (const auto& id : o.replay_ids) {
        if (std::find(r.reset_ids.begin(), r.reset_ids.end(), id) == r.reset_ids.end()) skipped.push_back(id);
      }
      if (!skipped.empty())
        out << "replay: not " << what << " or absent, left alone: " << quoted_list(skipped) << '\n';
    }
    return kExitOk;
  });
}

}  // namespace outbox_relay::app
