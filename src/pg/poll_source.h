#pragma once
// Poll mode: claims unsent rows with SELECT ... FOR UPDATE SKIP LOCKED in a transaction that stays
// open while the batch is published, then marks (or deletes) the acknowledged rows and commits. A crash
// rolls the transaction back, so the rows are claimed again: at-least-once, never lost. Woken by
// LISTEN/NOTIFY (sql/002_notify.sql); the poll interval is the fallback.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "core/routing.h"
#include "core/source.h"

namespace outbox_relay::pg {

enum class OnSent { kDelete, kMark };

struct PollSourceConfig {
  std::string conninfo;          // may hold a password: never logged
  std::string table = "outbox";  // optionally schema-qualified
  OnSent on_sent = OnSent::kDelete;
  std::string notify_channel = "outbox_relay";
  std::chrono::milliseconds lock_timeout{0};  // 0 = none; bounds waits on DDL locks
};

class PollSource final : public core::OutboxSource {
 public:
  PollSource(PollSourceConfig config, core::Router router);
  ~PollSource() override;

  void open() override;
  core::Batch fetch(std::size_t max, std::chrono::milliseconds wait) override;
  void commit(const core::Batch& batch, std::span<const core::Delivery> deliveries) override;
  void abandon(const core::Batch& batch) noexcept override;
  [[nodiscard]] bool caught_up() const override { return caught_up_; }
  void close() noexcept override;
  [[nodiscard]] std::string describe() const override;

 private:
  class Listener;
  void inspect_table();
  void prepare_statements();
  void wait_for_notification(std::chrono::milliseconds wait);
  void park(const std::vector<std::pair<std::string, std::string>>& poison, const core::Batch& batch);

  PollSourceConfig config_;
  core::Router router_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<pqxx::work> tx_;
  std::string quoted_table_;
  std::string id_type_;
  bool has_failed_columns_ = false;
  bool caught_up_ = false;
  bool notified_ = false;
};

}  // namespace outbox_relay::pg
