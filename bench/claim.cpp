// bench_claim: the DB-only ceiling of poll mode. Runs the poll source's claim-and-mark loop — the
// statements pg::claim_statements builds for the relay (src/pg/poll/claim_sql.h: SELECT <layout
// columns>::text ... ORDER BY o.id LIMIT $1 FOR UPDATE OF o SKIP LOCKED, then DELETE ... WHERE id =
// ANY($1)) in one transaction per batch — with no Kafka in between, until the table has no unsent row
// left.
//
//   bench_claim --db-url URL [--layout default|debezium] [--table T] [--batch-size N] [--timeout S]
//               [--order qualified|text-alias] [--claim-sql SQL --done-sql SQL]
// --order text-alias: the claim as commit 0262e23 wrote it, ORDER BY the output column `id::text AS id`
// (PostgreSQL then sorts every pending row as text instead of walking the id index), kept as evidence
// of what that cost; qualified (the relay's) is the default.
// A claim with a watermark parameter ($2, as the relay's when ids are integers) gets the last id of the
// previous batch: the best case, so the ceiling is not lowered by it.
// Prints one JSON line: events, batches, elapsed seconds, events/s.

#include <libpq-fe.h>

#include <cstdio>
#include <string>

#include "common.h"
#include "core/routing.h"
#include "pg/common/catalog.h"
#include "pg/common/libpq_exec.h"
#include "pg/poll/claim_sql.h"

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

    // The relay's statements for this table as it is (PollSource::inspect_table does the same).
    const auto shape = outbox_relay::pg::describe_table(
        outbox_relay::pg::libpq_query(c, std::chrono::seconds(30), "inspect table"), table);
    if (!shape) throw std::runtime_error("table \"" + table + "\" does not exist");
    outbox_relay::pg::PollSourceConfig cfg;
    cfg.table = table;
    const auto statements = outbox_relay::pg::claim_statements(layout, *shape, cfg);
    std::string select = statements.claim;
    if (a.str("order") == "text-alias") {
      const auto id = "o.\"" + layout.id_column + "\"";
      const auto at = select.find(" ORDER BY " + id);
      if (at != std::string::npos)
        select.replace(at, 10 + id.size(), " ORDER BY \"" + layout.id_column + "\"");
    }
    std::string done = statements.done;
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
