#pragma once
// The command line as typed: every flag of the daemon and its subcommands, read from argv, the
// OUTBOX_RELAY_* environment and the --config file (precedence flag > environment > file > default),
// before any meaning is given to it. Each flag is declared once, in the flag table of app/cli.cpp
// (name, environment variable, help, and the default below); app/options.h's validate() turns the
// text into Options.

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace outbox_relay::app {

enum class Command { kRun, kMigrate, kVersion, kStatus, kCheck, kReplay, kCleanup };

// One member per flag, holding its text (or what CLI11 already checked: a number, a switch, a list).
// The initializers are the defaults --help shows.
struct RawOptions {
  Command command = Command::kRun;

  std::string db_url;
  std::string kafka_brokers;
  std::string mode = "poll";
  std::string table = "outbox";
  std::string layout = "default";
  std::string topic_template;
  std::string route_by;
  std::string order_by;
  bool unordered = false;
  std::vector<std::string> header_columns;
  std::size_t batch_size = 2000;
  std::string batch_bytes = "2MiB";
  std::string memory_budget = "8MiB";
  std::string poll_interval = "1s";
  std::string session_timeout = "60s";
  std::string on_sent = "delete";
  std::string pipeline = "on";
  std::string drain_timeout = "10s";
  bool exit_when_idle = false;
  std::string on_poison = "park";
  std::string shard = "0/1";
  std::string dlq_topic;
  bool exactly_once = false;
  std::string transactional_id;  // empty: the mode's identity of this relay
  std::string checkpoint_topic = "outbox-relay.checkpoints";
  std::string transaction_timeout = "60s";
  std::size_t transaction_batches = 4;
  std::vector<std::string> kafka_properties;  // -X KEY=VALUE
  std::string slot = "outbox_relay";
  std::string publication = "outbox_relay_pub";
  bool require_slot = false;
  std::string failover_slot = "on";
  std::string heartbeat_interval = "10s";
  std::string status_interval = "1s";
  std::string message_prefix = "outbox";
  std::string log_level = "info";
  std::string log_format = "text";
  std::string http_addr = "127.0.0.1:9187";
  bool http_addr_given = false;  // set by flag, environment or file, not the default
  bool memory_budget_given = false;
  std::string stats_interval = "5s";
  std::string retention;
  std::string db_password_file;
  std::string kafka_sasl_password_file;

  // replay
  std::optional<std::string> replay_from, replay_to;
  std::vector<std::string> replay_ids;
  bool replay_failed = false;

  // Every setting as `name = value`, secrets redacted (app/secrets.h), in --help order.
  std::vector<std::pair<std::string, std::string>> effective;
};

// Reads argv (with the environment and the --config file) into `out`. Returns false when the caller
// should exit 0 at once (--help or --version printed). Throws core::ConfigError with a one-line message
// naming the flag for what the table itself checks: unknown flags, values outside a flag's choices,
// an unreadable OUTBOX_RELAY_CONFIG file.
bool parse_command_line(int argc, const char* const* argv, RawOptions& out);

}  // namespace outbox_relay::app
