#pragma once
// Poll mode: claims unsent rows with SELECT ... FOR UPDATE SKIP LOCKED in a transaction that stays
// open while the batch is published, then marks (or deletes) the acknowledged rows and commits. A crash
// rolls the transaction back, so the rows are claimed again: at-least-once, never lost. Woken by
// LISTEN/NOTIFY (sql/002_notify.sql); the poll interval is the fallback.
//
// Pipelined (two sessions): while one session's batch waits for Kafka, the other claims the next
// rows (SKIP LOCKED passes over the first session's), so claiming and marking overlap publishing.
// Leading takes an advisory lock on each session; a standby needs both, so it cannot start while
// either session of a cut-off leader still holds a claim.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "core/routing.h"
#include "core/source.h"
#include "pg/poll/poll_config.h"

namespace outbox_relay::pg {

class PollSource final : public core::OutboxSource {
 public:
  PollSource(PollSourceConfig config, core::Router router);
  ~PollSource() override;

  void open() override;
  core::Batch fetch(std::size_t max, std::chrono::milliseconds wait) override;
  void commit(const core::Batch& batch, const core::Settlement& settlement) override;
  [[nodiscard]] core::Ordering ordering() const override { return core::Ordering::kPerMessage; }
  void abandon(const core::Batch& batch) noexcept override;
  [[nodiscard]] bool caught_up() const override { return caught_up_ && leader_; }
  [[nodiscard]] bool leader() const override { return leader_; }
  void close() noexcept override;
  void wake() noexcept override;
  [[nodiscard]] int pipeline_depth() const override { return config_.pipeline ? 2 : 1; }
  [[nodiscard]] std::string describe() const override;

 private:
  class Listener;
  // One database session; sessions_[0] also listens for NOTIFY.
  struct Session {
    std::unique_ptr<pqxx::connection> conn;
    std::unique_ptr<pqxx::work> tx;                // the open claim, if any
    bool locked = false;                           // holds its lead advisory lock
    std::chrono::steady_clock::time_point used{};  // last statement (the server ends idle sessions)
  };
  void keep_alive(Session& s);
  std::unique_ptr<pqxx::connection> connect();
  void inspect_table(pqxx::connection& c);
  void prepare_statements(pqxx::connection& c);
  void wait_for_notification(std::chrono::milliseconds wait);
  bool try_lead();
  void park(pqxx::work& tx, const core::Batch& batch, const core::Settlement& settlement);
  int64_t claim_floor(pqxx::work& tx);
  void note_claimed(const std::string& last_id);

  PollSourceConfig config_;
  core::Router router_;
  std::vector<Session> sessions_;
  std::unique_ptr<Listener> listener_;
  std::string quoted_table_;
  std::string id_type_;
  bool has_failed_columns_ = false;
  bool value_is_bytea_ = false;
  bool caught_up_ = false;
  bool notified_ = false;
  bool leader_ = false;
  bool standby_logged_ = false;
  int wake_fd_ = -1;  // eventfd: wake() makes a wait in fetch() return at once

  // Watermark: every claimable row with id <= floor_ is done. It moves to a candidate id (the last id
  // of a claim) once every transaction that could still add a row at or below it has ended: the
  // snapshot xmin passed the xmax seen a second after the claim (a writer takes its id a moment
  // before its transaction id).
  bool watermark_ = false;
  int64_t floor_ = INT64_MIN;
  struct Candidate {
    int64_t id = 0;
    std::chrono::steady_clock::time_point seen;
    std::string xmax;  // empty until taken
  };
  std::optional<Candidate> candidate_;
  std::chrono::steady_clock::time_point last_check_{};
  std::chrono::steady_clock::time_point last_full_{};
  bool full_next_ = true;
};

}  // namespace outbox_relay::pg
