#pragma once
// A statement runner that hides which client library runs it (libpqxx for poll mode and the operator's
// queries, raw libpq for WAL mode), so that catalog lookups and parking are written once.

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace pqxx {
class transaction_base;
}

namespace outbox_relay::pg {

// Rows of text values (nullopt for NULL).
using TextRows = std::vector<std::vector<std::optional<std::string>>>;
// Runs one statement with text parameters $1, $2, ... (none: several statements may be given) and
// returns its rows. Throws on failure (the library's error, or core:: errors for raw libpq).
using TextQuery = std::function<TextRows(const std::string& sql, const std::vector<std::string>& params)>;

// Statements within a libpqxx transaction; throws pqxx errors.
TextQuery pqxx_query(pqxx::transaction_base& t);

}  // namespace outbox_relay::pg
