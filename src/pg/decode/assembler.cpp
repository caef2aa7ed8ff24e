#include "pg/decode/assembler.h"

#include <algorithm>

#include "core/errors.h"
#include "pg/decode/lsn.h"

namespace outbox_relay::pg {

namespace {

// Howard Hinnant's days_from_civil: days since 1970-01-01 of a proleptic Gregorian date.
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int64_t days_in_month(int64_t y, int64_t m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

// Cursor over ASCII digits and separators.
struct Scan {
  std::string_view s;
  std::size_t pos = 0;

  bool eat(char c) {
    if (pos < s.size() && s[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  // Exactly `min`..`max` digits.
  bool digits(std::size_t min, std::size_t max, int64_t& out, std::size_t* count = nullptr) {
    std::size_t n = 0;
    int64_t v = 0;
    while (pos < s.size() && n < max && s[pos] >= '0' && s[pos] <= '9') {
      v = v * 10 + (s[pos] - '0');
      ++pos;
      ++n;
    }
    if (count != nullptr) *count = n;
    out = v;
    return n >= min;
  }
  [[nodiscard]] bool done() const { return pos == s.size(); }
};

}  // namespace

std::optional<int64_t> timestamp_text_to_ms(std::string_view text) {
  Scan sc{text};
  int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  std::size_t year_digits = 0;
  if (!sc.digits(4, 6, year, &year_digits) || !sc.eat('-') || !sc.digits(2, 2, month) || !sc.eat('-') ||
      !sc.digits(2, 2, day)) {
    return std::nullopt;
  }
  if (!sc.eat(' ') && !sc.eat('T')) return std::nullopt;
  if (!sc.digits(2, 2, hour) || !sc.eat(':') || !sc.digits(2, 2, minute) || !sc.eat(':') ||
      !sc.digits(2, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 24 || minute > 59 ||
      second > 60 || (hour == 24 && (minute != 0 || second != 0))) {
    return std::nullopt;
  }
  int64_t micros = 0;
  if (sc.eat('.')) {
    std::size_t n = 0;
    if (!sc.digits(1, 6, micros, &n)) return std::nullopt;
    for (; n < 6; ++n) micros *= 10;
  }
  int64_t offset_s = 0;
  if (!sc.done()) {
    const bool plus = sc.eat('+');
    if (!plus && !sc.eat('-')) return std::nullopt;
    int64_t oh = 0, om = 0, os = 0;
    if (!sc.digits(2, 2, oh)) return std::nullopt;
    if (sc.eat(':')) {
      if (!sc.digits(2, 2, om)) return std::nullopt;
      if (sc.eat(':') && !sc.digits(2, 2, os)) return std::nullopt;
    }
    if (oh > 15 || om > 59 || os > 59) return std::nullopt;
    offset_s = (oh * 3600 + om * 60 + os) * (plus ? 1 : -1);
  }
  if (!sc.done()) return std::nullopt;  // " BC", other DateStyles, garbage
  const int64_t seconds =
      days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  const int64_t total_us = seconds * 1000000 + micros;
  return total_us / 1000 - ((total_us % 1000) < 0 ? 1 : 0);
}

std::optional<std::variant<MessageRoute, std::string>> route_message_prefix(std::string_view prefix,
                                                                            std::string_view configured) {
  using Out = std::variant<MessageRoute, std::string>;
  if (configured.empty() || prefix.substr(0, configured.size()) != configured) return std::nullopt;
  std::string_view rest = prefix.substr(configured.size());
  if (configured.back() != ':') {
    if (rest.empty()) {
      return Out(std::in_place_index<1>, "logical message prefix \"" + std::string(prefix) +
                                             "\" names no topic (expected \"" + std::string(configured) +
                                             ":<topic>[:<key>]\")");
    }
    if (rest[0] != ':') return std::nullopt;  // "outboxes:..." is someone else's
    rest.remove_prefix(1);
  }
  MessageRoute route;
  const auto colon = rest.find(':');
  route.topic = std::string(rest.substr(0, colon));
  if (colon != std::string_view::npos && colon + 1 < rest.size())
    route.key = std::string(rest.substr(colon + 1));
  if (route.topic.empty()) {
    return Out(std::in_place_index<1>,
               "logical message prefix \"" + std::string(prefix) + "\" names no topic");
  }
  if (!core::valid_topic_name(route.topic)) {
    return Out(std::in_place_index<1>, "invalid topic name \"" + route.topic +
                                           "\" in logical message prefix \"" + std::string(prefix) + "\"");
  }
  return Out(std::in_place_index<0>, std::move(route));
}

std::optional<core::Router::Result> map_logical_message(const pgoutput::LogicalMessage& message,
                                                        std::string_view configured_prefix,
                                                        int64_t timestamp_ms, uint64_t position) {
  auto route = route_message_prefix(message.prefix, configured_prefix);
  if (!route) return std::nullopt;
  if (route->index() == 1)
    return core::Router::Result(std::in_place_index<1>, std::get<1>(std::move(*route)));
  auto& r = std::get<0>(*route);
  core::OutboxMessage m;
  m.id = format_lsn(message.lsn);
  m.topic = std::move(r.topic);
  m.key = std::move(r.key);
  m.value = message.content;
  m.headers.emplace_back("id", m.id);
  m.timestamp_ms = timestamp_ms;
  m.position = position;
  return core::Router::Result(std::in_place_index<0>, std::move(m));
}

core::OutboxRow tuple_to_row(const pgoutput::Relation& relation, const pgoutput::TupleData& tuple,
                             const core::Layout& layout) {
  core::OutboxRow row;
  row.columns.reserve(tuple.size());
  const std::size_t n = std::min(relation.columns.size(), tuple.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto& desc = relation.columns[i];
    const auto& col = tuple[i];
    if (col.kind == pgoutput::ColumnKind::kUnchangedToast) continue;
    core::Column c{desc.name, std::nullopt};
    if (col.kind == pgoutput::ColumnKind::kText || col.kind == pgoutput::ColumnKind::kBinary)
      c.value = col.value;
    if (c.value && col.kind == pgoutput::ColumnKind::kText) {
      if (desc.name == layout.timestamp_column &&
          (desc.type_oid == kTimestamptzOid || desc.type_oid == kTimestampOid)) {
        const auto ms = timestamp_text_to_ms(*c.value);
        c.value = ms ? std::optional<std::string>(std::to_string(*ms)) : std::nullopt;
      } else if (desc.name == layout.value_column && desc.type_oid == kByteaOid) {
        if (auto raw = decode_bytea_hex(*c.value)) c.value = std::move(*raw);
      }
    }
    if (desc.name == layout.id_column && c.value) row.id = *c.value;
    row.columns.push_back(std::move(c));
  }
  return row;
}

std::vector<std::string> missing_columns(const pgoutput::Relation& relation, const core::Layout& layout) {
  std::vector<std::string> out;
  for (const auto& want : layout.required_columns()) {
    const bool found = std::any_of(relation.columns.begin(), relation.columns.end(),
                                   [&want](const pgoutput::RelationColumn& c) { return c.name == want; });
    if (!found) out.push_back(want);
  }
  return out;
}

TransactionAssembler::TransactionAssembler(core::Router router, Options options)
    : router_(std::move(router)), options_(std::move(options)) {}

void TransactionAssembler::reset() {
  current_.reset();
  skipping_ = 0;
  relations_.clear();
}

TransactionAssembler::Current& TransactionAssembler::require_transaction(const char* what) {
  if (!current_) throw DecodeError(std::string("pgoutput: ") + what + " outside a transaction");
  return *current_;
}

std::optional<Transaction> TransactionAssembler::feed(pgoutput::Message message) {
  if (auto* b = std::get_if<pgoutput::Begin>(&message)) {
    if (current_) {
      throw DecodeError("pgoutput: Begin of xid " + std::to_string(b->xid) +
                        " inside the transaction of xid " + std::to_string(current_->begin.xid));
    }
    current_.emplace();
    current_->begin = *b;
    current_->txn.xid = b->xid;
    current_->txn.commit_lsn = b->final_lsn;
    skipping_ = 0;
    if (skip_.records > 0 && b->final_lsn == skip_.commit_lsn) {
      skipping_ = skip_.records;
      skip_ = {};
    }
    return std::nullopt;
  }
  if (auto* c = std::get_if<pgoutput::Commit>(&message)) {
    auto& cur = require_transaction("Commit");
    if (c->commit_lsn != cur.begin.final_lsn) {
      throw DecodeError("pgoutput: Commit at " + format_lsn(c->commit_lsn) +
                        " for a transaction that began with " + "final LSN " +
                        format_lsn(cur.begin.final_lsn));
    }
    Transaction txn = std::move(cur.txn);
    current_.reset();
    txn.end_lsn = c->end_lsn;
    for (auto& m : txn.messages) m.position = txn.end_lsn;
    for (auto& r : txn.rejected) r.row.position = txn.end_lsn;
    return txn;
  }
  if (auto* r = std::get_if<pgoutput::Relation>(&message)) {
    on_relation(std::move(*r));
  } else if (auto* i = std::get_if<pgoutput::Insert>(&message)) {
    on_insert(*i);
  } else if (auto* m = std::get_if<pgoutput::LogicalMessage>(&message)) {
    on_message(*m);
  } else if (auto* u = std::get_if<pgoutput::Update>(&message)) {
    require_transaction("Update");
    (void)relations_.require(u->relation_oid, u->new_tuple);
  } else if (auto* d = std::get_if<pgoutput::Delete>(&message)) {
    require_transaction("Delete");
    (void)relations_.require(d->relation_oid, d->old_tuple);
  } else if (std::holds_alternative<pgoutput::Truncate>(message)) {
    require_transaction("Truncate");
  }
  // Origin and Type carry nothing we publish. Only an insert or a message adds records: past the chunk
  // size, what the transaction holds so far goes out as a chunk.
  if (current_ && options_.chunk_bytes > 0 && current_->txn.bytes >= options_.chunk_bytes)
    return take_chunk();
  return std::nullopt;
}

Transaction TransactionAssembler::take_chunk() {
  Transaction chunk = std::move(current_->txn);
  current_->txn = Transaction{};
  current_->txn.xid = chunk.xid;
  current_->txn.commit_lsn = chunk.commit_lsn;
  chunk.complete = false;
  chunk.end_lsn = chunk.commit_lsn + 1;
  for (auto& m : chunk.messages) m.position = chunk.end_lsn;
  for (auto& r : chunk.rejected) r.row.position = chunk.end_lsn;
  return chunk;
}

void TransactionAssembler::on_relation(pgoutput::Relation relation) {
  if (relation.nspname == options_.table_schema && relation.relname == options_.table_name) {
    const auto missing = missing_columns(relation, router_.layout());
    if (!missing.empty()) {
      throw core::FatalError("table \"" + relation.nspname + "." + relation.relname + "\" has no column \"" +
                             missing.front() + "\" required by the \"" + router_.layout().name + "\" layout");
    }
  }
  relations_.apply(std::move(relation));
}

void TransactionAssembler::on_insert(const pgoutput::Insert& insert) {
  auto& cur = require_transaction("Insert");
  const auto& rel = relations_.require(insert.relation_oid, insert.new_tuple);
  if (rel.nspname != options_.table_schema || rel.relname != options_.table_name) return;
  auto row = tuple_to_row(rel, insert.new_tuple, router_.layout());
  auto mapped = router_.map(row);
  (void)cur;
  add(std::move(mapped), std::move(row));
}

void TransactionAssembler::on_message(const pgoutput::LogicalMessage& message) {
  if (!message.transactional) {
    if (route_message_prefix(message.prefix, options_.message_prefix) && options_.warn) {
      options_.warn("ignored non-transactional logical message \"" + message.prefix + "\" at " +
                    format_lsn(message.lsn) +
                    ": it is not tied to a commit; emit it with pg_logical_emit_message(true, ...)");
    }
    return;
  }
  auto& cur = require_transaction("transactional Message");
  const int64_t ts = pg_time_to_unix_ms(cur.begin.commit_time);
  auto mapped = map_logical_message(message, options_.message_prefix, ts, 0);
  if (!mapped) return;
  core::OutboxRow row;
  if (mapped->index() == 1) {
    row.id = format_lsn(message.lsn);
    row.columns.push_back({"prefix", message.prefix});
    row.columns.push_back({"content", message.content});
  }
  add(std::move(*mapped), std::move(row));
}

void TransactionAssembler::add(core::Router::Result result, core::OutboxRow row) {
  if (skipping_ > 0) {  // in Kafka already (exactly-once recovery)
    --skipping_;
    if (result.index() == 1)
      skipped_rejected_.push_back({std::move(row), std::get<1>(std::move(result)), std::nullopt, 0});
    return;
  }
  // What the transaction holds, its vectors' spare capacity included: the read-ahead bound and the
  // chunk size are about memory.
  auto& txn = current_->txn;
  if (result.index() == 0) {
    auto& m = std::get<0>(result);
    const auto capacity = txn.messages.capacity();
    txn.bytes += core::memory_bytes(m) - sizeof(core::OutboxMessage);
    txn.messages.push_back(std::move(m));
    txn.bytes += (txn.messages.capacity() - capacity) * sizeof(core::OutboxMessage);
  } else {
    const auto capacity = txn.rejected.capacity();
    txn.bytes += row.memory_bytes();
    txn.rejected.push_back({std::move(row), std::get<1>(std::move(result)), std::nullopt, 0});
    txn.bytes += (txn.rejected.capacity() - capacity) * sizeof(core::RejectedRow);
  }
}

}  // namespace outbox_relay::pg
