#include "app/cli.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <variant>

#include "app/modes.h"
#include "app/secrets.h"
#include "core/errors.h"

namespace outbox_relay::app {

namespace {

// Where a flag's value goes: a text, a list, a switch (a flag without a value) or a number.
using Target = std::variant<std::string RawOptions::*, std::vector<std::string> RawOptions::*,
                            bool RawOptions::*, std::size_t RawOptions::*>;

struct Flag {
  const char* name;  // long name: --NAME, environment OUTBOX_RELAY_NAME (see env_name), file key NAME
  Target target;
  const char* help;
  std::vector<std::string> choices = {};          // the values allowed; empty: any
  std::optional<std::pair<int, int>> range = {};  // a number's allowed range (inclusive)
  const char* short_name = nullptr;               // e.g. "-X"
  char delimiter = '\0';                          // a list flag: one value may hold several items
  bool show_default = true;                       // --help and the effective config show the default
};

// The daemon's flags, in --help order. Every flag is also an OUTBOX_RELAY_* variable and a key of the
// --config file; validate() (app/options.cpp) gives the text its meaning.
const std::vector<Flag>& flags() {
  using R = RawOptions;
  static const std::vector<Flag> table = {
      {"db-url", &R::db_url, "PostgreSQL connection URL or key=value string (the password is never logged)"},
      {"kafka-brokers", &R::kafka_brokers, "Kafka bootstrap servers, host:port[,host:port]"},
      {"mode", &R::mode, "Source: poll (claim rows) or wal (logical replication)", mode_names()},
      {"table", &R::table, "Outbox table, optionally schema-qualified"},
      {"layout",
       &R::layout,
       "Table layout: default (sql/ schema) or debezium (id, aggregatetype, aggregateid, type, payload)",
       {"default", "debezium"}},
      {"topic-template", &R::topic_template,
       "Topic for rows without a topic column value; {column} and ${routedByValue} expand (default: "
       "outbox.{aggregate_type}, debezium: outbox.event.${routedByValue})"},
      {"route-by", &R::route_by, "Column that ${routedByValue} stands for (debezium route.by.field)"},
      {"order-by", &R::order_by,
       "Poll mode: claim in order of this column (default: id); needed for a uuid id, e.g. a Debezium table"},
      {"unordered", &R::unordered,
       "Poll mode: claim a table whose order column is not an ordering (a uuid id) anyway; one aggregate's "
       "events may then be published out of order"},
      {"header-column", &R::header_columns, "Also send COLUMN as a header, COLUMN[:HEADER] (repeatable)"},
      {"batch-size", &R::batch_size, "Most events claimed and published per batch", {}, std::pair{1, 100000}},
      {"batch-bytes", &R::batch_bytes,
       "Also bound a batch to about this much memory in records (learned from the sizes seen; at most a "
       "quarter of --memory-budget; 0B: that quarter)"},
      {"memory-budget", &R::memory_budget,
       "Memory for events held in the relay: the WAL read-ahead, each of two batches in flight and the "
       "Kafka producer's copy, a quarter each; a WAL transaction larger than a batch is sent in chunks as "
       "it streams in; 4MiB to 4GiB (default 8MiB; 32MiB with --exactly-once, whose claims grow under a "
       "backlog)"},
      {"poll-interval", &R::poll_interval, "Longest wait between polls when no NOTIFY arrives"},
      {"session-timeout", &R::session_timeout,
       "The server ends a dead, paused or partitioned relay's session after this, freeing its claim and lead "
       "(poll) or its slot (WAL: wal_sender_timeout) for a standby; keep it above message.timeout.ms (30s); "
       "5s to 1d"},
      {"on-sent",
       &R::on_sent,
       "What to do with a published row: delete it, or mark it (set sent_at)",
       {"delete", "mark"}},
      {"pipeline",
       &R::pipeline,
       "Claim and send the next batch while the previous one awaits Kafka's acknowledgements (poll mode: "
       "a second database session); off: one batch at a time",
       {"on", "off"}},
      {"drain-timeout", &R::drain_timeout, "On SIGTERM, how long to wait for in-flight deliveries"},
      {"exit-when-idle", &R::exit_when_idle, "Exit 0 once no unsent event is left"},
      {"on-poison",
       &R::on_poison,
       "An event Kafka will never accept: park (mark failed), dlq (send to --dlq-topic), or block "
       "(park it and hold back its key's later events; poll mode)",
       {"park", "dlq", "block"}},
      {"shard", &R::shard,
       "Poll mode: publish only keys with hash(key) mod N = I, as I/N (one leader per shard)"},
      {"dlq-topic", &R::dlq_topic, "Dead-letter topic for --on-poison=dlq"},
      {"exactly-once", &R::exactly_once,
       "Publish each batch in one Kafka transaction with a checkpoint, so that read_committed consumers see "
       "every event once across crashes and failovers (needs --on-poison=park)"},
      {"transactional-id", &R::transactional_id,
       "Exactly-once: the Kafka transactional id and checkpoint key (default: derived from the database and "
       "the table or slot; relays that stand in for each other must share it)"},
      {"checkpoint-topic", &R::checkpoint_topic,
       "Exactly-once: compacted topic holding each relay's checkpoint (created if missing)"},
      {"transaction-batches",
       &R::transaction_batches,
       "Exactly-once: under a backlog a transaction claims up to this many batches' worth (--batch-size and "
       "--batch-bytes times N), as each one costs a fixed commit; one batch again once caught up",
       {},
       std::pair{1, 64}},
      {"transaction-timeout", &R::transaction_timeout,
       "Exactly-once: transaction.timeout.ms; the broker aborts a transaction open longer than this"},
      {.name = "kafka-property",
       .target = &R::kafka_properties,
       .help = "librdkafka property KEY=VALUE (repeatable); acks and idempotence cannot be weakened",
       .short_name = "-X",
       .delimiter = ';',
       .show_default = false},
      {"slot", &R::slot, "WAL mode: logical replication slot"},
      {"publication", &R::publication, "WAL mode: publication of the outbox table's inserts"},
      {"require-slot", &R::require_slot, "WAL mode: fail instead of creating a missing slot or publication"},
      {"failover-slot",
       &R::failover_slot,
       "WAL mode, PostgreSQL 17+: make the slot a failover slot, which standbys with sync_replication_slots "
       "keep a copy of, so the relay resumes on a promoted standby",
       {"on", "off"}},
      {"heartbeat-interval", &R::heartbeat_interval, "WAL mode: how often an idle slot is moved forward"},
      {"status-interval", &R::status_interval, "WAL mode: standby status update interval"},
      {"message-prefix", &R::message_prefix,
       "WAL mode: pg_logical_emit_message prefix that marks an outbox message"},
      {"log-level",
       &R::log_level,
       "trace, debug, info, warn or error",
       {"trace", "debug", "info", "warn", "error"}},
      {"log-format", &R::log_format, "Log lines as text or json (one object per line)", {"text", "json"}},
      {"http-addr", &R::http_addr, "Serve /metrics, /healthz and /readyz on HOST:PORT (off: no endpoint)"},
      {"stats-interval", &R::stats_interval,
       "How often backlog/slot statistics and the Kafka connection are checked (own connections)"},
      {"retention", &R::retention,
       "Delete sent (marked) rows older than this, in small batches: periodically while running, once "
       "with `cleanup` (e.g. 7d; WAL mode: rows by created_at)"},
      {"db-password-file", &R::db_password_file,
       "Read the PostgreSQL password from FILE (kept out of argv and logs)"},
      {"kafka-sasl-password-file", &R::kafka_sasl_password_file, "Read the Kafka sasl.password from FILE"},
  };
  return table;
}

std::string env_name(const std::string& flag) {
  std::string e = "OUTBOX_RELAY_";
  for (char c : flag) {
    e += c == '-' || c == '_' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return e;
}

// CLI11 applies the config file before the environment, so a file value would shadow an
// OUTBOX_RELAY_* variable. Dropping the file's entries whose variable is set restores the documented
// order: flag > environment > file > default.
class EnvFirstConfig final : public CLI::ConfigBase {
 public:
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    auto values = CLI::ConfigBase::from_config(input);
    std::erase_if(values, [](const CLI::ConfigItem& item) {
      if (!item.parents.empty()) return false;
      const char* v = std::getenv(env_name(item.name).c_str());
      return v != nullptr && *v != '\0';
    });
    return values;
  }
};

// Declares `flag` on `app`, bound to its member of `raw`.
void declare(CLI::App& app, const Flag& flag, RawOptions& raw) {
  const std::string names = flag.short_name != nullptr ? std::string(flag.short_name) + ",--" + flag.name
                                                       : std::string("--") + flag.name;
  CLI::Option* option = std::visit(
      [&](auto member) -> CLI::Option* {
        auto& value = raw.*member;
        if constexpr (std::is_same_v<std::remove_reference_t<decltype(value)>, bool>) {
          return app.add_flag(names, value, flag.help);
        } else {
          return app.add_option(names, value, flag.help);
        }
      },
      flag.target);
  option->envname(env_name(flag.name));
  if (flag.show_default && !std::holds_alternative<bool RawOptions::*>(flag.target)) {
    option->capture_default_str();
  }
  if (!flag.choices.empty()) option->check(CLI::IsMember(flag.choices));
  if (flag.range) option->check(CLI::Range(flag.range->first, flag.range->second));
  if (flag.delimiter != '\0') option->delimiter(flag.delimiter);
}

}  // namespace

bool parse_command_line(int argc, const char* const* argv, RawOptions& raw) {
  CLI::App app{
      "outbox-relay: publishes committed outbox rows from PostgreSQL to Kafka (acks=all, idempotent "
      "producer),\n"
      "then marks them sent. Every flag can also be set as OUTBOX_RELAY_<FLAG> (e.g. OUTBOX_RELAY_DB_URL)\n"
      "or as `flag-name = value` in the --config file; precedence: flag > environment > file > default.\n"
      "Durations take a unit: 250ms, 10s, 5m.",
      "outbox-relay"};
  // OUTBOX_RELAY_CONFIG names the file when --config is not given (CLI11 reads the file before it
  // would look at the environment, so it is passed as the default).
  const char* config_env = std::getenv("OUTBOX_RELAY_CONFIG");
  const std::string config_default = config_env != nullptr ? config_env : "";
  if (!config_default.empty() && !std::filesystem::is_regular_file(config_default)) {
    throw core::ConfigError("OUTBOX_RELAY_CONFIG: \"" + config_default + "\" is not a readable file");
  }
  app.set_config("--config", config_default,
                 "Read flags from this file (`long-flag-name = value` lines; env OUTBOX_RELAY_CONFIG)");
  app.config_formatter(std::make_shared<EnvFirstConfig>());
  app.allow_config_extras(CLI::config_extras_mode::error);  // a misspelt key is an error, not ignored
  app.fallthrough();
  app.set_version_flag("--version", std::string("outbox-relay ") + OUTBOX_RELAY_VERSION);
  app.get_formatter()->column_width(34);

  for (const auto& flag : flags()) declare(app, flag, raw);

  std::string replay_from, replay_to;
  auto* migrate = app.add_subcommand("migrate", "Create or upgrade the outbox schema (idempotent)");
  auto* status =
      app.add_subcommand("status", "Print backlog, oldest unsent age, failed/parked rows and slot lag");
  auto* check = app.add_subcommand(
      "check",
      "Validate config, connections, table layout, grants, wal_level and topics; non-zero on a problem");
  auto* replay = app.add_subcommand(
      "replay",
      "Make sent (or with --failed, failed) rows pending again so the running relay republishes them");
  replay->add_option("--from", replay_from, "First id of the range (inclusive)");
  replay->add_option("--to", replay_to, "Last id of the range (inclusive)");
  replay->add_option("--ids", raw.replay_ids, "Comma-separated ids")->delimiter(',');
  replay->add_flag("--failed", raw.replay_failed, "Replay failed (parked) rows instead of sent ones");
  auto* cleanup =
      app.add_subcommand("cleanup", "Delete sent rows older than --retention in small batches, then exit");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    app.exit(e);
    return false;
  } catch (const CLI::CallForAllHelp& e) {
    app.exit(e);
    return false;
  } catch (const CLI::CallForVersion& e) {
    app.exit(e);
    return false;
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    for (auto& c : msg) {
      if (c == '\n') c = ' ';
    }
    throw core::ConfigError(msg);
  }

  raw.command = migrate->parsed()   ? Command::kMigrate
                : status->parsed()  ? Command::kStatus
                : check->parsed()   ? Command::kCheck
                : replay->parsed()  ? Command::kReplay
                : cleanup->parsed() ? Command::kCleanup
                                    : Command::kRun;
  if (replay->get_option("--from")->count() > 0) raw.replay_from = replay_from;
  if (replay->get_option("--to")->count() > 0) raw.replay_to = replay_to;
  raw.http_addr_given = app.get_option("--http-addr")->count() > 0;
  raw.memory_budget_given = app.get_option("--memory-budget")->count() > 0;
  for (const auto* option : app.get_options()) {
    if (option->get_lnames().empty()) continue;
    const auto& name = option->get_lnames().front();
    if (name == "help" || name == "version") continue;
    std::string value;
    if (option->count() > 0) {
      for (const auto& r : option->results()) value += (value.empty() ? "" : ",") + redact_setting(name, r);
    } else {
      value = redact_setting(name, option->get_default_str());
    }
    raw.effective.emplace_back(name, value);
  }
  return true;
}

}  // namespace outbox_relay::app
