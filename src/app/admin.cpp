#include "app/admin.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <ostream>
#include <pqxx/pqxx>

#include "app/relay.h"
#include "app/signals.h"
#include "core/duration.h"
#include "core/errors.h"
#include "kafka/probe.h"
#include "pg/common/conninfo.h"

namespace outbox_relay::app {

namespace {

constexpr std::chrono::milliseconds kStatementTimeout{30000};
constexpr std::chrono::milliseconds kKafkaTimeout{10000};
constexpr const char* kNotifyChannel = "outbox_relay";  // as sql/002_notify.sql and the poll source

// Short one-shot commands die on SIGINT/SIGTERM as any CLI tool does (main blocked them for the
// daemon's sigwait thread); nothing they do is left half-done, as each write is one transaction.
void default_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "\"" : ", \"") + i + "\"";
  return out;
}

const char* mode_name(const Options& o) { return o.mode == Mode::kWal ? "wal" : "poll"; }

void add(std::vector<CheckLine>& lines, CheckLine::Level level, std::string text) {
  lines.push_back({level, std::move(text)});
}

}  // namespace

std::string format_age(int64_t ms) {
  if (ms < 0) return "-";
  if (ms < 60'000) return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000.0);
  const int64_t s = ms / 1000;
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{:02}h", s / 86400, (s % 86400) / 3600);
}

std::vector<CheckLine> evaluate_server(const Options& o, const pg::ServerFacts& f) {
  using L = CheckLine::Level;
  std::vector<CheckLine> lines;
  const auto layout = o.layout();
  const bool poll = o.mode == Mode::kPoll;
  if (!f.table_exists) {
    add(lines, L::kFail,
        "table \"" + o.table + "\" does not exist (create it with `outbox-relay migrate` or set --table)");
  } else {
    std::vector<std::string> missing;
    for (const auto& c : layout.required_columns()) {
      if (!f.columns.count(c)) missing.push_back(c);
    }
    if (!missing.empty()) {
      add(lines, L::kFail,
          "table \"" + o.table + "\" lacks column(s) " + quoted_list(missing) + " required by the \"" +
              layout.name + "\" layout");
    } else {
      add(lines, L::kOk, "table \"" + o.table + "\" has the columns of the \"" + layout.name + "\" layout");
    }
    const bool has_sent = f.columns.count("sent_at") > 0;
    const bool has_failed = f.columns.count("failed_at") && f.columns.count("error");
    if (poll && o.on_sent == pg::OnSent::kMark && !has_sent) {
      add(lines, L::kFail, "--on-sent=mark needs a \"sent_at\" column in table \"" + o.table + "\"");
    }
    // What the configured mode does to the table, and so which privileges it needs.
    std::vector<std::pair<std::string, std::string>> needed = {{"SELECT", "to read events"}};
    if (poll) {
      needed.emplace_back("UPDATE", "to claim rows (SELECT ... FOR UPDATE) and mark or park them");
      if (o.on_sent == pg::OnSent::kDelete) {
        needed.emplace_back("DELETE", "for --on-sent=delete");
      } else if (!has_failed) {
        needed.emplace_back("DELETE", "to move poison events to outbox_relay_parked");
      }
    }
    if (o.retention.count() > 0 &&
        std::none_of(needed.begin(), needed.end(), [](const auto& n) { return n.first == "DELETE"; })) {
      needed.emplace_back("DELETE", "for --retention");
    }
    std::vector<std::string> have, lack;
    for (const auto& [priv, why] : needed) {
      const bool ok = priv == "SELECT" ? f.can_select : priv == "UPDATE" ? f.can_update : f.can_delete;
      if (ok) {
        have.push_back(priv);
      } else {
        lack.push_back(priv);
        add(lines, L::kFail,
            "role \"" + f.user + "\" lacks " + priv + " on table \"" + o.table + "\" (" + why + "): GRANT " +
                priv + " ON " + o.table + " TO " + f.user + " (or GRANT outbox_relay TO " + f.user + ")");
      }
    }
    if (lack.empty()) {
      std::string list;
      for (const auto& h : have) list += (list.empty() ? "" : ", ") + h;
      add(lines, L::kOk, "role \"" + f.user + "\" has " + list + " on table \"" + o.table + "\"");
    }
    if (poll && !has_failed) {
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
    if (poll && o.retention.count() > 0 && !has_sent) {
      add(lines, L::kWarn,
          "--retention has nothing to delete: table \"" + o.table +
              "\" has no sent_at column (rows are deleted)");
    }
  }
  if (!poll) {
    if (f.wal_level != "logical") {
      add(lines, L::kFail,
          "wal_level is \"" + f.wal_level +
              "\"; --mode=wal needs wal_level = logical (ALTER SYSTEM SET wal_level = logical, then restart "
              "PostgreSQL)");
    } else {
      add(lines, L::kOk, "wal_level is logical");
    }
    if (!f.superuser && !f.replication) {
      add(lines, L::kFail,
          "role \"" + f.user + "\" lacks the REPLICATION attribute that --mode=wal needs (ALTER ROLE " +
              f.user + " REPLICATION)");
    }
    if (f.slot_exists) {
      if (f.slot_plugin != "pgoutput") {
        add(lines, L::kFail, "slot \"" + o.slot + "\" uses plugin \"" + f.slot_plugin + "\", not pgoutput");
      } else {
        add(lines, L::kOk, "slot \"" + o.slot + "\" exists (pgoutput)");
      }
    } else if (o.require_slot) {
      add(lines, L::kFail, "slot \"" + o.slot + "\" does not exist and --require-slot forbids creating it");
    } else {
      add(lines, L::kWarn, "slot \"" + o.slot + "\" does not exist yet; the relay creates it on start");
    }
    if (f.publication_exists && !f.publication_has_table && f.table_exists) {
      add(lines, L::kFail,
          "publication \"" + o.publication + "\" does not include table \"" + o.table + "\"");
    } else if (!f.publication_exists && o.require_slot) {
      add(lines, L::kFail,
          "publication \"" + o.publication + "\" does not exist and --require-slot forbids creating it");
    } else if (!f.publication_exists) {
      add(lines, L::kWarn,
          "publication \"" + o.publication +
              "\" does not exist yet; the relay creates it (needs table ownership)");
    }
  }
  return lines;
}

int run_status(const Options& o, std::ostream& out) {
  default_signals();
  try {
    auto conn = pg::connect_side(o.db_url, "outbox-relay status", kStatementTimeout);
    const auto layout = o.layout();
    const auto s = pg::table_stats(*conn, o.table, layout, true);
    out << "table \"" << o.table << "\" at " << pg::redact_conninfo(o.db_url) << " (mode " << mode_name(o)
        << ", layout " << layout.name << ")\n";
    auto row = [&](const std::string& name, const std::string& value) {
      out << fmt::format("  {:<20}{}\n", name, value);
    };
    auto count = [](int64_t v) { return v < 0 ? std::string("-") : std::to_string(v); };
    if (o.mode == Mode::kWal) {
      // WAL mode publishes from the slot and never marks rows: the slot's lag is the backlog.
      row("backlog", "see the slot's lag (WAL mode does not mark rows)");
    } else {
      row("backlog rows", count(s.backlog_rows));
      row("oldest unsent age", s.backlog_rows > 0 ? format_age(s.oldest_unsent_age_ms) : "-");
    }
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
    } else if (o.mode == Mode::kWal) {
      out << "  slot \"" << o.slot << "\": does not exist\n";
    }
    return kExitOk;
  } catch (const core::ConfigError& e) {
    spdlog::error("status: {}", e.what());
    return kExitConfig;
  } catch (const std::exception& e) {
    spdlog::error("status: {}", e.what());
    return kExitFailure;
  }
}

int run_check(const Options& o, std::ostream& out) {
  default_signals();
  using L = CheckLine::Level;
  std::vector<CheckLine> lines;
  add(lines, L::kOk,
      fmt::format("configuration is valid (mode {}, table \"{}\", layout {})", mode_name(o), o.table,
                  o.layout_name));
  try {
    auto conn = pg::connect_side(o.db_url, "outbox-relay check", kStatementTimeout);
    const auto f = pg::server_facts(*conn, o.table, o.slot, o.publication);
    add(lines, L::kOk,
        "postgresql: connected to " + pg::redact_conninfo(o.db_url) + " as \"" + f.user + "\" (server " +
            f.server_version + ")");
    for (auto& l : evaluate_server(o, f)) lines.push_back(std::move(l));
  } catch (const std::exception& e) {
    add(lines, L::kFail, std::string("postgresql: ") + e.what());
  }
  try {
    const auto info = kafka::probe_cluster(o.producer_properties(), kKafkaTimeout);
    add(lines, L::kOk, fmt::format("kafka: {} broker(s) answer at {}", info.brokers, o.kafka_brokers));
    std::vector<std::string> topics;
    const auto tmpl = o.layout().topic_template;
    if (tmpl.find('{') == std::string::npos && tmpl.find('$') == std::string::npos) topics.push_back(tmpl);
    if (!o.dlq_topic.empty()) topics.push_back(o.dlq_topic);
    for (const auto& t : topics) {
      if (info.topics.count(t)) {
        add(lines, L::kOk, "kafka: topic \"" + t + "\" exists");
      } else {
        add(lines, L::kWarn,
            "kafka: topic \"" + t + "\" does not exist (fine only if the broker auto-creates topics)");
      }
    }
  } catch (const std::exception& e) {
    add(lines, L::kFail, std::string("kafka: ") + e.what());
  }
  int failures = 0;
  for (const auto& l : lines) {
    const char* tag = l.level == L::kOk ? "ok  " : l.level == L::kWarn ? "warn" : "FAIL";
    out << tag << "  " << l.text << '\n';
    failures += l.level == L::kFail ? 1 : 0;
  }
  if (failures > 0) {
    out << "check failed: " << failures << " problem(s)\n";
    return kExitFailure;
  }
  out << "check passed\n";
  return kExitOk;
}

int run_replay(const Options& o, std::ostream& out) {
  default_signals();
  if (o.mode == Mode::kWal) {
    spdlog::error(
        "replay: --mode=wal publishes from the WAL, not from table state; replay works with --mode=poll");
    return kExitConfig;
  }
  try {
    auto conn = pg::connect_side(o.db_url, "outbox-relay replay", kStatementTimeout);
    pg::ReplaySelection sel;
    sel.from = o.replay_from;
    sel.to = o.replay_to;
    sel.ids = o.replay_ids;
    sel.failed = o.replay_failed;
    const auto r = pg::replay(*conn, o.table, o.layout(), sel, kNotifyChannel);
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
  } catch (const core::ConfigError& e) {
    spdlog::error("replay: {}", e.what());
    return kExitConfig;
  } catch (const std::exception& e) {
    spdlog::error("replay: {}", e.what());
    return kExitFailure;
  }
}

int run_cleanup(const Options& o, std::ostream& out) {
  std::atomic<bool> stop{false};
  SignalThread signals(stop, nullptr);
  try {
    auto conn = pg::connect_side(o.db_url, "outbox-relay cleanup", kStatementTimeout);
    const auto by = o.mode == Mode::kWal ? pg::RetentionBy::kCreatedAt : pg::RetentionBy::kSentAt;
    const auto n = pg::delete_older_than(*conn, o.table, o.layout(), by, o.retention, 1000,
                                         [&stop] { return !stop.load(); });
    out << "cleanup: deleted " << n << " row(s) of \"" << o.table << "\" "
        << (by == pg::RetentionBy::kSentAt ? "sent" : "created") << " more than "
        << core::format_duration(o.retention) << " ago" << (stop.load() ? " (interrupted)" : "") << '\n';
    return kExitOk;
  } catch (const core::ConfigError& e) {
    spdlog::error("cleanup: {}", e.what());
    return kExitConfig;
  } catch (const std::exception& e) {
    spdlog::error("cleanup: {}", e.what());
    return kExitFailure;
  }
}

}  // namespace outbox_relay::app
