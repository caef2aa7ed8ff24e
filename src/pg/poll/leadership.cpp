#include "pg/poll/leadership.h"

#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

namespace outbox_relay::pg {

std::string lead_lock_key(const std::string& table, const PollSourceConfig& cfg, std::size_t session) {
  const auto base =
      "outbox-relay:" + table + ":" + std::to_string(cfg.shard_index) + "/" + std::to_string(cfg.shard_count);
  return session == 0 ? base : base + ":session" + std::to_string(session);
}

bool try_lead_lock(pqxx::connection_base& c, const std::string& key) {
  pqxx::nontransaction n(c);
  return n.exec_params("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key)[0][0].as<bool>();
}

void LeadLog::note(bool leading, const PollSourceConfig& cfg, const std::string& description) {
  if (leading) {
    spdlog::info("leading {}{}", description,
                 cfg.shard_count > 1 ? fmt::format(" shard {}/{}", cfg.shard_index, cfg.shard_count) : "");
    standby_logged_ = false;
  } else if (!standby_logged_) {
    spdlog::info("another relay leads table \"{}\"; standing by", cfg.table);
    standby_logged_ = true;
  }
}

}  // namespace outbox_relay::pg
