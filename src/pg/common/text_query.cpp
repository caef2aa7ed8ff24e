#include "pg/common/text_query.h"

#include <pqxx/pqxx>

namespace outbox_relay::pg {

TextQuery pqxx_query(pqxx::transaction_base& t) {
  return [&t](const std::string& sql, const std::vector<std::string>& params) {
    const auto r =
        params.empty() ? t.exec(sql) : t.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
    TextRows rows;
    for (const auto& row : r) {
      auto& out = rows.emplace_back();
      for (const auto& f : row)
        out.push_back(f.is_null() ? std::nullopt : std::optional(f.as<std::string>()));
    }
    return rows;
  };
}

}  // namespace outbox_relay::pg
