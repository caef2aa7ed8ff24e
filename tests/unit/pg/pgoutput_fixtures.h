#pragma once
// Byte fixtures for pgoutput protocol version 1 messages and the replication CopyData wrappers, built
// field by field as PostgreSQL's proto.c / walsender.c write them (big-endian). Shared by the unit
// tests; tests/fuzz/corpus/ seeds were generated from the same shapes.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outbox_relay::pg::fixtures {

class Bytes {
 public:
  explicit Bytes(char type) { s_.push_back(type); }
  Bytes() = default;
  Bytes& u8(uint8_t v) {
    s_.push_back(static_cast<char>(v));
    return *this;
  }
  Bytes& ch(char c) {
    s_.push_back(c);
    return *this;
  }
  Bytes& u16(uint16_t v) { return be(v, 2); }
  Bytes& u32(uint32_t v) { return be(v, 4); }
  Bytes& i32(int32_t v) { return be(static_cast<uint32_t>(v), 4); }
  Bytes& u64(uint64_t v) { return be(v, 8); }
  Bytes& i64(int64_t v) { return be(static_cast<uint64_t>(v), 8); }
  Bytes& str(std::string_view v) {  // NUL-terminated
    s_.append(v);
    s_.push_back('\0');
    return *this;
  }
  Bytes& raw(std::string_view v) {
    s_.append(v);
    return *this;
  }
  [[nodiscard]] const std::string& bytes() const { return s_; }
  operator std::string() const { return s_; }  // NOLINT(google-explicit-constructor)

 private:
  Bytes& be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) s_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  std::string s_;
};

// A tuple column: nullopt = 'n', "\x01u" sentinel avoided: use kUnchanged for 'u'.
struct Col {
  char kind = 't';
  std::string value;
};
inline Col text(std::string v) { return {'t', std::move(v)}; }
inline Col null() { return {'n', {}}; }
inline Col unchanged() { return {'u', {}}; }
inline Col binary(std::string v) { return {'b', std::move(v)}; }

inline void tuple(Bytes& b, const std::vector<Col>& cols) {
  b.u16(static_cast<uint16_t>(cols.size()));
  for (const auto& c : cols) {
    b.ch(c.kind);
    if (c.kind == 't' || c.kind == 'b') b.i32(static_cast<int32_t>(c.value.size())).raw(c.value);
  }
}

inline std::string begin(uint64_t final_lsn, int64_t commit_time, uint32_t xid) {
  return Bytes('B').u64(final_lsn).i64(commit_time).u32(xid);
}

inline std::string commit(uint64_t commit_lsn, uint64_t end_lsn, int64_t commit_time) {
  return Bytes('C').u8(0).u64(commit_lsn).u64(end_lsn).i64(commit_time);
}

inline std::string origin(uint64_t lsn, std::string_view name) { return Bytes('O').u64(lsn).str(name); }

struct RelCol {
  bool key = false;
  std::string name;
  uint32_t type_oid = 25;  // text
  int32_t typmod = -1;
};

inline std::string relation(uint32_t oid, std::string_view nsp, std::string_view name,
                            const std::vector<RelCol>& cols, char identity = 'd') {
  Bytes b('R');
  b.u32(oid).str(nsp).str(name).ch(identity).u16(static_cast<uint16_t>(cols.size()));
  for (const auto& c : cols) b.u8(c.key ? 1 : 0).str(c.name).u32(c.type_oid).i32(c.typmod);
  return b;
}

inline std::string type(uint32_t oid, std::string_view nsp, std::string_view name) {
  return Bytes('Y').u32(oid).str(nsp).str(name);
}

inline std::string insert(uint32_t oid, const std::vector<Col>& cols) {
  Bytes b('I');
  b.u32(oid).ch('N');
  tuple(b, cols);
  return b;
}

inline std::string update(uint32_t oid, char old_kind, const std::vector<Col>& old_cols,
                          const std::vector<Col>& cols) {
  Bytes b('U');
  b.u32(oid);
  if (old_kind != 0) {
    b.ch(old_kind);
    tuple(b, old_cols);
  }
  b.ch('N');
  tuple(b, cols);
  return b;
}

inline std::string del(uint32_t oid, char old_kind, const std::vector<Col>& old_cols) {
  Bytes b('D');
  b.u32(oid).ch(old_kind);
  tuple(b, old_cols);
  return b;
}

inline std::string truncate(uint8_t options, const std::vector<uint32_t>& oids) {
  Bytes b('T');
  b.u32(static_cast<uint32_t>(oids.size())).u8(options);
  for (auto o : oids) b.u32(o);
  return b;
}

inline std::string message(bool transactional, uint64_t lsn, std::string_view prefix,
                           std::string_view content) {
  return Bytes('M')
      .u8(transactional ? 1 : 0)
      .u64(lsn)
      .str(prefix)
      .i32(static_cast<int32_t>(content.size()))
      .raw(content);
}

inline std::string xlog_data(uint64_t start, uint64_t end, int64_t send_time, std::string_view payload) {
  return Bytes('w').u64(start).u64(end).i64(send_time).raw(payload);
}

inline std::string keepalive(uint64_t end, int64_t send_time, bool reply) {
  return Bytes('k').u64(end).i64(send_time).u8(reply ? 1 : 0);
}

// The default outbox table (sql/001_outbox.sql) as a Relation: oid 16390 in schema public.
inline constexpr uint32_t kOutboxOid = 16390;
inline std::string outbox_relation(uint32_t oid = kOutboxOid, std::string_view name = "outbox") {
  return relation(oid, "public", name,
                  {{true, "id", 20},
                   {false, "aggregate_type", 25},
                   {false, "aggregate_id", 25},
                   {false, "event_type", 25},
                   {false, "payload", 3802},
                   {false, "headers", 3802},
                   {false, "topic", 25},
                   {false, "created_at", 1184}});
}

inline std::vector<Col> outbox_row(std::string id, std::string aggregate_id = "order-42",
                                   std::string payload = R"({"total":42})") {
  return {text(std::move(id)),
          text("orders"),
          text(std::move(aggregate_id)),
          text("OrderCreated"),
          text(std::move(payload)),
          text(R"({"traceparent": "00-abc-def-01"})"),
          null(),
          text("2026-11-22 05:34:36.123456+00")};
}

}  // namespace outbox_relay::pg::fixtures
