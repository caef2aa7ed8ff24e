#include "pg/decode/pgoutput.h"

#include <cstdio>

namespace outbox_relay::pg {

namespace {

// Bounds-checked big-endian reader over one message. Each read names what it was reading, so an error
// says e.g. "pgoutput Insert: truncated at byte 9 reading the tuple column count".
class Reader {
 public:
  Reader(std::string_view bytes, const char* what) : bytes_(bytes), what_(what) {}

  uint8_t u8(const char* field) {
    need(1, field);
    return static_cast<uint8_t>(bytes_[pos_++]);
  }
  char ch(const char* field) { return static_cast<char>(u8(field)); }
  uint16_t u16(const char* field) { return static_cast<uint16_t>(be(2, field)); }
  uint32_t u32(const char* field) { return static_cast<uint32_t>(be(4, field)); }
  int32_t i32(const char* field) { return static_cast<int32_t>(u32(field)); }
  uint64_t u64(const char* field) { return be(8, field); }
  int64_t i64(const char* field) { return static_cast<int64_t>(u64(field)); }

  // A NUL-terminated string.
  std::string cstr(const char* field) {
    const auto rest = bytes_.substr(pos_);
    const auto nul = rest.find('\0');
    if (nul == std::string_view::npos) fail(std::string("unterminated string reading ") + field);
    pos_ += nul + 1;
    return std::string(rest.substr(0, nul));
  }

  std::string_view bytes(std::size_t n, const char* field) {
    need(n, field);
    const auto out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  // A count of items each taking at least `min_item_size` bytes: rejects counts the remaining bytes
  // cannot hold before anything is allocated for them.
  void check_count(std::size_t count, std::size_t min_item_size, const char* field) {
    if (count > remaining() / min_item_size) {
      fail(std::string(field) + " " + std::to_string(count) + " exceeds the " + std::to_string(remaining()) +
           " bytes left");
    }
  }

  [[nodiscard]] std::size_t remaining() const { return bytes_.size() - pos_; }
  [[nodiscard]] bool at_end() const { return pos_ == bytes_.size(); }

  void expect_end() {
    if (!at_end()) fail(std::to_string(remaining()) + " unexpected trailing bytes");
  }

  [[noreturn]] void fail(const std::string& why) const {
    throw DecodeError(std::string(what_) + ": " + why + " (at byte " + std::to_string(pos_) + " of " +
                      std::to_string(bytes_.size()) + ")");
  }

 private:
  void need(std::size_t n, const char* field) const {
    if (remaining() < n) fail(std::string("truncated reading ") + field);
  }
  uint64_t be(std::size_t n, const char* field) {
    need(n, field);
    uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(bytes_[pos_ + i]);
    pos_ += n;
    return v;
  }

  std::string_view bytes_;
  const char* what_;
  std::size_t pos_ = 0;
};

pgoutput::TupleData read_tuple(Reader& r) {
  const uint16_t ncols = r.u16("the tuple column count");
  r.check_count(ncols, 1, "tuple column count");
  pgoutput::TupleData tuple;
  tuple.reserve(ncols);
  for (uint16_t i = 0; i < ncols; ++i) {
    pgoutput::TupleColumn col;
    const char kind = r.ch("a tuple column kind");
    switch (kind) {
      case 'n':
        col.kind = pgoutput::ColumnKind::kNull;
        break;
      case 'u':
        col.kind = pgoutput::ColumnKind::kUnchangedToast;
        break;
      case 't':
      case 'b': {
        col.kind = kind == 't' ? pgoutput::ColumnKind::kText : pgoutput::ColumnKind::kBinary;
        const int32_t len = r.i32("a tuple column length");
        if (len < 0) r.fail("negative column length " + std::to_string(len));
        col.value = std::string(r.bytes(static_cast<std::size_t>(len), "a tuple column value"));
        break;
      }
      default: {
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned char>(kind));
        r.fail(std::string("unknown tuple column kind ") + buf + " in column " + std::to_string(i + 1));
      }
    }
    tuple.push_back(std::move(col));
  }
  return tuple;
}

pgoutput::Message decode_begin(Reader& r) {
  pgoutput::Begin m;
  m.final_lsn = r.u64("the final LSN");
  m.commit_time = r.i64("the commit time");
  m.xid = r.u32("the xid");
  return m;
}

pgoutput::Message decode_commit(Reader& r) {
  pgoutput::Commit m;
  m.flags = r.u8("the flags");
  m.commit_lsn = r.u64("the commit LSN");
  m.end_lsn = r.u64("the end LSN");
  m.commit_time = r.i64("the commit time");
  return m;
}

pgoutput::Message decode_origin(Reader& r) {
  pgoutput::Origin m;
  m.commit_lsn = r.u64("the origin commit LSN");
  m.name = r.cstr("the origin name");
  return m;
}

pgoutput::Message decode_relation(Reader& r) {
  pgoutput::Relation m;
  m.oid = r.u32("the relation oid");
  m.nspname = r.cstr("the namespace");
  m.relname = r.cstr("the relation name");
  m.replica_identity = r.ch("the replica identity");
  const uint16_t ncols = r.u16("the column count");
  r.check_count(ncols, 10, "column count");  // flags + NUL + type oid + typmod
  m.columns.reserve(ncols);
  for (uint16_t i = 0; i < ncols; ++i) {
    pgoutput::RelationColumn c;
    c.key = (r.u8("the column flags") & 1) != 0;
    c.name = r.cstr("a column name");
    c.type_oid = r.u32("a column type oid");
    c.type_modifier = r.i32("a column type modifier");
    m.columns.push_back(std::move(c));
  }
  return m;
}

pgoutput::Message decode_type(Reader& r) {
  pgoutput::Type m;
  m.oid = r.u32("the type oid");
  m.nspname = r.cstr("the type namespace");
  m.name = r.cstr("the type name");
  return m;
}

pgoutput::Message decode_insert(Reader& r) {
  pgoutput::Insert m;
  m.relation_oid = r.u32("the relation oid");
  const char n = r.ch("the new tuple marker");
  if (n != 'N') r.fail("expected 'N' before the new tuple");
  m.new_tuple = read_tuple(r);
  return m;
}

pgoutput::Message decode_update(Reader& r) {
  pgoutput::Update m;
  m.relation_oid = r.u32("the relation oid");
  char marker = r.ch("the tuple marker");
  if (marker == 'K' || marker == 'O') {
    m.old_kind = marker;
    m.old_tuple = read_tuple(r);
    marker = r.ch("the new tuple marker");
  }
  if (marker != 'N') r.fail("expected 'N' before the new tuple");
  m.new_tuple = read_tuple(r);
  return m;
}

pgoutput::Message decode_delete(Reader& r) {
  pgoutput::Delete m;
  m.relation_oid = r.u32("the relation oid");
  const char marker = r.ch("the old tuple marker");
  if (marker != 'K' && marker != 'O') r.fail("expected 'K' or 'O' before the old tuple");
  m.old_kind = marker;
  m.old_tuple = read_tuple(r);
  return m;
}

pgoutput::Message decode_truncate(Reader& r) {
  pgoutput::Truncate m;
  const uint32_t n = r.u32("the relation count");
  m.options = r.u8("the options");
  r.check_count(n, 4, "relation count");
  m.relation_oids.reserve(n);
  for (uint32_t i = 0; i < n; ++i) m.relation_oids.push_back(r.u32("a relation oid"));
  return m;
}

pgoutput::Message decode_message(Reader& r) {
  pgoutput::LogicalMessage m;
  const uint8_t flags = r.u8("the flags");
  m.transactional = (flags & 1) != 0;
  m.lsn = r.u64("the message LSN");
  m.prefix = r.cstr("the prefix");
  const int32_t len = r.i32("the content length");
  if (len < 0) r.fail("negative content length " + std::to_string(len));
  m.content = std::string(r.bytes(static_cast<std::size_t>(len), "the content"));
  return m;
}

const char* message_name(char type) {
  switch (type) {
    case 'B':
      return "pgoutput Begin";
    case 'C':
      return "pgoutput Commit";
    case 'O':
      return "pgoutput Origin";
    case 'R':
      return "pgoutput Relation";
    case 'Y':
      return "pgoutput Type";
    case 'I':
      return "pgoutput Insert";
    case 'U':
      return "pgoutput Update";
    case 'D':
      return "pgoutput Delete";
    case 'T':
      return "pgoutput Truncate";
    case 'M':
      return "pgoutput Message";
    default:
      return "pgoutput message";
  }
}

}  // namespace

namespace pgoutput {

Message decode(std::string_view bytes) {
  if (bytes.empty()) throw DecodeError("pgoutput message: empty");
  const char type = bytes[0];
  Reader r(bytes.substr(1), message_name(type));
  Message out;
  switch (type) {
    case 'B':
      out = decode_begin(r);
      break;
    case 'C':
      out = decode_commit(r);
      break;
    case 'O':
      out = decode_origin(r);
      break;
    case 'R':
      out = decode_relation(r);
      break;
    case 'Y':
      out = decode_type(r);
      break;
    case 'I':
      out = decode_insert(r);
      break;
    case 'U':
      out = decode_update(r);
      break;
    case 'D':
      out = decode_delete(r);
      break;
    case 'T':
      out = decode_truncate(r);
      break;
    case 'M':
      out = decode_message(r);
      break;
    default: {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned char>(type));
      throw DecodeError(std::string("pgoutput message: unknown type ") + buf +
                        " (streaming and two-phase messages need protocol versions above 1)");
    }
  }
  r.expect_end();
  return out;
}

char tag(const Message& m) {
  static constexpr char kTags[] = {'B', 'C', 'O', 'R', 'Y', 'I', 'U', 'D', 'T', 'M'};
  static_assert(sizeof kTags == std::variant_size_v<Message>);
  return kTags[m.index()];
}

void RelationCache::apply(Relation relation) {
  const auto oid = relation.oid;
  relations_.insert_or_assign(oid, std::move(relation));
}

const Relation* RelationCache::find(uint32_t oid) const {
  const auto it = relations_.find(oid);
  return it == relations_.end() ? nullptr : &it->second;
}

const Relation& RelationCache::require(uint32_t oid, const TupleData& tuple) const {
  const auto* rel = find(oid);
  if (rel == nullptr) {
    throw DecodeError("pgoutput: change to relation " + std::to_string(oid) + " before its Relation message");
  }
  if (rel->columns.size() != tuple.size()) {
    throw DecodeError("pgoutput: relation \"" + rel->nspname + "." + rel->relname + "\" has " +
                      std::to_string(rel->columns.size()) + " columns but the tuple has " +
                      std::to_string(tuple.size()));
  }
  return *rel;
}

}  // namespace pgoutput

CopyMessage decode_copy_data(std::string_view bytes) {
  if (bytes.empty()) throw DecodeError("replication message: empty");
  if (bytes[0] == 'w') {
    Reader r(bytes.substr(1), "XLogData");
    XLogData m;
    m.start_lsn = r.u64("the start LSN");
    m.end_lsn = r.u64("the end LSN");
    m.send_time = r.i64("the send time");
    m.payload = r.bytes(r.remaining(), "the payload");
    return m;
  }
  if (bytes[0] == 'k') {
    Reader r(bytes.substr(1), "primary keepalive");
    PrimaryKeepalive m;
    m.end_lsn = r.u64("the end LSN");
    m.send_time = r.i64("the send time");
    const uint8_t reply = r.u8("the reply flag");
    if (reply > 1) r.fail("reply flag " + std::to_string(reply) + " is neither 0 nor 1");
    m.reply_requested = reply == 1;
    r.expect_end();
    return m;
  }
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned char>(bytes[0]));
  throw DecodeError(std::string("replication message: unknown type ") + buf);
}

std::string encode_standby_status(uint64_t write_lsn, uint64_t flush_lsn, uint64_t apply_lsn,
                                  int64_t client_time, bool reply_requested) {
  std::string out;
  out.reserve(34);
  out.push_back('r');
  auto put = [&out](uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  put(write_lsn);
  put(flush_lsn);
  put(apply_lsn);
  put(static_cast<uint64_t>(client_time));
  out.push_back(reply_requested ? 1 : 0);
  return out;
}

}  // namespace outbox_relay::pg
