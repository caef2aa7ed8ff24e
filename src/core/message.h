#pragma once
// The unit of work that flows from a source to Kafka, and the outcome of publishing it.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace outbox_relay::core {

using Header = std::pair<std::string, std::string>;

// One Kafka record built from one outbox event. `value` empty-optional means a tombstone (NULL payload).
struct OutboxMessage {
  std::string id;  // outbox id as text (bigint or uuid); also sent as the `id` header
  std::string topic;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<Header> headers;
  int64_t timestamp_ms = 0;  // created_at in ms since the epoch; 0 lets the producer stamp it
  // Where the event came from, for the source's commit: poll mode leaves it 0, WAL mode puts the
  // end LSN of the transaction that wrote it.
  uint64_t position = 0;
};

// Heap memory a string holds beyond its own object (none while it fits the small-string buffer).
[[nodiscard]] inline std::size_t heap_bytes(const std::string& s) {
  return s.capacity() > 15 ? s.capacity() + 1 : 0;
}

// Memory one record takes while the relay holds it: its object, its strings, its headers. What the
// memory budget counts (with the copies the pipeline makes, see app/options.cpp).
[[nodiscard]] inline std::size_t memory_bytes(const OutboxMessage& m) {
  std::size_t n = sizeof(OutboxMessage) + heap_bytes(m.id) + heap_bytes(m.topic);
  if (m.key) n += heap_bytes(*m.key);
  if (m.value) n += heap_bytes(*m.value);
  n += m.headers.capacity() * sizeof(Header);
  for (const auto& [k, v] : m.headers) n += heap_bytes(k) + heap_bytes(v);
  return n;
}

// A raw outbox row (or WAL tuple or logical message) before it is mapped to a record: column name ->
// text value (nullopt = SQL NULL). Sources fill it; core::Router maps it.
struct Column {
  std::string name;
  std::optional<std::string> value;
};
struct OutboxRow {
  std::string id;  // the id column's text, used for marking and logs even when mapping fails
  std::vector<Column> columns;
  uint64_t position = 0;

  // Memory the row takes while held (a rejected row waiting to be parked).
  [[nodiscard]] std::size_t memory_bytes() const {
    std::size_t n = sizeof(OutboxRow) + heap_bytes(id) + columns.capacity() * sizeof(Column);
    for (const auto& c : columns) n += heap_bytes(c.name) + (c.value ? heap_bytes(*c.value) : 0);
    return n;
  }

  [[nodiscard]] const std::optional<std::string>* find(const std::string& name) const {
    for (const auto& c : columns) {
      if (c.name == name) return &c.value;
    }
    return nullptr;
  }
};

enum class DeliveryStatus {
  kPending,    // no delivery report yet
  kAcked,      // the broker acknowledged it (acks=all)
  kRetriable,  // failed for now (broker down, timeout): the source must offer it again
  kPoison,     // will never be accepted (too large, invalid topic, malformed row): park it
  kDeferred,   // deliberately not sent (held behind a poison event of its key): fetched again later
  // Poison whose dead-letter copy was not accepted for now (--on-poison=dlq): neither published nor
  // parked, fetched again later. Unlike kRetriable it never reaches its own topic, so the events of
  // its key after it need not wait for it.
  kUnparked,
};

struct Delivery {
  DeliveryStatus status = DeliveryStatus::kPending;
  std::string error;  // the reason, for kRetriable and kPoison
  int32_t partition = -1;
  int64_t offset = -1;
};

}  // namespace outbox_relay::core
