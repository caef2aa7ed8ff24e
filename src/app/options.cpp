#include "app/options.h"

#include "app/modes.h"
#include "app/secrets.h"
#include "core/duration.h"
#include "core/errors.h"
#include "pg/common/conninfo.h"

namespace outbox_relay::app {

namespace {

// The longest interval a duration flag takes (but --retention): PostgreSQL takes the session timeouts
// as int milliseconds (at most about 24.8 days), and every interval is added to a clock reading.
constexpr std::chrono::milliseconds kLongestInterval = std::chrono::hours(24);

std::chrono::milliseconds duration_flag(const std::string& flag, const std::string& text,
                                        std::chrono::milliseconds min,
                                        std::chrono::milliseconds max = kLongestInterval) {
  try {
    const auto d = core::parse_duration(text);
    if (d < min) {
      throw std::invalid_argument("\"" + text + "\" is shorter than " + core::format_duration(min));
    }
    if (d > max) {
      throw std::invalid_argument("\"" + text + "\" is longer than " + core::format_duration(max) +
                                  ", the longest it can be");
    }
    return d;
  } catch (const std::invalid_argument& e) {
    throw core::ConfigError(flag + ": " + e.what());
  }
}

// PostgreSQL's limit for a name (NAMEDATALEN - 1); a longer one would be truncated.
constexpr std::size_t kMaxNameBytes = 63;

bool identifier_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

bool identifier_char(char c) { return identifier_start(c) || (c >= '0' && c <= '9') || c == '$'; }

// --table as the rest of the relay takes it: NAME or SCHEMA.NAME with each part by its name (pg/
// splits the table at its first dot and quotes each part). An unquoted part folds to lower case as
// PostgreSQL folds it; a double-quoted one is taken as written, "" standing for a quote.
std::string table_flag(const std::string& text) {
  const auto not_a_name = [&] {
    return core::ConfigError(
        "--table: \"" + text +
        "\" is not a table name (NAME or SCHEMA.NAME, each an SQL identifier, double-quoted "
        "where it needs to be)");
  };
  std::vector<std::string> parts;
  std::size_t i = 0;
  for (;;) {
    std::string part;
    if (i < text.size() && text[i] == '"') {
      for (++i;; ++i) {
        if (i == text.size() || static_cast<unsigned char>(text[i]) < 0x20) throw not_a_name();
        if (text[i] == '"') {
          if (i + 1 == text.size() || text[i + 1] != '"') break;
          ++i;
        }
        part += text[i];
      }
      ++i;  // the closing quote
      if (part.empty()) throw not_a_name();
    } else {
      if (i == text.size() || !identifier_start(text[i])) throw not_a_name();
      for (; i < text.size() && identifier_char(text[i]); ++i) {
        part += text[i] >= 'A' && text[i] <= 'Z' ? static_cast<char>(text[i] - 'A' + 'a') : text[i];
      }
    }
    if (part.size() > kMaxNameBytes) {
      throw core::ConfigError("--table: \"" + text +
                              "\" has a name longer than 63 bytes (PostgreSQL's limit)");
    }
    parts.push_back(std::move(part));
    if (i == text.size()) break;
    if (text[i] != '.' || parts.size() == 2) throw not_a_name();
    ++i;
  }
  if (parts.size() == 1) return parts[0];
  if (parts[0].find('.') != std::string::npos) {
    throw core::ConfigError("--table: \"" + text + "\": a schema name holding a dot is not supported");
  }
  return parts[0] + "." + parts[1];
}

// "I/N" of --shard.
void parse_shard(const std::string& shard, Options& o) {
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

// Each flag's text as its type; throws for a value the flag cannot take whatever the others say.
Options convert(const RawOptions& raw, const SecretReader& read_secret) {
  Options o;
  o.command = raw.command;
  o.db_url = raw.db_url;
  o.kafka_brokers = raw.kafka_brokers;
  o.table = table_flag(raw.table);
  o.layout_name = raw.layout;
  o.topic_template = raw.topic_template;
  o.route_by_column = raw.route_by;
  o.order_by = raw.order_by;
  o.unordered = raw.unordered;
  o.header_columns = raw.header_columns;
  o.batch_size = raw.batch_size;
  o.transaction_batches = raw.transaction_batches;
  o.exit_when_idle = raw.exit_when_idle;
  o.dlq_topic = raw.dlq_topic;
  o.slot = raw.slot;
  o.publication = raw.publication;
  o.require_slot = raw.require_slot;
  o.failover_slot = raw.failover_slot == "on";
  o.message_prefix = raw.message_prefix;
  o.log_level = raw.log_level;
  o.log_format = raw.log_format;
  o.http_addr = raw.http_addr;
  o.http_addr_explicit = raw.http_addr_given;
  o.kafka_sasl_password_file = raw.kafka_sasl_password_file;
  o.replay_from = raw.replay_from;
  o.replay_to = raw.replay_to;
  o.replay_ids = raw.replay_ids;
  o.replay_failed = raw.replay_failed;
  o.effective = raw.effective;

  o.stats_interval = duration_flag("--stats-interval", raw.stats_interval, std::chrono::milliseconds(100));
  if (!raw.retention.empty()) {
    o.retention = duration_flag("--retention", raw.retention, std::chrono::milliseconds(1000),
                                std::chrono::milliseconds::max());
  }
  const auto mode = mode_named(raw.mode);
  if (!mode) throw core::ConfigError("--mode: \"" + raw.mode + "\" is not a mode");
  o.mode = *mode;
  o.on_sent = raw.on_sent == "mark" ? pg::OnSent::kMark : pg::OnSent::kDelete;
  o.pipeline = raw.pipeline == "on";
  o.on_poison = raw.on_poison == "dlq"     ? core::PoisonPolicy::kDlq
                : raw.on_poison == "block" ? core::PoisonPolicy::kBlock
                                           : core::PoisonPolicy::kPark;
  parse_shard(raw.shard, o);
  o.poll_interval = duration_flag("--poll-interval", raw.poll_interval, std::chrono::milliseconds(10));
  try {
    o.batch_bytes = core::parse_size(raw.batch_bytes);
  } catch (const std::invalid_argument& e) {
    throw core::ConfigError(std::string("--batch-bytes: ") + e.what());
  }
  try {
    // Exactly-once pays a fixed cost per Kafka transaction: its claims grow under a backlog (up to
    // --transaction-batches batches, within a quarter of the budget), which the 8 MiB default would cut
    // to one batch.
    o.memory_budget = raw.exactly_once && !raw.memory_budget_given ? std::size_t{32} << 20
                                                                   : core::parse_size(raw.memory_budget);
  } catch (const std::invalid_argument& e) {
    throw core::ConfigError(std::string("--memory-budget: ") + e.what());
  }
  if (o.memory_budget < (std::size_t{4} << 20) || o.memory_budget > (std::size_t{4} << 30)) {
    throw core::ConfigError("--memory-budget: " + raw.memory_budget + " is outside 4MiB to 4GiB");
  }
  // The budget's shares: the WAL read-ahead a quarter; two batches in flight, a quarter each at most
  // (however far an exactly-once claim grows); the producer's copy of what is in flight the last
  // quarter (payloads only: it holds no headers or bookkeeping of ours). A WAL transaction larger than
  // a batch is sent in batch-sized chunks as it streams in.
  const auto quarter = o.memory_budget / 4;
  o.batch_bytes = o.batch_bytes == 0 ? quarter : std::min(o.batch_bytes, quarter);
  o.session_timeout =
      duration_flag("--session-timeout", raw.session_timeout, std::chrono::milliseconds(5000));
  o.drain_timeout = duration_flag("--drain-timeout", raw.drain_timeout, std::chrono::milliseconds(0));
  o.heartbeat_interval =
      duration_flag("--heartbeat-interval", raw.heartbeat_interval, std::chrono::milliseconds(100));
  o.status_interval = duration_flag("--status-interval", raw.status_interval, std::chrono::milliseconds(100));
  o.kafka_overrides = kafka::parse_overrides(raw.kafka_properties);
  if (!o.kafka_sasl_password_file.empty()) {
    for (const auto& [k, v] : o.kafka_overrides) {
      if (k == "sasl.password") {
        throw core::ConfigError("--kafka-sasl-password-file: sasl.password is also set with -X; give one");
      }
    }
    o.kafka_overrides.emplace_back("sasl.password",
                                   read_secret("--kafka-sasl-password-file", o.kafka_sasl_password_file));
  }

  if (raw.exactly_once) {
    kafka::TransactionConfig t;
    t.identity = raw.transactional_id;  // empty: the mode's identity, filled in by check_relay()
    t.checkpoint_topic = raw.checkpoint_topic;
    t.timeout =
        duration_flag("--transaction-timeout", raw.transaction_timeout, std::chrono::milliseconds(1000));
    o.transactions = std::move(t);
  }

  if (o.db_url.empty()) throw core::ConfigError("--db-url is required (or OUTBOX_RELAY_DB_URL)");
  try {
    pg::parse_conninfo(o.db_url);
  } catch (const core::ConfigError& e) {
    throw core::ConfigError(std::string("--db-url: ") + e.what());
  }
  if (!raw.db_password_file.empty()) {
    o.db_url = pg::with_password(o.db_url, read_secret("--db-password-file", raw.db_password_file));
  }
  return o;
}

// What a subcommand needs of its own flags.
void check_command(const Options& o) {
  if (o.command == Command::kReplay && o.replay_ids.empty() == !(o.replay_from || o.replay_to)) {
    throw core::ConfigError("replay: give --from/--to (an id range) or --ids (a list), not both");
  }
  if (o.command == Command::kCleanup && o.retention.count() == 0) {
    throw core::ConfigError("cleanup needs --retention (e.g. --retention 7d)");
  }
}

// --exactly-once: what its guarantee needs of the other flags.
void check_exactly_once(Options& o) {
  if (!o.transactions) return;
  if (o.on_poison != core::PoisonPolicy::kPark) {
    throw core::ConfigError(
        "--exactly-once works with --on-poison=park only: a dead-letter copy or a held wave cannot be part "
        "of "
        "the transaction a poison record aborts");
  }
  if (!core::valid_topic_name(o.transactions->checkpoint_topic)) {
    throw core::ConfigError("--checkpoint-topic: \"" + o.transactions->checkpoint_topic +
                            "\" is not a valid Kafka topic name");
  }
  if (o.transactions->identity.empty()) o.transactions->identity = mode_for(o.mode).identity(o);
  // librdkafka refuses message.timeout.ms > transaction.timeout.ms; say it in the relay's words.
  for (const auto& [k, v] : o.kafka_overrides) {
    if (k != "message.timeout.ms" && k != "delivery.timeout.ms") continue;
    long long ms = 0;
    try {
      ms = std::stoll(v);
    } catch (const std::exception&) {
      continue;  // librdkafka names the bad value
    }
    if (ms > o.transactions->timeout.count()) {
      throw core::ConfigError("-X " + k + "=" + v + " exceeds --transaction-timeout (" +
                              std::to_string(o.transactions->timeout.count()) + " ms)");
    }
  }
}

// The rules between flags of the daemon and `check` (the commands that publish, or judge publishing).
void check_relay(Options& o) {
  bool brokers_in_x = false;
  for (const auto& [k, v] : o.kafka_overrides) brokers_in_x = brokers_in_x || k == "bootstrap.servers";
  if (o.kafka_brokers.empty() && !brokers_in_x) {
    throw core::ConfigError("--kafka-brokers is required (or OUTBOX_RELAY_KAFKA_BROKERS)");
  }
  // The producer's settings as the daemon will build them: -X bootstrap.servers beside
  // --kafka-brokers is refused here, at start, for `check` as for the daemon.
  (void)o.producer_properties();
  if (o.on_poison == core::PoisonPolicy::kDlq && o.dlq_topic.empty()) {
    throw core::ConfigError("--on-poison=dlq needs --dlq-topic");
  }
  if (o.on_poison != core::PoisonPolicy::kDlq && !o.dlq_topic.empty()) {
    throw core::ConfigError(
        "--dlq-topic is only used with --on-poison=dlq: add --on-poison=dlq or drop --dlq-topic");
  }
  if (!o.dlq_topic.empty() && !core::valid_topic_name(o.dlq_topic)) {
    throw core::ConfigError("--dlq-topic: \"" + o.dlq_topic + "\" is not a valid Kafka topic name");
  }
  mode_for(o.mode).validate(o);
  check_exactly_once(o);
  if (o.on_poison == core::PoisonPolicy::kBlock && o.layout_name == "debezium") {
    throw core::ConfigError(kBlockPolicyRefused);
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
  // The producer's queue holds a copy of what is in flight: a quarter of the budget (its payloads; the
  // relay's own bounds keep it below that), unless -X sets it.
  std::vector<kafka::Property> overrides = {
      {"queue.buffering.max.kbytes", std::to_string(std::max<std::size_t>(memory_budget / 4 / 1024, 1))}};
  overrides.insert(overrides.end(), kafka_overrides.begin(), kafka_overrides.end());
  return kafka::producer_properties(kafka_brokers, overrides);
}

core::DispatcherConfig Options::dispatcher_config() const {
  core::DispatcherConfig c;
  c.batch_size = batch_size;
  c.batch_bytes = batch_bytes;
  c.claim_bytes = memory_budget / 4;
  c.transaction_batches = transaction_batches;
  c.poll_interval = poll_interval;
  c.drain_timeout = drain_timeout;
  c.exit_when_idle = exit_when_idle;
  c.on_poison = on_poison;
  c.dlq_topic = dlq_topic;
  c.pipeline = pipeline;
  return c;
}

Options validate(const RawOptions& raw, const SecretReader& read_secret) {
  auto o = convert(raw, read_secret);
  check_command(o);
  if (o.command == Command::kRun || o.command == Command::kCheck) check_relay(o);
  return o;
}

Options validate(const RawOptions& raw) { return validate(raw, read_secret_file); }

bool parse_options(int argc, const char* const* argv, Options& out) {
  RawOptions raw;
  if (!parse_command_line(argc, argv, raw)) return false;
  out = validate(raw);
  return true;
}

}  // namespace outbox_relay::app
