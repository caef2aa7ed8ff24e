#pragma once
// Command-line flags, OUTBOX_RELAY_* environment variables and the --config file, in that order of
// precedence, validated into one Options value. Every problem is a core::ConfigError (exit 78)
// whose message names the flag.

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/dispatcher.h"
#include "core/routing.h"
#include "kafka/config.h"
#include "pg/poll/poll_config.h"

namespace outbox_relay::app {

enum class Command { kRun, kMigrate, kVersion, kStatus, kCheck, kReplay, kCleanup };
enum class Mode { kPoll, kWal };

struct Options {
  Command command = Command::kRun;

  std::string db_url;
  std::string kafka_brokers;
  Mode mode = Mode::kPoll;
  std::string table = "outbox";
  std::string layout_name = "default";
  std::string topic_template;               // empty: the layout's default
  std::string route_by_column;              // empty: the layout's default
  std::string order_by;                     // poll mode claim order; empty: the id column
  std::vector<std::string> header_columns;  // "column[:header]" additional placements
  std::size_t batch_size = 2000;
  std::size_t batch_bytes = 2u << 20;  // --batch-bytes
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::milliseconds session_timeout{60000};
  std::chrono::milliseconds drain_timeout{10000};
  pg::OnSent on_sent = pg::OnSent::kDelete;
  bool exit_when_idle = false;
  bool pipeline = true;  // --pipeline: next batch sent while the previous one is in flight
  core::PoisonPolicy on_poison = core::PoisonPolicy::kPark;
  int shard_index = 0;
  int shard_count = 1;
  std::string dlq_topic;
  std::vector<kafka::Property> kafka_overrides;

  // WAL mode
  std::string slot = "outbox_relay";
  std::string publication = "outbox_relay_pub";
  bool require_slot = false;  // refuse to create the slot/publication (they must exist)
  std::chrono::milliseconds heartbeat_interval{10000};
  std::chrono::milliseconds status_interval{1000};
  std::string message_prefix = "outbox";

  std::string log_level = "info";
  std::string log_format = "text";  // text or json

  // Operations (issue 6)
  std::string http_addr = "127.0.0.1:9187";  // "off" or empty: no HTTP endpoint
  bool http_addr_explicit = false;           // set by flag/env/file: a bind failure is fatal then
  std::chrono::milliseconds stats_interval{5000};
  std::chrono::milliseconds retention{0};  // 0: no periodic cleanup
  std::string kafka_sasl_password_file;    // its contents went into kafka_overrides as sasl.password
  // replay
  std::optional<std::string> replay_from, replay_to;
  std::vector<std::string> replay_ids;
  bool replay_failed = false;
  // Every setting as `name = value`, secrets redacted: printed once at start.
  std::vector<std::pair<std::string, std::string>> effective;

  // The layout with --topic-template, --route-by and --header-column applied.
  [[nodiscard]] core::Layout layout() const;
  // Producer properties (defaults, -X, then acks=all / idempotence).
  [[nodiscard]] std::vector<kafka::Property> producer_properties() const;
  [[nodiscard]] core::DispatcherConfig dispatcher_config() const;
};

// Parses argv. Returns false when the caller should exit 0 at once (--help, --version printed).
// Throws core::ConfigError with a one-line message naming the flag.
bool parse_options(int argc, const char* const* argv, Options& out);

}  // namespace outbox_relay::app
