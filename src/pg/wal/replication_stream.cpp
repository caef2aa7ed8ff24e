#include "pg/wal/replication_stream.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/errors.h"
#include "pg/common/libpq_exec.h"
#include "pg/common/sql_text.h"
#include "pg/decode/lsn.h"

namespace outbox_relay::pg {

namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

void ReplicationStream::connect(std::map<std::string, std::string> params, const std::string& redacted,
                                std::chrono::milliseconds session_timeout) {
  close();
  params["replication"] = "database";
  // Tuple text must be in the form the mapping parses (timestamps in ISO).
  auto& options = params["options"];
  options += std::string(options.empty() ? "" : " ") + "-c datestyle=ISO";
  // A relay that stopped answering loses its stream (and the slot passes to a standby) after the session
  // timeout instead of the server-wide wal_sender_timeout (settable per connection since PostgreSQL 12).
  if (options.find("wal_sender_timeout") == std::string::npos) {
    options += " -c wal_sender_timeout=" + std::to_string(session_timeout.count()) + "ms";
  }
  conn_ = connect_libpq(params, "could not open a replication connection to " + redacted);
  backend_pid_ = PQbackendPID(conn_.get());
  const auto r = exec(conn_.get(), "IDENTIFY_SYSTEM", {}, command_timeout_, "IDENTIFY_SYSTEM failed");
  if (!ok(r) || PQntuples(r.get()) != 1 || PQnfields(r.get()) < 4) {
    throw core::TransientError("IDENTIFY_SYSTEM failed on " + redacted + ": " + result_error(r.get()));
  }
  if (!field(r, 0, 3)) {
    throw core::ConfigError("the replication connection to " + redacted + " is not bound to a database");
  }
  system_id_ = field(r, 0, 0).value_or("");
  timeline_ = static_cast<uint32_t>(std::stoul(field(r, 0, 1).value_or("0")));
  spdlog::debug("identified system {} timeline {} at {}", system_id_, timeline_, field(r, 0, 2).value_or(""));
}

bool ReplicationStream::in_recovery() {
  const std::string what = "could not ask the server whether it is a standby";
  const auto r = exec(conn_.get(), "SELECT pg_is_in_recovery()", {}, command_timeout_, what);
  if (!ok(r) || PQntuples(r.get()) != 1) throw core::TransientError(what + ": " + result_error(r.get()));
  return field(r, 0, 0).value_or("f") == "t";
}

std::optional<uint64_t> ReplicationStream::timeline_start(uint32_t tli) {
  if (tli <= 1) return std::nullopt;
  const auto r = exec(conn_.get(), "TIMELINE_HISTORY " + std::to_string(tli), {}, command_timeout_,
                      "could not read the timeline history");
  const auto content = ok(r) ? field(r, 0, 1) : std::nullopt;
  if (!content) return std::nullopt;
  // Lines "<parent tli>\t<switch point>\t<reason>"; the last one is where `tli` began.
  std::optional<uint64_t> start;
  std::size_t from = 0;
  while (from < content->size()) {
    auto end = content->find('\n', from);
    if (end == std::string::npos) end = content->size();
    const auto line = content->substr(from, end - from);
    const auto tab1 = line.find('\t');
    const auto tab2 = tab1 == std::string::npos ? tab1 : line.find('\t', tab1 + 1);
    if (tab1 != std::string::npos && !line.empty() && line[0] != '#') {
      try {
        start =
            parse_lsn(line.substr(tab1 + 1, tab2 == std::string::npos ? std::string::npos : tab2 - tab1 - 1));
      } catch (const std::exception&) {
      }
    }
    from = end + 1;
  }
  return start;
}

void ReplicationStream::start(uint64_t from, const std::string& publication, bool messages) {
  std::string sql = "START_REPLICATION SLOT " + slot_ + " LOGICAL " + format_lsn(from) +
                    " (proto_version '1', publication_names " + quote_literal(quote_ident(publication));
  if (messages) sql += ", messages 'true'";
  sql += ")";
  const std::string what = "could not start replication on slot \"" + slot_ + "\"";
  const auto r = exec(conn_.get(), sql, {}, command_timeout_, what);
  if (PQresultStatus(r.get()) != PGRES_COPY_BOTH) classify(sqlstate(r.get()), result_error(r.get()), what);
  streaming_ = true;
  received_ = from;
  sent_flush_ = 0;
  last_reply_request_ = Clock::time_point{};
}

void ReplicationStream::receive() {
  if (!conn_ || !streaming_)
    throw core::TransientError("wal source on slot \"" + slot_ + "\" is not streaming");
  if (PQconsumeInput(conn_.get()) == 0) lost("could not read from the replication stream");
}

std::optional<CopyMessage> ReplicationStream::next() {
  char* raw = nullptr;
  const int n = PQgetCopyData(conn_.get(), &raw, 1);
  buffer_.reset(raw);
  if (n == 0) return std::nullopt;
  if (n == -1) {  // the server ended the stream: its reason is in the result
    streaming_ = false;
    PgResult r(PQgetResult(conn_.get()));
    const auto message = r ? result_error(r.get()) : conn_error(conn_.get());
    classify(r ? sqlstate(r.get()) : "", message, "the server ended replication on slot \"" + slot_ + "\"");
  }
  if (n < 0) lost("could not read from the replication stream");
  CopyMessage msg;
  try {
    msg = decode_copy_data(std::string_view(raw, static_cast<std::size_t>(n)));
  } catch (const DecodeError& e) {
    throw core::FatalError("could not decode the replication stream of slot \"" + slot_ + "\": " + e.what());
  }
  if (const auto* k = std::get_if<PrimaryKeepalive>(&msg)) {
    received_ = std::max(received_, k->end_lsn);
  } else {
    const auto& x = std::get<XLogData>(msg);
    received_ = std::max({received_, x.start_lsn, x.end_lsn});
  }
  return msg;
}

void ReplicationStream::send_status(uint64_t flush, bool request_reply) {
  if (!conn_ || !streaming_) return;
  const auto unix_us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  const auto msg = encode_standby_status(std::max(received_, flush), flush, flush,
                                         unix_us_to_pg_time(unix_us), request_reply);
  if (PQputCopyData(conn_.get(), msg.data(), static_cast<int>(msg.size())) != 1)
    lost("could not send a status update");
  if (PQflush(conn_.get()) != 0) lost("could not send a status update");
  if (flush != sent_flush_) spdlog::debug("confirmed {} on slot \"{}\"", format_lsn(flush), slot_);
  sent_flush_ = flush;
  const auto now = Clock::now();
  last_status_ = now;
  if (request_reply) last_reply_request_ = now;
}

void ReplicationStream::wait_readable(Clock::time_point until) {
  if (!conn_) return;
  (void)wait_socket(conn_.get(), false, until);
}

void ReplicationStream::close() noexcept {
  streaming_ = false;
  buffer_.reset();
  conn_.reset();
}

void ReplicationStream::lost(const std::string& what) {
  const std::string cause = conn_ ? conn_error(conn_.get()) : "not connected";
  streaming_ = false;
  throw core::TransientError(what + " on slot \"" + slot_ + "\": " + cause);
}

void ReplicationStream::classify(const std::string& state, const std::string& message,
                                 const std::string& what) {
  if (state == "55006") {
    throw core::TransientError(what + ": replication slot \"" + slot_ +
                               "\" is in use by another relay (a standby waits for it): " + message);
  }
  if (state == "42704" && contains(message, "replication slot")) {
    if (slot_seen_) {
      throw core::FatalError("replication slot \"" + slot_ +
                             "\" was dropped: refusing to restart from now, which would lose events");
    }
    throw core::TransientError(what + ": " + message);
  }
  if (state == "55000" &&
      (contains(message, "invalidated") || contains(message, "can no longer get changes"))) {
    throw core::FatalError("replication slot \"" + slot_ + "\" cannot be used any more: " + message +
                           "; events may have been lost: recreate the slot and reconcile");
  }
  if (state == "42704" && contains(message, "publication")) {
    throw core::FatalError(what + ": " + message +
                           " (the publication must exist for every change the slot decodes)");
  }
  throw core::TransientError(what + ": " + message);
}

}  // namespace outbox_relay::pg
