#include "pg/common/libpq_exec.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>

#include "core/errors.h"
#include "pg/common/conninfo.h"

namespace outbox_relay::pg {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string one_line(const char* text) {
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

std::string conn_error(PGconn* c) { return one_line(PQerrorMessage(c)); }

std::string result_error(const PGresult* r) {
  if (r == nullptr) return "no result";
  const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  if (primary != nullptr) return one_line(primary);
  return one_line(PQresultErrorMessage(r));
}

std::string sqlstate(const PGresult* r) {
  const char* s = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  return s != nullptr ? s : "";
}

PgConn connect_libpq(const std::map<std::string, std::string>& params, const std::string& what) {
  PgConn c(PQconnectdb(build_conninfo(params).c_str()));
  if (!c || PQstatus(c.get()) != CONNECTION_OK)
    throw_connect_error(params, what, c ? conn_error(c.get()) : std::string("out of memory"));
  return c;
}

bool wait_socket(PGconn* c, bool for_write, Clock::time_point until) {
  const int fd = PQsocket(c);
  if (fd < 0) return true;  // let the next libpq call report the broken connection
  const auto left = std::chrono::ceil<milliseconds>(until - Clock::now()).count();
  if (left <= 0) return false;
  pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
  const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
  return n != 0 || errno == EINTR;
}

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
  // Out of range is nullopt too, asked first: libpq would print a notice on stderr for it.
  if (row >= PQntuples(r.get()) || col >= PQnfields(r.get())) return std::nullopt;
  if (PQgetisnull(r.get(), row, col) != 0) return std::nullopt;
  return std::string(PQgetvalue(r.get(), row, col), static_cast<std::size_t>(PQgetlength(r.get(), row, col)));
}

void throw_query_error(const PgResult& r, const std::string& what) {
  const auto state = sqlstate(r.get());
  if (state == "42501") throw core::ConfigError(what + ": " + result_error(r.get()));
  throw core::TransientError(what + ": " + result_error(r.get()));
}

TextQuery libpq_query(PGconn* c, milliseconds timeout, const std::string& what) {
  return [c, timeout, what](const std::string& sql, const std::vector<std::string>& params) {
    const std::vector<std::optional<std::string>> values(params.begin(), params.end());
    const auto r = exec(c, sql, values, timeout, what);
    if (!ok(r)) throw_query_error(r, what);
    TextRows rows(static_cast<std::size_t>(PQntuples(r.get())));
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      for (int j = 0; j < PQnfields(r.get()); ++j)
        rows[static_cast<std::size_t>(i)].push_back(field(r, i, j));
    }
    return rows;
  };
}

}  // namespace outbox_relay::pg
