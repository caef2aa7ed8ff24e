#include "writers.h"

#include <mutex>
#include <pqxx/pqxx>
#include <thread>

#include "helpers.h"

namespace outbox_relay::testing {

std::vector<std::pair<std::string, std::string>> write_events(const std::string& url, const WriteLoad& load) {
  sql(url, "CREATE TABLE IF NOT EXISTS orders (id bigserial PRIMARY KEY, customer text, total numeric)");
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> committed;
  std::vector<std::thread> threads;
  for (int w = 0; w < load.writers; ++w) {
    threads.emplace_back([&, w] {
      std::unique_ptr<pqxx::connection> conn;
      std::vector<std::pair<std::string, std::string>> mine;
      for (int i = 0; i < load.events_per_writer; ++i) {
        if (load.stop != nullptr && load.stop->load()) break;
        const std::string key =
            "w" + std::to_string(w) + "-a" + std::to_string(i % load.aggregates_per_writer);
        const bool rollback = load.rollback_every > 0 && i % load.rollback_every == load.rollback_every - 1;
        for (int attempt = 0;; ++attempt) {
          try {
            if (!conn) conn = std::make_unique<pqxx::connection>(url);
            pqxx::work tx(*conn);
            tx.exec_params("INSERT INTO orders (customer, total) VALUES ($1, $2)", key, i);
            const auto r = tx.exec_params(
                "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, topic) "
                "VALUES ('order', $1, 'order-created', jsonb_build_object('writer', $2::int, 'seq', $3::int, "
                "'pad', "
                "$4::text), $5) RETURNING id",
                key, w, i, load.payload_padding, load.topic);
            const auto id = r[0][0].as<std::string>();
            if (rollback) {
              tx.abort();
            } else {
              tx.commit();
              mine.emplace_back(id, key);
            }
            break;
          } catch (const pqxx::in_doubt_error&) {
            throw;  // cannot tell whether it committed: the test would be unsound
          } catch (const pqxx::broken_connection&) {
            conn.reset();
            if (attempt > 600) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));  // reconnect pacing, not sync
          }
        }
      }
      std::lock_guard lock(mu);
      committed.insert(committed.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  return committed;
}

}  // namespace outbox_relay::testing
