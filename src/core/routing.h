#pragma once
// Maps an outbox row (by column name) to a Kafka record: topic, key, value, headers, timestamp.
// Pure logic, shared by the poll and WAL sources; unit-tested without servers.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/message.h"

namespace outbox_relay::core {

// A column copied into a record header ("additional placement").
struct HeaderPlacement {
  std::string column;
  std::string header;
};

// Which column plays which role. Empty name = the layout has no such column.
struct Layout {
  std::string name;              // "default" or "debezium"
  std::string id_column;         // outbox id; also the `id` header
  std::string key_column;        // record key (aggregate id)
  std::string value_column;      // record value (payload bytes, unchanged)
  std::string topic_column;      // optional per-row topic override
  std::string headers_column;    // optional JSON object of extra headers
  std::string timestamp_column;  // optional; the poll source selects it as ms since the epoch
  std::vector<HeaderPlacement> header_placements;  // e.g. event_type -> header "event_type"
  std::string topic_template;                      // "outbox.{aggregate_type}"; {column} and ${routedByValue}
  std::string route_by_column;                     // the column ${routedByValue} stands for

  // The default table from sql/ (id bigint, aggregate_type, aggregate_id, event_type, payload jsonb,
  // headers jsonb, topic, created_at).
  static Layout default_layout();
  // Debezium's outbox table (id uuid, aggregatetype, aggregateid, type, payload) with the Outbox Event
  // Router's defaults: topic outbox.event.<aggregatetype>, key aggregateid, header id, type as header.
  static Layout debezium_layout();

  // Every column the relay reads, without duplicates, id first.
  [[nodiscard]] std::vector<std::string> columns() const;
  // Columns that must exist in the table (the optional ones may be missing).
  [[nodiscard]] std::vector<std::string> required_columns() const;

  // Header names the relay sets itself: `id`, then each header placement's. A row's `headers` JSON
  // may not name them (a row writer could otherwise pass a second `id` to consumers).
  [[nodiscard]] std::vector<std::string> reserved_headers() const;

  // Throws ConfigError with one line naming the flag when the layout cannot route any row: a topic
  // template with an unclosed or empty placeholder or characters no topic may hold, ${routedByValue}
  // without a route-by column, a header placement named like a reserved header or twice.
  void validate() const;
};

// Kafka's rule for topic names: 1..249 chars of [a-zA-Z0-9._-], not "." or "..".
[[nodiscard]] bool valid_topic_name(const std::string& topic);

// Expands {column} and ${routedByValue} placeholders against a row. Returns an error text when a
// placeholder names a column that is NULL or absent.
[[nodiscard]] std::variant<std::string, std::string> render_topic(const std::string& tmpl,
                                                                  const Layout& layout, const OutboxRow& row);

// Parses the headers column (a JSON object) into record headers, in the object's order. String
// values go as-is, other values as their JSON text, null as an empty value. Throws std::invalid_argument
// with the reason when the text is not a JSON object.
[[nodiscard]] std::vector<Header> parse_headers_json(const std::string& json_text);

class Router {
 public:
  // Throws ConfigError when the layout is invalid (Layout::validate).
  explicit Router(Layout layout);

  // The record for `row`, or the reason it cannot be one (poison).
  using Result = std::variant<OutboxMessage, std::string>;
  [[nodiscard]] Result map(const OutboxRow& row) const;

  [[nodiscard]] const Layout& layout() const { return layout_; }

 private:
  Layout layout_;
};

}  // namespace outbox_relay::core
