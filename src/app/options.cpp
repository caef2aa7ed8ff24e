#include "app/options.h"

#include <CLI/CLI.hpp>
#include <iostream>

#include "core/duration.h"
#include "core/errors.h"
#include "pg/conninfo.h"

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
  c.poll_interval = poll_interval;
  c.drain_timeout = drain_timeout;
  c.exit_when_idle = exit_when_idle;
  c.on_poison = on_poison;
  c.dlq_topic = dlq_topic;
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
  app.set_config("--config", "", "Read flags from this file (`long-flag-name = value` lines)");
  app.fallthrough();
  app.set_version_flag("--version", std::string("outbox-relay ") + OUTBOX_RELAY_VERSION);
  app.get_formatter()->column_width(34);

  std::string mode = "poll", on_sent = "delete", on_poison = "park";
  std::string poll_interval = "1s", drain_timeout = "10s", heartbeat = "10s", status_interval = "1s";
  std::vector<std::string> xprops;

  auto env = [](const std::string& flag) {
    std::string e = "OUTBOX_RELAY_";
    for (char c : flag) e += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return e;
  };
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
  opt("header-column", o.header_columns, "Also send COLUMN as a header, COLUMN[:HEADER] (repeatable)");
  opt("batch-size", o.batch_size, "Most events claimed and published per batch")
      ->check(CLI::Range(1, 100000));
  opt("poll-interval", poll_interval, "Longest wait between polls when no NOTIFY arrives");
  opt("on-sent", on_sent, "What to do with a published row: delete it, or mark it (set sent_at)")
      ->check(CLI::IsMember({"delete", "mark"}));
  opt("drain-timeout", drain_timeout, "On SIGTERM, how long to wait for in-flight deliveries");
  app.add_flag("--exit-when-idle", o.exit_when_idle, "Exit 0 once no unsent event is left")
      ->envname(env("exit-when-idle"));
  opt("on-poison", on_poison,
      "An event Kafka will never accept: park (mark failed) or dlq (send to --dlq-topic)")
      ->check(CLI::IsMember({"park", "dlq"}));
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

  auto* migrate = app.add_subcommand("migrate", "Create or upgrade the outbox schema (idempotent)");

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

  o.command = migrate->parsed() ? Command::kMigrate : Command::kRun;
  o.mode = mode == "wal" ? Mode::kWal : Mode::kPoll;
  o.on_sent = on_sent == "mark" ? pg::OnSent::kMark : pg::OnSent::kDelete;
  o.on_poison = on_poison == "dlq" ? core::PoisonPolicy::kDlq : core::PoisonPolicy::kPark;
  o.poll_interval = duration_flag("--poll-interval", poll_interval, std::chrono::milliseconds(10));
  o.drain_timeout = duration_flag("--drain-timeout", drain_timeout, std::chrono::milliseconds(0));
  o.heartbeat_interval = duration_flag("--heartbeat-interval", heartbeat, std::chrono::milliseconds(100));
  o.status_interval = duration_flag("--status-interval", status_interval, std::chrono::milliseconds(100));
  o.kafka_overrides = kafka::parse_overrides(xprops);

  if (o.db_url.empty()) throw core::ConfigError("--db-url is required (or OUTBOX_RELAY_DB_URL)");
  try {
    pg::parse_conninfo(o.db_url);
  } catch (const core::ConfigError& e) {
    throw core::ConfigError(std::string("--db-url: ") + e.what());
  }
  if (o.command == Command::kMigrate) return true;

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
