#include "app/options.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "app/secrets.h"
#include "core/duration.h"
#include "core/errors.h"
#include "pg/common/conninfo.h"

namespace outbox_relay::app {

namespace {

std::chrono::milliseconds duration_flag(const std::string& flag, const std::string& text,
                                        std::chrono::milliseconds min) {
  try {
    const auto d = core::parse_duration(text);
    if (d < min) {
      throw std::invalid_argument("\"" + text + "\" is shorter than " + core::format_duration(min));
    }
    return d;
  } catch (const std::invalid_argument& e) {
    throw core::ConfigError(flag + ": " + e.what());
  }
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

}  // namespace

core::Layout Options::layout() const {
  auto l = layout_name == "debezium" ? core::Layout::debezium_layout() : core::Layout::default_layout();
  if (!topic_template.empty()) l.topic_template = topic_template;
  if (!route_by_column.empty()) l.route_by_column = route_by_column;
  for (const auto& spec : header_columns) {
    const auto colon = spec.find(':');
    core::HeaderPlacement p{spec.substr(0, colon),
                            colon == std::string::npos ? spec.substr(0, colon) : spec.substr(colon + 1)};
    l.header_placements.push_back(std::move(p));
  }
  return l;
}

std::vector<kafka::Property> Options::producer_properties() const {
  return kafka::producer_properties(kafka_brokers, kafka_overrides);
}

core::DispatcherConfig Options::dispatcher_config() const {
  core::DispatcherConfig c;
  c.batch_size = batch_size;
  c.batch_bytes = batch_bytes;
  c.poll_interval = poll_interval;
  c.drain_timeout = drain_timeout;
  c.exit_when_idle = exit_when_idle;
  c.on_poison = on_poison;
  c.dlq_topic = dlq_topic;
  c.pipeline = pipeline;
  return c;
}

bool parse_options(int argc, const char* const* argv, Options& o) {
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

  std::string mode = "poll", on_sent = "delete", on_poison = "park", pipeline = "on", batch_bytes = "2MiB";
  std::string poll_interval = "1s", drain_timeout = "10s", heartbeat = "10s", status_interval = "1s";
  std::string session_timeout = "60s";
  std::vector<std::string> xprops;

  std::string retention, stats_interval = "5s", db_password_file;
  std::string replay_from, replay_to;
  auto env = [](const std::string& flag) { return env_name(flag); };
  auto opt = [&](const std::string& name, auto& var, const std::string& help) {
    return app.add_option("--" + name, var, help)->envname(env(name))->capture_default_str();
  };

  opt("db-url", o.db_url, "PostgreSQL connection URL or key=value string (the password is never logged)");
  opt("kafka-brokers", o.kafka_brokers, "Kafka bootstrap servers, host:port[,host:port]");
  opt("mode", mode, "Source: poll (claim rows) or wal (logical replication)")
      ->check(CLI::IsMember({"poll", "wal"}));
  opt("table", o.table, "Outbox table, optionally schema-qualified");
  opt("layout", o.layout_name,
      "Table layout: default (sql/ schema) or debezium (id, aggregatetype, aggregateid, type, payload)")
      ->check(CLI::IsMember({"default", "debezium"}));
  opt("topic-template", o.topic_template,
      "Topic for rows without a topic column value; {column} and ${routedByValue} expand (default: "
      "outbox.{aggregate_type}, debezium: outbox.event.${routedByValue})");
  opt("route-by", o.route_by_column, "Column that ${routedByValue} stands for (debezium route.by.field)");
  opt("order-by", o.order_by,
      "Poll mode: claim in order of this column (default: id); needed for a uuid id, e.g. a Debezium table");
  opt("header-column", o.header_columns, "Also send COLUMN as a header, COLUMN[:HEADER] (repeatable)");
  opt("batch-size", o.batch_size, "Most events claimed and published per batch")
      ->check(CLI::Range(1, 100000));
  opt("batch-bytes", batch_bytes,
      "Also bound a batch to about this many bytes of records (learned from the sizes seen; 0B: no bound)");
  opt("poll-interval", poll_interval, "Longest wait between polls when no NOTIFY arrives");
  opt("session-timeout", session_timeout,
      "The server ends a dead, paused or partitioned relay's session after this, freeing its claim and lead "
      "(poll) or its slot (WAL: wal_sender_timeout) for a standby; keep it above message.timeout.ms (30s)");
  opt("on-sent", on_sent, "What to do with a published row: delete it, or mark it (set sent_at)")
      ->check(CLI::IsMember({"delete", "mark"}));
  opt("pipeline", pipeline,
      "Claim and send the next batch while the previous one awaits Kafka's acknowledgements (poll mode: "
      "a second database session); off: one batch at a time")
      ->check(CLI::IsMember({"on", "off"}));
  opt("drain-timeout", drain_timeout, "On SIGTERM, how long to wait for in-flight deliveries");
  app.add_flag("--exit-when-idle", o.exit_when_idle, "Exit 0 once no unsent event is left")
      ->envname(env("exit-when-idle"));
  opt("on-poison", on_poison,
      "An event Kafka will never accept: park (mark failed), dlq (send to --dlq-topic), or block "
      "(park it and hold back its key's later events; poll mode)")
      ->check(CLI::IsMember({"park", "dlq", "block"}));
  std::string shard = "0/1";
  opt("shard", shard, "Poll mode: publish only keys with hash(key) mod N = I, as I/N (one leader per shard)");
  opt("dlq-topic", o.dlq_topic, "Dead-letter topic for --on-poison=dlq");
  app.add_option("-X,--kafka-property", xprops,
                 "librdkafka property KEY=VALUE (repeatable); acks and idempotence cannot be weakened")
      ->envname(env("kafka-property"))
      ->delimiter(';');
  opt("slot", o.slot, "WAL mode: logical replication slot");
  opt("publication", o.publication, "WAL mode: publication of the outbox table's inserts");
  app.add_flag("--require-slot", o.require_slot,
               "WAL mode: fail instead of creating a missing slot or publication")
      ->envname(env("require-slot"));
  opt("heartbeat-interval", heartbeat, "WAL mode: how often an idle slot is moved forward");
  opt("status-interval", status_interval, "WAL mode: standby status update interval");
  opt("message-prefix", o.message_prefix,
      "WAL mode: pg_logical_emit_message prefix that marks an outbox message");
  opt("log-level", o.log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  opt("log-format", o.log_format, "Log lines as text or json (one object per line)")
      ->check(CLI::IsMember({"text", "json"}));
  opt("http-addr", o.http_addr, "Serve /metrics, /healthz and /readyz on HOST:PORT (off: no endpoint)");
  opt("stats-interval", stats_interval,
      "How often backlog/slot statistics and the Kafka connection are checked (own connections)");
  opt("retention", retention,
      "Delete sent (marked) rows older than this, in small batches: periodically while running, once "
      "with `cleanup` (e.g. 7d; WAL mode: rows by created_at)");
  opt("db-password-file", db_password_file,
      "Read the PostgreSQL password from FILE (kept out of argv and logs)");
  opt("kafka-sasl-password-file", o.kafka_sasl_password_file, "Read the Kafka sasl.password from FILE");

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
  replay->add_option("--ids", o.replay_ids, "Comma-separated ids")->delimiter(',');
  replay->add_flag("--failed", o.replay_failed, "Replay failed (parked) rows instead of sent ones");
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

  o.command = migrate->parsed()   ? Command::kMigrate
              : status->parsed()  ? Command::kStatus
              : check->parsed()   ? Command::kCheck
              : replay->parsed()  ? Command::kReplay
              : cleanup->parsed() ? Command::kCleanup
                                  : Command::kRun;
  // The effective settings, secrets redacted, for the start-up log line.
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
    o.effective.emplace_back(name, value);
  }
  o.http_addr_explicit = app.get_option("--http-addr")->count() > 0;
  o.stats_interval = duration_flag("--stats-interval", stats_interval, std::chrono::milliseconds(100));
  if (!retention.empty())
    o.retention = duration_flag("--retention", retention, std::chrono::milliseconds(1000));
  o.mode = mode == "wal" ? Mode::kWal : Mode::kPoll;
  o.on_sent = on_sent == "mark" ? pg::OnSent::kMark : pg::OnSent::kDelete;
  o.pipeline = pipeline == "on";
  o.on_poison = on_poison == "dlq"     ? core::PoisonPolicy::kDlq
                : on_poison == "block" ? core::PoisonPolicy::kBlock
                                       : core::PoisonPolicy::kPark;
  {
    const auto slash = shard.find('/');
    try {
      if (slash == std::string::npos) throw std::invalid_argument("no slash");
      std::size_t used = 0;
      o.shard_index = std::stoi(shard.substr(0, slash), &used);
      if (used != slash) throw std::invalid_argument("junk");
      o.shard_count = std::stoi(shard.substr(slash + 1), &used);
      if (used != shard.size() - slash - 1) throw std::invalid_argument("junk");
    } catch (const std::exception&) {
      throw core::ConfigError("--shard: \"" + shard + "\" is not I/N (e.g. 0/4)");
    }
    if (o.shard_count < 1 || o.shard_index < 0 || o.shard_index >= o.shard_count) {
      throw core::ConfigError("--shard: \"" + shard + "\" needs 0 <= I < N");
    }
  }
  o.poll_interval = duration_flag("--poll-interval", poll_interval, std::chrono::milliseconds(10));
  try {
    o.batch_bytes = core::parse_size(batch_bytes);
  } catch (const std::invalid_argument& e) {
    throw core::ConfigError(std::string("--batch-bytes: ") + e.what());
  }
  o.session_timeout = duration_flag("--session-timeout", session_timeout, std::chrono::milliseconds(5000));
  o.drain_timeout = duration_flag("--drain-timeout", drain_timeout, std::chrono::milliseconds(0));
  o.heartbeat_interval = duration_flag("--heartbeat-interval", heartbeat, std::chrono::milliseconds(100));
  o.status_interval = duration_flag("--status-interval", status_interval, std::chrono::milliseconds(100));
  o.kafka_overrides = kafka::parse_overrides(xprops);
  if (!o.kafka_sasl_password_file.empty()) {
    for (const auto& [k, v] : o.kafka_overrides) {
      if (k == "sasl.password") {
        throw core::ConfigError("--kafka-sasl-password-file: sasl.password is also set with -X; give one");
      }
    }
    o.kafka_overrides.emplace_back(
        "sasl.password", read_secret_file("--kafka-sasl-password-file", o.kafka_sasl_password_file));
  }

  if (o.db_url.empty()) throw core::ConfigError("--db-url is required (or OUTBOX_RELAY_DB_URL)");
  try {
    pg::parse_conninfo(o.db_url);
  } catch (const core::ConfigError& e) {
    throw core::ConfigError(std::string("--db-url: ") + e.what());
  }
  if (!db_password_file.empty()) {
    o.db_url = pg::with_password(o.db_url, read_secret_file("--db-password-file", db_password_file));
  }
  if (o.command == Command::kReplay) {
    if (replay->get_option("--from")->count() > 0) o.replay_from = replay_from;
    if (replay->get_option("--to")->count() > 0) o.replay_to = replay_to;
    if (o.replay_ids.empty() == !(o.replay_from || o.replay_to)) {
      throw core::ConfigError("replay: give --from/--to (an id range) or --ids (a list), not both");
    }
  }
  if (o.command == Command::kCleanup && o.retention.count() == 0) {
    throw core::ConfigError("cleanup needs --retention (e.g. --retention 7d)");
  }
  if (o.command == Command::kMigrate || o.command == Command::kStatus || o.command == Command::kReplay ||
      o.command == Command::kCleanup) {
    return true;
  }

  bool brokers_in_x = false;
  for (const auto& [k, v] : o.kafka_overrides) brokers_in_x = brokers_in_x || k == "bootstrap.servers";
  if (o.kafka_brokers.empty() && !brokers_in_x) {
    throw core::ConfigError("--kafka-brokers is required (or OUTBOX_RELAY_KAFKA_BROKERS)");
  }
  if (o.on_poison == core::PoisonPolicy::kDlq && o.dlq_topic.empty()) {
    throw core::ConfigError("--on-poison=dlq needs --dlq-topic");
  }
  if (!o.dlq_topic.empty() && !core::valid_topic_name(o.dlq_topic)) {
    throw core::ConfigError("--dlq-topic: \"" + o.dlq_topic + "\" is not a valid Kafka topic name");
  }
  if (o.on_poison == core::PoisonPolicy::kBlock && (o.mode == Mode::kWal || o.layout_name == "debezium")) {
    throw core::ConfigError(
        "--on-poison=block needs poll mode and a table with failed_at (the default layout): a WAL slot has "
        "one "
        "position for all keys");
  }
  if (o.shard_count > 1 && o.mode == Mode::kWal) {
    throw core::ConfigError(
        "--shard is for poll mode; in WAL mode the slot holder publishes everything in order");
  }
  if (o.layout_name == "debezium" && o.on_sent == pg::OnSent::kMark) {
    throw core::ConfigError("--on-sent=mark: the debezium layout has no sent_at column; use delete");
  }
  const auto l = o.layout();
  if (l.topic_template.empty()) throw core::ConfigError("--topic-template must not be empty");
  for (const auto& h : o.header_columns) {
    if (h.empty() || h.front() == ':' || h.back() == ':') {
      throw core::ConfigError("--header-column: \"" + h + "\" is not COLUMN or COLUMN:HEADER");
    }
  }
  return true;
}

}  // namespace outbox_relay::app
