#pragma once
// What the relay was asked to do, with a meaning given to every flag: validate() turns the command
// line as typed (app/cli.h: flags, OUTBOX_RELAY_* variables, the --config file) into one Options
// value. Every problem is a core::ConfigError (exit 78) whose one-line message names the flag.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "app/cli.h"
#include "core/dispatcher.h"
#include "core/routing.h"
#include "kafka/config.h"
#include "kafka/transaction_config.h"
#include "pg/poll/poll_config.h"

namespace outbox_relay::app {

// The source modes; each has its description in app/modes.h (mode_for), and --mode names it.
enum class Mode { kPoll, kWal };

// Built by validate(); the defaults are the flag table's (app/cli.h), so a default-constructed value
// is only a placeholder.
struct Options {
  Command command{};

  std::string db_url;
  std::string kafka_brokers;
  Mode mode{};
  std::string table;
  std::string layout_name;                  // --layout: default or debezium
  std::string topic_template;               // empty: the layout's default
  std::string route_by_column;              // empty: the layout's default
  std::string order_by;                     // poll mode claim order; empty: the id column
  bool unordered{};                         // --unordered: accept a claim order that is no ordering
  std::vector<std::string> header_columns;  // "column[:header]" additional placements
  std::size_t batch_size{};
  std::size_t batch_bytes{};            // at most memory_budget / 4 (0 given: that)
  std::size_t memory_budget{};          // --memory-budget: events held in memory, all stages
  std::size_t transaction_batches = 1;  // exactly-once: batches one claim may grow to under a backlog
  std::chrono::milliseconds poll_interval{};
  std::chrono::milliseconds session_timeout{};
  std::chrono::milliseconds drain_timeout{};
  pg::OnSent on_sent{};
  bool exit_when_idle{};
  bool pipeline{};  // --pipeline: next batch sent while the previous one is in flight
  core::PoisonPolicy on_poison{};
  int shard_index{};
  int shard_count{1};
  std::string dlq_topic;
  std::vector<kafka::Property> kafka_overrides;  // -X, then sasl.password from its file
  // Exactly-once (--exactly-once): the producer's transactions, when set.
  std::optional<kafka::TransactionConfig> transactions;

  // WAL mode
  std::string slot;
  std::string publication;
  bool require_slot{};   // refuse to create the slot/publication (they must exist)
  bool failover_slot{};  // --failover-slot: the slot is a failover slot (PostgreSQL 17+)
  std::chrono::milliseconds heartbeat_interval{};
  std::chrono::milliseconds status_interval{};
  std::string message_prefix;

  std::string log_level;
  std::string log_format;  // text or json

  // Operations
  std::string http_addr;      // "off" or empty: no HTTP endpoint
  bool http_addr_explicit{};  // set by flag/env/file: a bind failure is fatal then
  std::chrono::milliseconds stats_interval{};
  std::chrono::milliseconds retention{};  // 0: no periodic cleanup
  std::string kafka_sasl_password_file;   // its contents went into kafka_overrides as sasl.password
  // replay
  std::optional<std::string> replay_from, replay_to;
  std::vector<std::string> replay_ids;
  bool replay_failed{};
  // Every setting as `name = value`, secrets redacted: printed once at start.
  std::vector<std::pair<std::string, std::string>> effective;

  // The layout with --topic-template, --route-by and --header-column applied.
  [[nodiscard]] core::Layout layout() const;
  // Producer properties (defaults, -X, then acks=all / idempotence).
  [[nodiscard]] std::vector<kafka::Property> producer_properties() const;
  [[nodiscard]] core::DispatcherConfig dispatcher_config() const;
};

// Reads a password file for `flag` (read_secret_file in production; unit tests pass a fake).
using SecretReader = std::function<std::string(const std::string& flag, const std::string& path)>;

// Gives the typed text its meaning and checks the rules between flags, the mode's own included
// (ModeDescription::validate). Reads nothing but the --db-password-file and --kafka-sasl-password-file
// named, through `read_secret`. Throws core::ConfigError with one line naming the flag.
Options validate(const RawOptions& raw, const SecretReader& read_secret);
Options validate(const RawOptions& raw);

// parse_command_line, then validate. Returns false when the caller should exit 0 at once (--help,
// --version printed). Throws core::ConfigError with a one-line message naming the flag.
bool parse_options(int argc, const char* const* argv, Options& out);

}  // namespace outbox_relay::app
