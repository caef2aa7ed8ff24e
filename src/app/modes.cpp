#include "app/modes.h"

#include "pg/common/conninfo.h"

#include <algorithm>

namespace outbox_relay::app {

const ModeDescription& mode_for(Mode mode) {
  switch (mode) {
    case Mode::kWal:
      return wal_mode();
    case Mode::kPoll:
      break;
  }
  return poll_mode();
}

namespace {
constexpr Mode kModes[] = {Mode::kPoll, Mode::kWal};
}  // namespace

std::optional<Mode> mode_named(std::string_view name) {
  for (const auto m : kModes) {
    if (mode_for(m).name() == name) return m;
  }
  return std::nullopt;
}

std::vector<std::string> mode_names() {
  std::vector<std::string> names;
  for (const auto m : kModes) names.emplace_back(mode_for(m).name());
  return names;
}

std::string database_name(const Options& o) {
  const auto params = pg::parse_conninfo(o.db_url);
  for (const char* key : {"dbname", "user"}) {
    if (const auto it = params.find(key); it != params.end() && !it->second.empty()) return it->second;
  }
  return "postgres";
}

void check_grants(const Options& o, const pg::ServerFacts& f,
                  std::vector<std::pair<std::string, std::string>> needed, std::vector<CheckLine>& lines) {
  using L = CheckLine::Level;
  if (o.retention.count() > 0 &&
      std::none_of(needed.begin(), needed.end(), [](const auto& n) { return n.first == "DELETE"; })) {
    needed.emplace_back("DELETE", "for --retention");
  }
  std::vector<std::string> have, lack;
  for (const auto& [priv, why] : needed) {
    const bool ok = priv == "SELECT" ? f.can_select : priv == "UPDATE" ? f.can_update : f.can_delete;
    if (ok) {
      have.push_back(priv);
    } else {
      lack.push_back(priv);
      add(lines, L::kFail,
          "role \"" + f.user + "\" lacks " + priv + " on table \"" + o.table + "\" (" + why + "): GRANT " +
              priv + " ON " + o.table + " TO " + f.user + " (or GRANT outbox_relay TO " + f.user + ")");
    }
  }
  if (lack.empty()) {
    std::string list;
    for (const auto& h : have) list += (list.empty() ? "" : ", ") + h;
    add(lines, L::kOk, "role \"" + f.user + "\" has " + list + " on table \"" + o.table + "\"");
  }
}

}  // namespace outbox_relay::app
