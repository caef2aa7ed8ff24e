#pragma once
// The SQL files of sql/, compiled in by cmake/embed_sql.cmake.

#include <string>
#include <vector>

namespace outbox_relay::pg {

struct EmbeddedMigration {
  std::string name;  // file name, e.g. "001_outbox.sql"; applied in this order
  std::string sql;
};

const std::vector<EmbeddedMigration>& embedded_migrations();

}  // namespace outbox_relay::pg
