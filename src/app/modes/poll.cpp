// --mode poll: claims rows with SELECT ... FOR UPDATE SKIP LOCKED and deletes or marks them once
// Kafka acknowledged them (pg/poll/). Its backlog is the table's unsent rows.

#include "app/format.h"
#include "app/modes.h"
#include "core/routing.h"
#include "pg/poll/poll_source.h"

namespace outbox_relay::app {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class PollMode final : public ModeDescription {
 public:
  [[nodiscard]] std::string_view name() const override { return "poll"; }

  [[nodiscard]] std::unique_ptr<core::OutboxSource> make_source(const Options& o) const override {
    pg::PollSourceConfig c;
    c.conninfo = o.db_url;
    c.table = o.table;
    c.on_sent = o.on_sent;
    c.shard_index = o.shard_index;
    c.shard_count = o.shard_count;
    c.skip_blocked_keys = o.on_poison == core::PoisonPolicy::kBlock;
    c.order_column = o.order_by;
    c.allow_unordered = o.unordered;
    c.session_timeout = o.session_timeout;
    c.async_commit = !o.transactions.has_value();
    // block policy sends in waves, one batch at a time: a second session would only hold a connection
    c.pipeline = o.pipeline && o.on_poison != core::PoisonPolicy::kBlock;
    return std::make_unique<pg::PollSource>(std::move(c), core::Router(o.layout()));
  }

  void validate(const Options& /*o*/) const override {}

  // The table as the server resolves an unquoted name in the default schema: "Outbox" and
  // "public.outbox" are the same relay; each shard is a relay of its own.
  [[nodiscard]] std::string identity(const Options& o) const override {
    std::string table = o.table.find('"') == std::string::npos ? lower(o.table) : o.table;
    if (table.find('.') == std::string::npos) table = "public." + table;
    return "outbox-relay.poll." + database_name(o) + "." + table + "." + std::to_string(o.shard_index) +
           "of" + std::to_string(o.shard_count);
  }

  void collect_stats(pqxx::connection& c, const Options& o, core::Metrics& m) const override {
    const auto s = pg::table_stats(c, o.table, o.layout(), false);
    m.backlog_rows.store(s.backlog_rows);
    m.oldest_unsent_age_ms.store(s.backlog_rows > 0 ? s.oldest_unsent_age_ms : 0);
    m.failed_rows.store(s.failed_rows);
  }

  void forget_stats(core::Metrics& m) const override {
    m.backlog_rows.store(-1);
    m.oldest_unsent_age_ms.store(-1);
    m.failed_rows.store(-1);
  }

  void status_backlog(const pg::TableStats& s, const StatusRow& row) const override {
    row("backlog rows", s.backlog_rows < 0 ? std::string("-") : std::to_string(s.backlog_rows));
    row("oldest unsent age", s.backlog_rows > 0 ? format_age(s.oldest_unsent_age_ms) : "-");
  }

  [[nodiscard]] bool reports_missing_slot() const override { return false; }

  void check_table(const Options& o, const pg::ServerFacts& f, std::vector<CheckLine>& lines) const override {
    using L = CheckLine::Level;
    const bool has_sent = f.columns.count("sent_at") > 0;
    const bool has_failed = f.columns.count("failed_at") && f.columns.count("error");
    if (o.on_sent == pg::OnSent::kMark && !has_sent) {
      add(lines, L::kFail, "--on-sent=mark needs a \"sent_at\" column in table \"" + o.table + "\"");
    }
    // Claiming, marking and parking write to the table.
    std::vector<std::pair<std::string, std::string>> needed = {
        {"SELECT", "to read events"},
        {"UPDATE", "to claim rows (SELECT ... FOR UPDATE) and mark or park them"}};
    if (o.on_sent == pg::OnSent::kDelete) {
      needed.emplace_back("DELETE", "for --on-sent=delete");
    } else if (!has_failed) {
      needed.emplace_back("DELETE", "to move poison events to outbox_relay_parked");
    }
    check_grants(o, f, std::move(needed), lines);
    if (!has_failed) {
      if (!f.parked_table_exists) {
        add(lines, L::kFail,
            "table \"" + o.table +
                "\" has no failed_at/error columns and outbox_relay_parked does not exist (run `outbox-relay "
                "migrate`)");
      } else if (!f.can_insert_parked) {
        add(lines, L::kFail,
            "role \"" + f.user + "\" lacks INSERT on outbox_relay_parked (to park poison events)");
      }
    }
    if (o.retention.count() > 0 && !has_sent) {
      add(lines, L::kWarn,
          "--retention has nothing to delete: table \"" + o.table +
              "\" has no sent_at column (rows are deleted)");
    }
  }

  void check_server(const Options& /*o*/, const pg::ServerFacts& /*f*/,
                    std::vector<CheckLine>& /*lines*/) const override {}

  [[nodiscard]] pg::RetentionBy retention_by() const override { return pg::RetentionBy::kSentAt; }

  [[nodiscard]] std::optional<std::string> replay_refusal() const override { return std::nullopt; }
};

}  // namespace

const ModeDescription& poll_mode() {
  static const PollMode mode;
  return mode;
}

}  // namespace outbox_relay::app
