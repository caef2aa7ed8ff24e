// `outbox-relay check`: every finding at once (configuration, PostgreSQL, the mode's needs, Kafka),
// non-zero when one of them is a FAIL.

#include <fmt/format.h>

#include <ostream>

#include "app/commands/commands.h"
#include "app/exit_codes.h"
#include "app/format.h"
#include "app/modes.h"
#include "app/signals.h"
#include "kafka/probe.h"
#include "pg/common/conninfo.h"

namespace outbox_relay::app {

namespace {
constexpr std::chrono::milliseconds kKafkaTimeout{10000};
}  // namespace

std::vector<CheckLine> evaluate_server(const Options& o, const pg::ServerFacts& f) {
  using L = CheckLine::Level;
  std::vector<CheckLine> lines;
  const auto& mode = mode_for(o.mode);
  if (!f.table_exists) {
    add(lines, L::kFail,
        "table \"" + o.table + "\" does not exist (create it with `outbox-relay migrate` or set --table)");
  } else {
    const auto layout = o.layout();
    std::vector<std::string> missing;
    for (const auto& c : layout.required_columns()) {
      if (!f.columns.count(c)) missing.push_back(c);
    }
    if (!missing.empty()) {
      add(lines, L::kFail,
          "table \"" + o.table + "\" lacks column(s) " + quoted_list(missing) + " required by the \"" +
              layout.name + "\" layout");
    } else {
      add(lines, L::kOk, "table \"" + o.table + "\" has the columns of the \"" + layout.name + "\" layout");
    }
    mode.check_table(o, f, lines);
  }
  mode.check_server(o, f, lines);
  return lines;
}

int run_check(const Options& o, std::ostream& out) {
  default_signals();
  return run_guarded("check", [&] {
    using L = CheckLine::Level;
    std::vector<CheckLine> lines;
    add(lines, L::kOk,
        fmt::format("configuration is valid (mode {}, table \"{}\", layout {})", mode_for(o.mode).name(),
                    o.table, o.layout_name));
    try {
      auto conn = pg::connect_side(o.db_url, "outbox-relay check", kCommandStatementTimeout);
      const auto f = pg::server_facts(*conn, o.table, o.slot, o.publication);
      add(lines, L::kOk,
          "postgresql: connected to " + pg::redact_conninfo(o.db_url) + " as \"" + f.user + "\" (server " +
              f.server_version + ")");
      for (auto& l : evaluate_server(o, f)) lines.push_back(std::move(l));
      for (auto& l : mode_for(o.mode).failover(*conn, o)) lines.push_back(std::move(l));
    } catch (const std::exception& e) {
      add(lines, L::kFail, std::string("postgresql: ") + e.what());
    }
    try {
      const auto info = kafka::probe_cluster(o.producer_properties(), kKafkaTimeout);
      add(lines, L::kOk, fmt::format("kafka: {} broker(s) answer at {}", info.brokers, o.kafka_brokers));
      std::vector<std::string> topics;
      const auto tmpl = o.layout().topic_template;
      if (tmpl.find('{') == std::string::npos && tmpl.find('$') == std::string::npos) topics.push_back(tmpl);
      if (!o.dlq_topic.empty()) topics.push_back(o.dlq_topic);
      for (const auto& t : topics) {
        if (info.topics.count(t)) {
          add(lines, L::kOk, "kafka: topic \"" + t + "\" exists");
        } else {
          add(lines, L::kWarn,
              "kafka: topic \"" + t + "\" does not exist (fine only if the broker auto-creates topics)");
        }
      }
    } catch (const std::exception& e) {
      add(lines, L::kFail, std::string("kafka: ") + e.what());
    }
    if (o.transactions) {
      try {
        add(lines, L::kOk, "exactly-once: " + describe_exactly_once(o, kKafkaTimeout));
      } catch (const std::exception& e) {
        add(lines, L::kFail, std::string("exactly-once: ") + e.what());
      }
    }
    int failures = 0;
    for (const auto& l : lines) {
      const char* tag = l.level == L::kOk ? "ok  " : l.level == L::kWarn ? "warn" : "FAIL";
      out << tag << "  " << l.text << '\n';
      failures += l.level == L::kFail ? 1 : 0;
    }
    if (failures > 0) {
      out << "check failed: " << failures << " problem(s)\n";
      return kExitFailure;
    }
    out << "check passed\n";
    return kExitOk;
  });
}

}  // namespace outbox_relay::app
