#pragma once
// Command-line flags, OUTBOX_RELAY_* environment variables and the --config file, in that order of
// precedence, validated into one Options value. Every problem is a core::ConfigError (exit 78)
// whose message names the flag.

#include <chrono>
#include <string>
#include <vector>

#include "core/dispatcher.h"
#include "core/routing.h"
#include "kafka/config.h"
#include "pg/poll_source.h"

namespace outbox_relay::app {

enum class Command { kRun, kMigrate, kVersion };
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
  std::vector<std::string> header_columns;  // "column[:header]" additional placements
  std::size_t batch_size = 1000;
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::milliseconds drain_timeout{10000};
  pg::OnSent on_sent = pg::OnSent::kDelete;
  bool exit_when_idle = false;
  core::PoisonPolicy on_poison = core::PoisonPolicy::kPark;
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
