#include "pg/wal/wal_source.h"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "core/errors.h"
#include "pg/common/conninfo.h"
#include "pg/common/libpq_handles.h"
#include "pg/decode/lsn.h"

namespace outbox_relay::pg {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How often fetch() asks the server where it is while not caught up (keepalive with reply requested).
constexpr milliseconds kCatchUpProbe{50};
// How long open() waits for our own previous walsender to release the slot after a reconnect.
constexpr milliseconds kOwnSlotRelease{5000};

// A libpq message as one log line: inner newlines and tabs folded into single spaces.
std::string trimmed(const char* text) {
  std::string s;
  for (const char* p = text != nullptr ? text : ""; *p != '\0'; ++p) {
    const bool space = *p == '\n' || *p == '\r' || *p == '\t' || *p == ' ';
    if (!space) {
      s += *p;
    } else if (!s.empty() && s.back() != ' ') {
      s += ' ';
    }
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s.empty() ? "unknown error" : s;
}

std::string conn_error(PGconn* c) { return trimmed(PQerrorMessage(c)); }

std::string result_error(const PGresult* r) {
  if (r == nullptr) return "no result";
  const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  if (primary != nullptr) return trimmed(primary);
  return trimmed(PQresultErrorMessage(r));
}

std::string sqlstate(const PGresult* r) {
  const char* s = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  return s != nullptr ? s : "";
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

std::string quote_ident(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

// A string literal for the replication command grammar ('' is the only escape there).
std::string quote_literal(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + '\'';
}

bool valid_slot_name(const std::string& s) {
  return !s.empty() && s.size() <= 63 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;  // text cannot hold NUL
    std::size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// Text for a `text` column of the parked table: as-is when it is valid UTF-8, else bytea-style hex.
nlohmann::json parked_text(const std::optional<std::string>& v) {
  if (!v) return nullptr;
  if (valid_utf8(*v)) return *v;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\\x";
  for (char c : *v) {
    out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xf];
    out += kHex[static_cast<unsigned char>(c) & 0xf];
  }
  return out;
}

// Waits until the socket is readable (or writable); false on timeout. EINTR counts as a wake-up.
bool wait_socket(PGconn* c, bool for_write, Clock::time_point until) {
  const int fd = PQsocket(c);
  if (fd < 0) return true;  // let the next libpq call report the broken connection
  const auto left = std::chrono::ceil<milliseconds>(until - Clock::now()).count();
  if (left <= 0) return false;
  pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
  const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
  return n != 0 || errno == EINTR;
}

// Runs one command asynchronously within `timeout` and returns its result (the first error, else the
// last result; a COPY result as soon as it arrives). Throws TransientError when the connection fails or
// the command times out (the caller then drops the connection).
PgResult exec(PGconn* c, const std::string& sql, const std::vector<std::optional<std::string>>& params,
              milliseconds timeout, const std::string& what) {
  const auto deadline = Clock::now() + timeout;
  int sent = 0;
  if (params.empty()) {
    sent = PQsendQuery(c, sql.c_str());
  } else {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    sent = PQsendQueryParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                             nullptr, 0);
  }
  if (sent == 0) throw core::TransientError(what + ": " + conn_error(c));
  for (int f = PQflush(c); f != 0; f = PQflush(c)) {
    if (f < 0) throw core::TransientError(what + ": " + conn_error(c));
    if (!wait_socket(c, true, deadline)) throw core::TransientError(what + ": timed out sending the command");
  }
  PgResult first_error;
  PgResult last;
  for (;;) {
    while (PQisBusy(c) != 0) {
      if (!wait_socket(c, false, deadline)) {
        throw core::TransientError(what + ": no answer within " + std::to_string(timeout.count()) + " ms");
      }
      if (PQconsumeInput(c) == 0) throw core::TransientError(what + ": " + conn_error(c));
    }
    PgResult r(PQgetResult(c));
    if (!r) break;
    const auto st = PQresultStatus(r.get());
    if (st == PGRES_COPY_BOTH || st == PGRES_COPY_OUT || st == PGRES_COPY_IN) return r;
    if ((st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR) && !first_error) {
      first_error = std::move(r);
    } else {
      last = std::move(r);
    }
  }
  if (first_error) return first_error;
  if (!last) throw core::TransientError(what + ": " + conn_error(c));
  return last;
}

bool ok(const PgResult& r) {
  const auto st = PQresultStatus(r.get());
  return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

std::optional<std::string> field(const PgResult& r, int row, int col) {
  if (PQgetisnull(r.get(), row, col) != 0) return std::nullopt;
  return std::string(PQgetvalue(r.get(), row, col), static_cast<std::size_t>(PQgetlength(r.get(), row, col)));
}

// A failed query on the normal connection: permissions are the operator's to fix; the rest may pass.
[[noreturn]] void throw_query_error(const PgResult& r, const std::string& what) {
  const auto state = sqlstate(r.get());
  if (state == "42501") throw core::ConfigError(what + ": " + result_error(r.get()));
  throw core::TransientError(what + ": " + result_error(r.get()));
}

}  // namespace

struct WalSource::SlotInfo {
  bool exists = false;
  uint64_t confirmed_flush = 0;
};

void WalSource::ConnCloser::operator()(pg_conn* c) const noexcept { PQfinish(c); }

WalSource::WalSource(WalSourceConfig cfg, core::Router router)
    : cfg_(std::move(cfg)),
      router_(router),
      redacted_(redact_conninfo(cfg_.conninfo)),
      assembler_(std::move(router), {}) {
  if (!valid_slot_name(cfg_.slot)) {
    throw core::ConfigError("invalid slot name \"" + cfg_.slot +
                            "\": use 1 to 63 lower-case letters, digits and underscores");
  }
  if (cfg_.publication.empty()) throw core::ConfigError("the publication name is empty");
  if (cfg_.table.empty()) throw core::ConfigError("the table name is empty");
  if (cfg_.status_interval.count() <= 0) throw core::ConfigError("the status interval must be positive");
  (void)parse_conninfo(cfg_.conninfo);  // ConfigError naming the problem, never the string
}

WalSource::~WalSource() { close(); }

std::string WalSource::describe() const {
  return "wal slot \"" + cfg_.slot + "\" publication \"" + cfg_.publication + "\" table \"" + cfg_.table +
         "\" (" + redacted_ + ")";
}

void WalSource::lost(const std::string& what) {
  const std::string cause = repl_ ? conn_error(repl_.get()) : "not connected";
  streaming_ = false;
  throw core::TransientError(what + " on slot \"" + cfg_.slot + "\": " + cause);
}

// ---- open ------------------------------------------------------------------------------------------

void WalSource::open() {
  close();
  try {
    connect_meta();
    check_server();
    resolve_table();
    ensure_publication();
    auto slot = inspect_slot();
    connect_replication();
    uint64_t start = 0;
    if (!slot.exists) {
      if (slot_seen_) {
        throw core::FatalError("replication slot \"" + cfg_.slot +
                               "\" was dropped: refusing to restart from now, which would lose events");
      }
      refuse_if_slot_was_dropped();
      if (!cfg_.create_slot) {
        throw core::ConfigError("replication slot \"" + cfg_.slot +
                                "\" does not exist: create it (pg_create_logical_replication_slot('" +
                                cfg_.slot + "', 'pgoutput')) or let the relay create it");
      }
      create_slot();
      remember_slot();
      slot = inspect_slot();
      if (!slot.exists)
        throw core::TransientError("replication slot \"" + cfg_.slot + "\" vanished after creation");
    }
    start = std::max(queue_.confirmed(), slot.confirmed_flush);
    {
      const auto r = exec(meta_.get(), "SELECT pg_current_wal_lsn()::text", {}, cfg_.command_timeout,
                          "could not read the current WAL position");
      if (!ok(r)) throw_query_error(r, "could not read the current WAL position");
      target_ = parse_lsn(field(r, 0, 0).value_or("0/0"));
    }
    start_replication(start);
    slot_seen_ = true;
  } catch (...) {
    close();
    throw;
  }
  spdlog::info("streaming slot \"{}\" from {} (publication \"{}\", table \"{}.{}\", caught up at {}) on {}",
               cfg_.slot, format_lsn(queue_.confirmed()), cfg_.publication, table_schema_, table_name_,
               format_lsn(target_), redacted_);
}

// The operator's connection parameters plus bounded connect time and dead-peer detection.
std::map<std::string, std::string> WalSource::connection_params() const {
  auto params = parse_conninfo(cfg_.conninfo);
  const auto secs =
      std::max<long long>(1, std::chrono::ceil<std::chrono::seconds>(cfg_.command_timeout).count());
  params.try_emplace("connect_timeout", std::to_string(secs));
  params.try_emplace("fallback_application_name", "outbox-relay");
  const auto timeout = std::max<long long>(1000, cfg_.session_timeout.count());
  params.try_emplace("keepalives_idle", std::to_string(std::max<long long>(1, timeout / 4000)));
  params.try_emplace("keepalives_interval", std::to_string(std::max<long long>(1, timeout / 8000)));
  params.try_emplace("keepalives_count", "3");
  params.try_emplace("tcp_user_timeout", std::to_string(timeout));
  return params;
}

void WalSource::connect_meta() {
  auto params = connection_params();
  params.erase("replication");
  meta_.reset(PQconnectdb(build_conninfo(params).c_str()));
  if (!meta_ || PQstatus(meta_.get()) != CONNECTION_OK) {
    const std::string cause = meta_ ? conn_error(meta_.get()) : "out of memory";
    meta_.reset();
    throw core::TransientError("could not connect to " + redacted_ + ": " + cause);
  }
}

void WalSource::check_server() {
  const auto version = PQserverVersion(meta_.get());
  if (version < 140000) {
    throw core::ConfigError(
        "WAL mode needs PostgreSQL 14 or later (pgoutput messages); the server is version " +
        std::to_string(version / 10000));
  }
  const auto r = exec(meta_.get(),
                      "SELECT current_setting('wal_level'), current_setting('max_slot_wal_keep_size'), "
                      "current_database()",
                      {}, cfg_.command_timeout, "could not read the server settings");
  if (!ok(r)) throw_query_error(r, "could not read the server settings");
  const auto wal_level = field(r, 0, 0).value_or("");
  if (wal_level != "logical") {
    throw core::ConfigError(
        "wal_level is \"" + wal_level +
        "\" but WAL mode needs logical decoding: set wal_level = logical in postgresql.conf "
        "and restart the server");
  }
  if (field(r, 0, 1).value_or("") == "-1" && !warned_keep_size_) {
    warned_keep_size_ = true;
    spdlog::warn(
        "max_slot_wal_keep_size is -1: while the relay is stopped, slot \"{}\" keeps WAL without bound "
        "and can fill the disk; consider setting a limit",
        cfg_.slot);
  }
}

void WalSource::resolve_table() {
  const auto dot = cfg_.table.find('.');
  const std::string qualified = dot == std::string::npos ? quote_ident(cfg_.table)
                                                         : quote_ident(cfg_.table.substr(0, dot)) + "." +
                                                               quote_ident(cfg_.table.substr(dot + 1));
  const auto r = exec(meta_.get(),
                      "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c "
                      "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
                      {qualified}, cfg_.command_timeout, "could not look up table \"" + cfg_.table + "\"");
  if (!ok(r)) throw_query_error(r, "could not look up table \"" + cfg_.table + "\"");
  if (PQntuples(r.get()) == 0) {
    throw core::ConfigError("table \"" + cfg_.table +
                            "\" does not exist (run `outbox-relay migrate` or set --table)");
  }
  table_schema_ = field(r, 0, 0).value_or("");
  table_name_ = field(r, 0, 1).value_or("");
  quoted_table_ = quote_ident(table_schema_) + "." + quote_ident(table_name_);
  const bool partitioned = field(r, 0, 2).value_or("") == "p";

  const auto cols =
      exec(meta_.get(),
           "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
           "AND NOT attisdropped",
           {quoted_table_}, cfg_.command_timeout, "could not read the columns of \"" + cfg_.table + "\"");
  if (!ok(cols)) throw_query_error(cols, "could not read the columns of \"" + cfg_.table + "\"");
  std::vector<std::string> present;
  for (int i = 0; i < PQntuples(cols.get()); ++i) present.push_back(field(cols, i, 0).value_or(""));
  for (const auto& want : router_.layout().required_columns()) {
    if (std::find(present.begin(), present.end(), want) == present.end()) {
      throw core::FatalError("table \"" + table_schema_ + "." + table_name_ + "\" has no column \"" + want +
                             "\" required by the \"" + router_.layout().name + "\" layout");
    }
  }
  if (partitioned) {
    spdlog::warn("table \"{}.{}\" is partitioned: its publication must publish via the partition root",
                 table_schema_, table_name_);
  }
  TransactionAssembler::Options opts;
  opts.table_schema = table_schema_;
  opts.table_name = table_name_;
  opts.message_prefix = cfg_.message_prefix;
  opts.warn = [](const std::string& text) noexcept {
    try {
      spdlog::warn("{}", text);
    } catch (...) {
    }
  };
  assembler_ = TransactionAssembler(router_, std::move(opts));
}

void WalSource::ensure_publication() {
  const std::string what = "could not check publication \"" + cfg_.publication + "\"";
  const auto r = exec(meta_.get(), "SELECT pubinsert, puballtables FROM pg_publication WHERE pubname = $1",
                      {cfg_.publication}, cfg_.command_timeout, what);
  if (!ok(r)) throw_query_error(r, what);
  if (PQntuples(r.get()) == 0) {
    const std::string ddl = "CREATE PUBLICATION " + quote_ident(cfg_.publication) + " FOR TABLE " +
                            quoted_table_ + " WITH (publish = 'insert', publish_via_partition_root = true)";
    if (!cfg_.create_publication) {
      throw core::ConfigError("publication \"" + cfg_.publication + "\" does not exist: create it with " +
                              ddl + ", or let the relay create it");
    }
    const auto c = exec(meta_.get(), ddl, {}, cfg_.command_timeout, "could not create publication");
    if (!ok(c) && sqlstate(c.get()) != "42710") {  // 42710: another relay created it just now
      throw_query_error(c, "could not create publication \"" + cfg_.publication + "\"");
    }
    spdlog::info("created publication \"{}\" for inserts into \"{}.{}\"", cfg_.publication, table_schema_,
                 table_name_);
    return;
  }
  if (field(r, 0, 0).value_or("f") != "t") {
    throw core::ConfigError("publication \"" + cfg_.publication +
                            "\" does not publish inserts: ALTER PUBLICATION " +
                            quote_ident(cfg_.publication) + " SET (publish = 'insert')");
  }
  const auto t =
      exec(meta_.get(),
           "SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid "
           "WHERE p.pubname = $1 AND pr.prrelid = $2::regclass "
           "UNION ALL SELECT 1 FROM pg_publication WHERE pubname = $1 AND puballtables "
           "UNION ALL SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $3 "
           "AND tablename = $4",
           {cfg_.publication, quoted_table_, table_schema_, table_name_}, cfg_.command_timeout, what);
  if (!ok(t)) throw_query_error(t, what);
  if (PQntuples(t.get()) == 0) {
    throw core::ConfigError("publication \"" + cfg_.publication + "\" does not include table \"" +
                            table_schema_ + "." + table_name_ + "\": ALTER PUBLICATION " +
                            quote_ident(cfg_.publication) + " ADD TABLE " + quoted_table_);
  }
}

WalSource::SlotInfo WalSource::inspect_slot() {
  const std::string what = "could not look up replication slot \"" + cfg_.slot + "\"";
  const auto deadline = Clock::now() + kOwnSlotRelease;
  for (;;) {
    const auto r = exec(meta_.get(),
                        "SELECT slot_type, plugin, database = current_database(), confirmed_flush_lsn::text, "
                        "wal_status, active_pid, database FROM pg_replication_slots WHERE slot_name = $1",
                        {cfg_.slot}, cfg_.command_timeout, what);
    if (!ok(r)) throw_query_error(r, what);
    SlotInfo info;
    if (PQntuples(r.get()) == 0) return info;
    info.exists = true;
    if (field(r, 0, 0).value_or("") != "logical") {
      throw core::ConfigError("replication slot \"" + cfg_.slot +
                              "\" is a physical slot; choose another --slot");
    }
    const auto plugin = field(r, 0, 1).value_or("");
    if (plugin != "pgoutput") {
      throw core::ConfigError("replication slot \"" + cfg_.slot + "\" uses plugin \"" + plugin +
                              "\", not pgoutput; drop it or choose another --slot");
    }
    if (field(r, 0, 2).value_or("f") != "t") {
      throw core::ConfigError("replication slot \"" + cfg_.slot + "\" belongs to database \"" +
                              field(r, 0, 6).value_or("") + "\", not the one in --db-url");
    }
    if (field(r, 0, 4).value_or("") == "lost") {
      throw core::FatalError(
          "replication slot \"" + cfg_.slot +
          "\" was invalidated (its WAL was removed, see max_slot_wal_keep_size): events may have "
          "been lost; recreate the slot and reconcile");
    }
    if (auto lsn = field(r, 0, 3)) info.confirmed_flush = parse_lsn(*lsn);
    // Our own walsender from before a reconnect may hold the slot for a moment while it exits.
    const auto pid = field(r, 0, 5);
    if (pid && last_walsender_pid_ != 0 && *pid == std::to_string(last_walsender_pid_) &&
        Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(20));
      continue;
    }
    return info;
  }
}

void WalSource::connect_replication() {
  auto params = connection_params();
  params["replication"] = "database";
  // Tuple text must be in the form the mapping parses (timestamps in ISO).
  auto& options = params["options"];
  options += std::string(options.empty() ? "" : " ") + "-c datestyle=ISO";
  // A relay that stopped answering loses its stream (and the slot passes to a standby) after the session
  // timeout instead of the server-wide wal_sender_timeout (settable per connection since PostgreSQL 12).
  if (options.find("wal_sender_timeout") == std::string::npos) {
    options += " -c wal_sender_timeout=" + std::to_string(cfg_.session_timeout.count()) + "ms";
  }
  repl_.reset(PQconnectdb(build_conninfo(params).c_str()));
  if (!repl_ || PQstatus(repl_.get()) != CONNECTION_OK) {
    const std::string cause = repl_ ? conn_error(repl_.get()) : "out of memory";
    repl_.reset();
    throw core::TransientError("could not open a replication connection to " + redacted_ + ": " + cause);
  }
  last_walsender_pid_ = PQbackendPID(repl_.get());
  const auto r = exec(repl_.get(), "IDENTIFY_SYSTEM", {}, cfg_.command_timeout, "IDENTIFY_SYSTEM failed");
  if (!ok(r) || PQntuples(r.get()) != 1 || PQnfields(r.get()) < 4) {
    throw core::TransientError("IDENTIFY_SYSTEM failed on " + redacted_ + ": " + result_error(r.get()));
  }
  if (!field(r, 0, 3)) {
    throw core::ConfigError("the replication connection to " + redacted_ + " is not bound to a database");
  }
  spdlog::debug("identified system {} timeline {} at {}", field(r, 0, 0).value_or(""),
                field(r, 0, 1).value_or(""), field(r, 0, 2).value_or(""));
}

// A slot this relay created is recorded in outbox_relay_slots, so that a slot dropped while the relay
// was down (or across a supervisor restart) is noticed instead of silently re-created at "now", which
// would skip every event committed in between.
void WalSource::refuse_if_slot_was_dropped() {
  const auto r =
      exec(meta_.get(),
           "SELECT s.created_lsn FROM outbox_relay_slots s WHERE to_regclass('outbox_relay_slots') IS "
           "NOT NULL AND s.slot_name = $1",
           {cfg_.slot}, cfg_.command_timeout, "could not read outbox_relay_slots");
  if (!ok(r)) return;  // no such table yet: this relay never created a slot in this database
  if (const auto lsn = field(r, 0, 0)) {
    throw core::FatalError(
        "replication slot \"" + cfg_.slot + "\" (created by the relay at " + *lsn +
        ") was dropped: refusing to re-create it at \"now\", which would lose the events "
        "committed since; to start over on purpose, DELETE its row from outbox_relay_slots");
  }
}

void WalSource::remember_slot() {
  const auto slot = inspect_slot();
  const auto r =
      exec(meta_.get(),
           "CREATE TABLE IF NOT EXISTS outbox_relay_slots (slot_name text PRIMARY KEY, created_lsn text "
           "NOT NULL, created_at timestamptz NOT NULL DEFAULT now()); "
           "INSERT INTO outbox_relay_slots (slot_name, created_lsn) VALUES ('" +
               cfg_.slot + "', '" + format_lsn(slot.confirmed_flush) +
               "') ON CONFLICT (slot_name) DO UPDATE SET created_lsn = EXCLUDED.created_lsn, "
               "created_at = now()",
           {}, cfg_.command_timeout, "could not record the slot in outbox_relay_slots");
  if (!ok(r)) {
    spdlog::warn(
        "could not record slot \"{}\" in outbox_relay_slots (a later drop of the slot would go unnoticed "
        "after a restart): {}",
        cfg_.slot, result_error(r.get()));
  }
}

void WalSource::create_slot() {
  const auto r =
      exec(repl_.get(), "CREATE_REPLICATION_SLOT " + cfg_.slot + " LOGICAL pgoutput NOEXPORT_SNAPSHOT", {},
           cfg_.command_timeout,
           "could not create replication slot \"" + cfg_.slot +
               "\" (it waits for transactions running at the time to end)");
  if (ok(r)) {
    spdlog::info("created replication slot \"{}\" at {}: events committed before it are not relayed",
                 cfg_.slot, field(r, 0, 1).value_or("?"));
    return;
  }
  const auto state = sqlstate(r.get());
  if (state == "42710") return;  // another relay created it just now
  if (state == "55000" && contains(result_error(r.get()), "wal_level")) {
    throw core::ConfigError("could not create replication slot \"" + cfg_.slot +
                            "\": " + result_error(r.get()) +
                            " (set wal_level = logical in postgresql.conf and restart)");
  }
  if (state == "53400") {  // configuration_limit_exceeded: all slots in use
    throw core::ConfigError("could not create replication slot \"" + cfg_.slot +
                            "\": " + result_error(r.get()) + " (raise max_replication_slots)");
  }
  if (state == "42501") {
    throw core::ConfigError("could not create replication slot \"" + cfg_.slot +
                            "\": " + result_error(r.get()));
  }
  throw core::TransientError("could not create replication slot \"" + cfg_.slot +
                             "\": " + result_error(r.get()));
}

void WalSource::classify_stream_error(const std::string& state, const std::string& message,
                                      const std::string& what) {
  if (state == "55006") {
    throw core::TransientError(what + ": replication slot \"" + cfg_.slot +
                               "\" is in use by another relay (a standby waits for it): " + message);
  }
  if (state == "42704" && contains(message, "replication slot")) {
    if (slot_seen_) {
      throw core::FatalError("replication slot \"" + cfg_.slot +
                             "\" was dropped: refusing to restart from now, which would lose events");
    }
    throw core::TransientError(what + ": " + message);
  }
  if (state == "55000" &&
      (contains(message, "invalidated") || contains(message, "can no longer get changes"))) {
    throw core::FatalError("replication slot \"" + cfg_.slot + "\" cannot be used any more: " + message +
                           "; events may have been lost: recreate the slot and reconcile");
  }
  if (state == "42704" && contains(message, "publication")) {
    throw core::FatalError(what + ": " + message +
                           " (the publication must exist for every change the slot decodes)");
  }
  throw core::TransientError(what + ": " + message);
}

void WalSource::start_replication(uint64_t from) {
  std::string sql = "START_REPLICATION SLOT " + cfg_.slot + " LOGICAL " + format_lsn(from) +
                    " (proto_version '1', publication_names " + quote_literal(quote_ident(cfg_.publication));
  if (!cfg_.message_prefix.empty()) sql += ", messages 'true'";
  sql += ")";
  const std::string what = "could not start replication on slot \"" + cfg_.slot + "\"";
  const auto r = exec(repl_.get(), sql, {}, cfg_.command_timeout, what);
  if (PQresultStatus(r.get()) != PGRES_COPY_BOTH)
    classify_stream_error(sqlstate(r.get()), result_error(r.get()), what);
  streaming_ = true;
  assembler_.reset();
  queue_.reset(from);
  received_ = from;
  idle_position_ = from;
  sent_flush_ = 0;
  const auto now = Clock::now();
  last_activity_ = now;
  last_reply_request_ = Clock::time_point{};
  send_status(!position_reached());
}

// ---- streaming ---------------------------------------------------------------------------------------

bool WalSource::position_reached() const { return std::max(queue_.confirmed(), idle_position_) >= target_; }

bool WalSource::pump(std::size_t stop_at_records) {
  if (!repl_ || !streaming_)
    throw core::TransientError("wal source on slot \"" + cfg_.slot + "\" is not streaming");
  for (;;) {
    if (queue_.has_ready() &&
        (queue_.ready_bytes() >= cfg_.max_buffered_bytes || queue_.ready_records() >= stop_at_records)) {
      return false;
    }
    if (PQconsumeInput(repl_.get()) == 0) lost("could not read from the replication stream");
    bool got = false;
    for (;;) {
      char* raw = nullptr;
      const int n = PQgetCopyData(repl_.get(), &raw, 1);
      if (n > 0) {
        PqBuffer buf(raw);
        got = true;
        handle_copy_data(std::string_view(raw, static_cast<std::size_t>(n)));
        if (queue_.has_ready() &&
            (queue_.ready_bytes() >= cfg_.max_buffered_bytes || queue_.ready_records() >= stop_at_records)) {
          return false;
        }
        continue;
      }
      if (n == 0) break;
      if (n == -1) {  // the server ended the stream: its reason is in the result
        streaming_ = false;
        PgResult r(PQgetResult(repl_.get()));
        const auto message = r ? result_error(r.get()) : conn_error(repl_.get());
        classify_stream_error(r ? sqlstate(r.get()) : "", message,
                              "the server ended replication on slot \"" + cfg_.slot + "\"");
      }
      lost("could not read from the replication stream");
    }
    if (!got) return true;
  }
}

void WalSource::handle_copy_data(std::string_view bytes) {
  CopyMessage msg;
  try {
    msg = decode_copy_data(bytes);
  } catch (const DecodeError& e) {
    throw core::FatalError(std::string("could not decode the replication stream of slot \"") + cfg_.slot +
                           "\": " + e.what());
  }
  if (const auto* k = std::get_if<PrimaryKeepalive>(&msg)) {
    received_ = std::max(received_, k->end_lsn);
    if (!assembler_.in_transaction()) idle_position_ = std::max(idle_position_, k->end_lsn);
    if (k->reply_requested) send_status(false);
    return;
  }
  const auto& x = std::get<XLogData>(msg);
  received_ = std::max({received_, x.start_lsn, x.end_lsn});
  last_activity_ = Clock::now();
  std::optional<Transaction> txn;
  try {
    txn = assembler_.feed_bytes(x.payload);
  } catch (const DecodeError& e) {
    throw core::FatalError("could not decode the replication stream of slot \"" + cfg_.slot + "\" at " +
                           format_lsn(x.start_lsn) + ": " + e.what());
  }
  if (txn) {
    idle_position_ = std::max(idle_position_, txn->end_lsn);
    const auto end = txn->end_lsn;
    if (!queue_.push(std::move(*txn)))
      spdlog::debug("skipped transaction ending at {}: confirmed already", format_lsn(end));
  }
}

void WalSource::send_status(bool request_reply) {
  if (!repl_ || !streaming_) return;
  const auto flush = queue_.confirmed();
  const auto unix_us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  const auto msg = encode_standby_status(std::max(received_, flush), flush, flush,
                                         unix_us_to_pg_time(unix_us), request_reply);
  if (PQputCopyData(repl_.get(), msg.data(), static_cast<int>(msg.size())) != 1)
    lost("could not send a status update");
  if (PQflush(repl_.get()) != 0) lost("could not send a status update");
  if (flush != sent_flush_) spdlog::debug("confirmed {} on slot \"{}\"", format_lsn(flush), cfg_.slot);
  sent_flush_ = flush;
  const auto now = Clock::now();
  last_status_ = now;
  if (request_reply) last_reply_request_ = now;
}

WalSource::Clock::time_point WalSource::next_timer() const {
  auto t = last_status_ + cfg_.status_interval;
  const bool idle = queue_.idle() && !assembler_.in_transaction();
  if (idle && !position_reached()) t = std::min(t, last_reply_request_ + kCatchUpProbe);
  if (idle && idle_position_ > queue_.confirmed()) t = std::min(t, last_activity_ + cfg_.heartbeat_interval);
  return t;
}

void WalSource::tick() {
  const auto now = Clock::now();
  const bool idle = queue_.idle() && !assembler_.in_transaction();
  if (idle && idle_position_ > queue_.confirmed() && now - last_activity_ >= cfg_.heartbeat_interval &&
      queue_.advance_idle(idle_position_)) {
    spdlog::debug("nothing to relay up to {}: moving slot \"{}\" there", format_lsn(idle_position_),
                  cfg_.slot);
  }
  const bool probe = idle && !position_reached() && now - last_reply_request_ >= kCatchUpProbe;
  if (probe || queue_.confirmed() != sent_flush_ || now - last_status_ >= cfg_.status_interval)
    send_status(probe);
}

void WalSource::wait_readable(Clock::time_point until) {
  if (!repl_) return;
  (void)wait_socket(repl_.get(), false, until);
}

void WalSource::service() {
  if (!streaming_) return;
  (void)pump(SIZE_MAX);
  tick();
}

core::Batch WalSource::fetch(std::size_t max, std::chrono::milliseconds wait) {
  if (!streaming_) throw core::TransientError("wal source on slot \"" + cfg_.slot + "\" is not streaming");
  const bool behind = queue_.in_flight();  // pipelined: another batch awaits its acknowledgements
  max = std::max<std::size_t>(max, 1);
  const auto start = Clock::now();
  const auto deadline = start + wait;
  const auto floor = start + std::max(wait, cfg_.min_wait);
  for (;;) {
    const bool drained = pump(max);
    tick();
    const auto now = Clock::now();
    if (queue_.has_ready() && (drained || now >= deadline || queue_.ready_records() >= max ||
                               queue_.ready_bytes() >= cfg_.max_buffered_bytes)) {
      const auto before = queue_.confirmed();
      auto batch = queue_.take(max);
      if (!batch.empty()) {
        last_activity_ = now;
        return batch;
      }
      if (behind) return batch;                              // transactions without records wait
      if (queue_.confirmed() != before) send_status(false);  // only transactions without records
      continue;
    }
    if (now >= deadline && (behind || caught_up() || now >= floor)) return {};
    if (woken_.exchange(false)) return {};
    wait_readable(std::min(now >= deadline ? floor : deadline, next_timer()));
  }
}

// ---- commit ------------------------------------------------------------------------------------------

void WalSource::commit(const core::Batch& batch, const core::Settlement& settlement) {
  const auto plan = queue_.plan(batch, settlement);
  if (!settlement.park.empty()) park(batch, settlement);
  const auto before = queue_.confirmed();
  queue_.finish(plan);
  last_activity_ = Clock::now();
  if (plan.retry) {
    spdlog::debug("confirmed up to {} on slot \"{}\"; the rest of the batch will be fetched again",
                  format_lsn(queue_.confirmed()), cfg_.slot);
  }
  if (queue_.confirmed() != before && streaming_) send_status(false);
}

void WalSource::park(const core::Batch& batch, const core::Settlement& settlement) {
  const std::string what = "could not park poison events";
  if (!meta_ || PQstatus(meta_.get()) != CONNECTION_OK) connect_meta();
  if (!parked_table_ready_) {
    const auto r =
        exec(meta_.get(),
             "CREATE TABLE IF NOT EXISTS outbox_relay_parked (id text NOT NULL, topic text, key text, "
             "payload text, headers jsonb, error text NOT NULL, source text NOT NULL, "
             "parked_at timestamptz NOT NULL DEFAULT now())",
             {}, cfg_.command_timeout, what);
    if (!ok(r)) throw_query_error(r, "could not create table \"outbox_relay_parked\"");
    parked_table_ready_ = true;
  }
  const std::string source = "wal slot " + cfg_.slot;
  nlohmann::json rows = nlohmann::json::array();
  const auto& layout = router_.layout();
  for (const auto& p : settlement.park) {
    if (!p.rejected) {
      const auto& m = batch.messages[p.index];
      nlohmann::json headers = nlohmann::json::object();
      for (const auto& [k, v] : m.headers) headers[k] = parked_text(v);
      rows.push_back({{"id", parked_text(m.id)},
                      {"topic", parked_text(m.topic)},
                      {"key", parked_text(m.key)},
                      {"payload", parked_text(m.value)},
                      {"headers", std::move(headers)},
                      {"error", parked_text(p.reason)},
                      {"source", source}});
      continue;
    }
    const auto& r = batch.rejected[p.index].row;
    auto col = [&r](const std::string& name) -> std::optional<std::string> {
      if (name.empty()) return std::nullopt;
      const auto* v = r.find(name);
      return v != nullptr ? *v : std::nullopt;
    };
    // Every column of the row, so nothing of the event is lost (it exists nowhere else but the WAL).
    nlohmann::json columns = nlohmann::json::object();
    for (const auto& c : r.columns) columns[c.name] = parked_text(c.value);
    rows.push_back({{"id", parked_text(r.id)},
                    {"topic", parked_text(col(layout.topic_column))},
                    {"key", parked_text(col(layout.key_column))},
                    {"payload", parked_text(col(layout.value_column))},
                    {"headers", std::move(columns)},
                    {"error", parked_text(p.reason)},
                    {"source", source}});
  }
  const auto r =
      exec(meta_.get(),
           "INSERT INTO outbox_relay_parked (id, topic, key, payload, headers, error, source) "
           "SELECT id, topic, key, payload, headers, error, source FROM jsonb_to_recordset($1::jsonb) "
           "AS x(id text, topic text, key text, payload text, headers jsonb, error text, source text)",
           {rows.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)}, cfg_.command_timeout, what);
  if (!ok(r)) throw_query_error(r, what);
}

void WalSource::abandon(const core::Batch& /*batch*/) noexcept { queue_.abandon(); }

bool WalSource::caught_up() const {
  return streaming_ && queue_.idle() && !assembler_.in_transaction() && position_reached();
}

void WalSource::close() noexcept {
  if (repl_ && streaming_) {
    try {
      if (!assembler_.in_transaction()) queue_.advance_idle(idle_position_);
      send_status(false);
    } catch (...) {  // best effort: the position is sent again after the next open()
    }
  }
  streaming_ = false;
  repl_.reset();
  meta_.reset();
}

}  // namespace outbox_relay::pg
