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
#include <memory>
#include <string>
#include <vector>

#include "core/routing.h"
#include "core/source.h"
#include "pg/poll/claim_sql.h"
#include "pg/poll/leadership.h"
#include "pg/poll/poll_config.h"
#include "pg/poll/watermark.h"

namespace outbox_relay::pg {

class PollSource final : public core::OutboxSource {
 public:
  PollSource(PollSourceConfig config, core::Router router);
  ~PollSource() override;

  void open() override;
  core::Batch fetch(std::size_t max, std::chrono::milliseconds wait) override;
  void commit(const core::Batch& batch, const core::Settlement& settlement) override;
  [[nodiscard]] core::Ordering ordering() const override { return core::Ordering::kPerMessage; }
  // Exactly-once: the checkpoint names the ids a batch's transaction published (none while idle).
  [[nodiscard]] core::Checkpoint checkpoint(const core::Batch& batch,
                                            const core::Settlement& settlement) const override;
  [[nodiscard]] std::optional<core::Checkpoint> expected_checkpoint(const core::Batch& batch) const override;
  void recover(const core::Checkpoint& checkpoint) override;
  void abandon(const core::Batch& batch) noexcept override;
  [[nodiscard]] bool caught_up() const override { return caught_up_ && leader_; }
  [[nodiscard]] bool leader() const override { return leader_; }
  void close() noexcept override;
  void wake() noexcept override;
  [[nodiscard]] int pipeline_depth() const override { return config_.pipeline ? 2 : 1; }
  [[nodiscard]] std::string describe() const override;

 private:
  class Listener;
  struct Session;  // one database session (libpqxx, kept out of this header); sessions_[0] also listens
  void keep_alive(Session& s);
  void connect(Session& s);
  void inspect_table(Session& s);
  void check_privileges(const TextQuery& query, const TableShape& table);
  void wait_for_notification(std::chrono::milliseconds wait);
  bool try_lead();
  void park(Session& s, const core::Batch& batch, const core::Settlement& settlement);

  PollSourceConfig config_;
  core::Router router_;
  std::vector<Session> sessions_;
  std::unique_ptr<Listener> listener_;
  ClaimStatements statements_;
  bool value_is_bytea_ = false;
  bool parked_table_ready_ = false;
  bool inspected_ = false;      // the table passed every check once: later failures may pass
  std::string table_identity_;  // schema.name as the catalog has it
  bool caught_up_ = false;
  bool notified_ = false;
  bool leader_ = false;
  LeadLog lead_log_;
  Watermark watermark_;
  int wake_fd_ = -1;  // eventfd: wake() makes a wait in fetch() return at once
};

}  // namespace outbox_relay::pg
