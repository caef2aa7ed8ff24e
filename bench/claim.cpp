// bench_claim: the DB-only ceiling of poll mode. Runs the poll source's claim-and-mark loop — the same
// SQL as src/pg/poll_source.cpp builds (SELECT <layout columns>::text ... ORDER BY id LIMIT $1 FOR
// UPDATE SKIP LOCKED, then DELETE ... WHERE id = ANY($1)) in one transaction per batch — with no
// Kafka in between, until the table has no unsent row left.
//
//   bench_claim --db-url URL [--layout default|debezium] [--table T] [--batch-size N] [--timeout S]
//               [--order qualified] [--claim-sql SQL --done-sql SQL]
// A claim with a watermark parameter ($2, as the relay's when ids are integers) gets the last id of the
// previous batch: the best case, so the ceiling is not lowered by it.
// Prints one JSON line: events, batches, elapsed seconds, events/s.

#include <libpq-fe.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "common.h"
#include "core/routing.h"

namespace {

PGresult* must(PGconn* c, PGresult* r, const char* what) {
  const auto s = PQresultStatus(r);
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    std::string e = std::string(what) + ": " + PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    throw std::runtime_error(e);
  }
  return r;
}

std::string quote_ident(PGconn* c, const std::string& s) {
  char* q = PQescapeIdentifier(c, s.c_str(), s.size());
  std::string out(q);
  PQfreemem(q);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bench::Args a(argc, argv);
    const bool dbz = a.str("layout", "default") == "debezium";
    const auto layout =
        dbz ? outbox_relay::core::Layout::debezium_layout() : outbox_relay::core::Layout::default_layout();
    const std::string table = a.str("table", dbz ? "dbz_outbox" : "outbox");
    const long batch = static_cast<long>(a.num("batch-size", 2000));
    const double timeout = a.real("timeout", 600);

    PGconn* c = PQconnectdb(a.need("db-url").c_str());
    if (PQstatus(c) != CONNECTION_OK) throw std::runtime_error(std::string("connect: ") + PQerrorMessage(c));

    // Columns present in the table and the id type, as PollSource::inspect_table/prepare_statements do.
    std::vector<std::string> present;
    std::string id_type;
    {
      const char* p[1] = {table.c_str()};
      PGresult* r = must(c,
                         PQexecParams(c,
                                      "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                                      "WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
                                      1, nullptr, p, nullptr, nullptr, 0),
                         "inspect table");
      for (int i = 0; i < PQntuples(r); ++i) {
        present.emplace_back(PQgetvalue(r, i, 0));
        if (present.back() == layout.id_column) id_type = PQgetvalue(r, i, 1);
      }
      PQclear(r);
    }
    auto has = [&](const std::string& col) {
      return std::find(present.begin(), present.end(), col) != present.end();
    };
    std::string select = "SELECT ";
    bool first = true;
    for (const auto& col : layout.columns()) {
      if (!has(col)) continue;
      if (!first) select += ", ";
      first = false;
      const auto q = quote_ident(c, col);
      if (col == layout.timestamp_column) {
        select += "(extract(epoch FROM " + q + ") * 1000)::bigint::text AS " + q;
      } else {
        select += q + "::text AS " + q;
      }
    }
    std::string pending;
    if (has("sent_at")) pending += " AND sent_at IS NULL";
    if (has("failed_at") && has("error")) pending += " AND failed_at IS NULL";
    const auto qt = quote_ident(c, table);
    const auto id = quote_ident(c, layout.id_column);
    // --order qualified: the proposed fix. The relay's unqualified ORDER BY names the output column
    // `id::text AS id`, so PostgreSQL sorts every pending row as text instead of walking the id index.
    const std::string order = a.str("order") == "qualified" ? qt + "." + id : id;
    select +=
        " FROM " + qt + " WHERE true" + pending + " ORDER BY " + order + " LIMIT $1 FOR UPDATE SKIP LOCKED";
    std::string done = "DELETE FROM " + qt + " WHERE " + id + " = ANY($1::" + id_type + "[])";
    // The exact statements the relay prepared (the harness reads them from pg_stat_activity).
    if (!a.str("claim-sql").empty()) select = a.str("claim-sql");
    if (!a.str("done-sql").empty()) done = a.str("done-sql");
    const bool watermark = select.find("$2") != std::string::npos;
    PQclear(must(c, PQprepare(c, "claim", select.c_str(), watermark ? 2 : 1, nullptr), "prepare claim"));
    PQclear(must(c, PQprepare(c, "done", done.c_str(), 1, nullptr), "prepare done"));

    const std::string batch_text = std::to_string(batch);
    std::string floor = "-9223372036854775808";
    int64_t events = 0, batches = 0;
    const int64_t start = bench::now_ns();
    const int64_t deadline = start + static_cast<int64_t>(timeout * 1e9);
    bool timed_out = false;
    for (;;) {
      if (bench::now_ns() > deadline) {
        timed_out = true;
        break;
      }
      PQclear(must(c, PQexec(c, "BEGIN"), "begin"));
      const char* p1[2] = {batch_text.c_str(), floor.c_str()};
      PGresult* rows =
          must(c, PQexecPrepared(c, "claim", watermark ? 2 : 1, p1, nullptr, nullptr, 0), "claim");
      const int n = PQntuples(rows);
      if (n == 0) {
        PQclear(rows);
        PQclear(must(c, PQexec(c, "COMMIT"), "commit"));
        break;
      }
      std::string ids = "{";
      for (int i = 0; i < n; ++i) {
        if (i > 0) ids += ',';
        ids += '"';
        ids += PQgetvalue(rows, i, 0);
        ids += '"';
      }
      ids += '}';
      floor = PQgetvalue(rows, n - 1, 0);
      PQclear(rows);
      const char* p2[1] = {ids.c_str()};
      PQclear(must(c, PQexecPrepared(c, "done", 1, p2, nullptr, nullptr, 0), "mark"));
      PQclear(must(c, PQexec(c, "COMMIT"), "commit"));
      events += n;
      ++batches;
    }
    const int64_t end = bench::now_ns();
    PQfinish(c);
    const double elapsed = static_cast<double>(end - start) / 1e9;
    std::string esc;
    for (char ch : select) {
      if (ch == '"' || ch == '\\') esc += '\\';
      esc += ch;
    }
    std::printf(
        "{\"events\": %lld, \"batches\": %lld, \"elapsed_s\": %.3f, \"rate\": %.1f, \"timed_out\": %s, "
        "\"sql\": \"%s\"}\n",
        static_cast<long long>(events), static_cast<long long>(batches), elapsed,
        static_cast<double>(events) / elapsed, timed_out ? "true" : "false", esc.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_claim: %s\n", e.what());
    return 1;
  }
}
