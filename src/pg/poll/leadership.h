#pragma once
// Who publishes a table (or a shard of it) in poll mode: the relay whose every session holds its
// session advisory lock, keyed by table, shard and session. The server releases a lock when its session
// ends, so a crashed or cut-off leader's lead passes on at once; a standby that got the first lock keeps
// it and waits for the others, since the old leader's other session may still hold a claim whose batch
// is in flight.

#include <cstddef>
#include <string>

#include "pg/poll/poll_config.h"

namespace pqxx {
class connection_base;
}

namespace outbox_relay::pg {

// The advisory lock key text of `session` (0, 1, ...) for this table and shard. `table` is the table's
// identity as the catalog resolves it (schema.name), not --table as written: relays naming one table
// differently ("outbox", "public.outbox") must contend for one lead.
[[nodiscard]] std::string lead_lock_key(const std::string& table, const PollSourceConfig& cfg,
                                        std::size_t session);

// pg_try_advisory_lock on `key` (hashed) in its own statement. Throws pqxx errors.
[[nodiscard]] bool try_lead_lock(pqxx::connection_base& c, const std::string& key);

// Logs a change between leading and standing by, once per change.
class LeadLog {
 public:
  void note(bool leading, const PollSourceConfig& cfg, const std::string& description);

 private:
  bool standby_logged_ = false;
};

}  // namespace outbox_relay::pg
