#pragma once
// RAII owners for raw libpq handles, taken at the point of creation:
//   PgConn conn(PQconnectdb(...));   PgResult res(PQgetResult(conn.get()));
// Only files under src/pg/ include this (libpq types never leak past pg/).

#include <libpq-fe.h>

#include <memory>

namespace outbox_relay::pg {

struct PgConnDeleter {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct PgResultDeleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
// Buffers libpq allocates for the caller (PQgetCopyData, PQescapeIdentifier, ...).
struct PqFreememDeleter {
  void operator()(void* p) const noexcept { PQfreemem(p); }
};

using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;
using PqBuffer = std::unique_ptr<char, PqFreememDeleter>;

}  // namespace outbox_relay::pg
