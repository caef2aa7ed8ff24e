#pragma once
// One description per source mode (--mode): everything the app layer does differently for a mode is
// answered here, so the commands, the operations threads and option validation never branch on it.
// A new source (say, a MySQL binlog) is a new Mode value in app/options.h, one ModeDescription in
// app/modes/, and its entry in mode_for() (app/modes.cpp).

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/check_line.h"
#include "app/options.h"
#include "core/metrics.h"
#include "core/source.h"
#include "pg/common/maintenance.h"

namespace outbox_relay::app {

class ModeDescription {
 public:
  virtual ~ModeDescription() = default;

  // The --mode value; also the mode in logs, `status`, `check` and /metrics' build_info.
  [[nodiscard]] virtual std::string_view name() const = 0;

  // The source the dispatcher reads from, configured from the options. Connects lazily (the source's
  // own contract): constructing it does no I/O.
  [[nodiscard]] virtual std::unique_ptr<core::OutboxSource> make_source(const Options& o) const = 0;

  // The option rules of this mode: throws core::ConfigError with one line naming the flag this mode
  // refuses (e.g. --shard in WAL mode). Called by validate() for the daemon and `check`.
  virtual void validate(const Options& o) const = 0;

  // The mode's gauges for /metrics, from one short query on the statistics thread's own connection
  // (`c`); throws what pqxx throws (the caller reconnects and calls forget_stats). Sets only this
  // mode's gauges: the others stay -1 and are left out of /metrics.
  virtual void collect_stats(pqxx::connection& c, const Options& o, core::Metrics& m) const = 0;
  // Makes this mode's gauges unknown (-1) after a failed statistics query.
  virtual void forget_stats(core::Metrics& m) const = 0;

  // `status`: the backlog rows after the header line, written with `row(name, value)`.
  using StatusRow = std::function<void(const std::string& name, const std::string& value)>;
  virtual void status_backlog(const pg::TableStats& s, const StatusRow& row) const = 0;
  // `status`: whether a missing slot is worth a line (it is where the mode keeps its position).
  [[nodiscard]] virtual bool reports_missing_slot() const = 0;

  // `check`, with the table present: what the mode needs of its columns and grants.
  virtual void check_table(const Options& o, const pg::ServerFacts& f,
                           std::vector<CheckLine>& lines) const = 0;
  // `check`: what the mode needs of the server beyond the table (wal_level, slot, publication).
  virtual void check_server(const Options& o, const pg::ServerFacts& f,
                            std::vector<CheckLine>& lines) const = 0;

  // Exactly-once: this relay's identity (the default --transactional-id and checkpoint key): the same
  // for every relay that may stand in for it (an HA pair), distinct for relays publishing different
  // events side by side (tables, shards, slots). Never holds the host: it survives a failover.
  [[nodiscard]] virtual std::string identity(const Options& o) const = 0;

  // `check` and `status`: whether the mode's position survives a failover of the primary (WAL mode:
  // failover slots), on `c`; nothing for modes that need nothing there. Throws what pqxx throws.
  [[nodiscard]] virtual std::vector<CheckLine> failover(pqxx::connection& /*c*/, const Options& /*o*/) const {
    return {};
  }

  // Which rows --retention and `cleanup` delete (kRetentionBatch rows per transaction).
  [[nodiscard]] virtual pg::RetentionBy retention_by() const = 0;

  // `replay`: why this mode cannot replay rows (the error line), or nullopt when it can.
  [[nodiscard]] virtual std::optional<std::string> replay_refusal() const = 0;
};

const ModeDescription& mode_for(Mode mode);

// The descriptions themselves (app/modes/poll.cpp, app/modes/wal.cpp).
const ModeDescription& poll_mode();
const ModeDescription& wal_mode();

// The mode whose name() is `name`; nullopt for an unknown name.
std::optional<Mode> mode_named(std::string_view name);

// Every mode's name(), in the order --help lists them.
std::vector<std::string> mode_names();

// --- shared by the mode descriptions (app/modes/), validate() and the retention passes ---

// The database a relay's --db-url names (dbname, else the user name, as libpq defaults), for identities.
std::string database_name(const Options& o);

// Rows a --retention or `cleanup` pass deletes per transaction (SKIP LOCKED, so never waits on the relay).
inline constexpr int kRetentionBatch = 1000;

// The error for --on-poison=block where it cannot work: a mode with one position for all keys, or a
// layout without failed_at.
inline constexpr const char* kBlockPolicyRefused =
    "--on-poison=block needs poll mode and a table with failed_at (the default layout): a WAL slot has one "
    "position for all keys";

// `check`: appends a FAIL line per privilege in `needed` (privilege, why) that the role lacks, or one
// ok line listing them all. Adds DELETE for --retention when `needed` has none.
void check_grants(const Options& o, const pg::ServerFacts& f,
                  std::vector<std::pair<std::string, std::string>> needed, std::vector<CheckLine>& lines);

}  // namespace outbox_relay::app
