#pragma once
// Poll mode's watermark (integer ids claimed in id order): every claimable row with id <= floor is
// done, so a claim may start past it and skip the index entries of sent rows that vacuum cannot remove
// yet (an old snapshot elsewhere). The floor moves to a candidate id (the last id of a claim) once
// every transaction that could still add a row at or below it has ended: the snapshot xmin passed the
// xmax seen a second after the claim (a writer takes its id a moment before its transaction id).
// A claim after an empty one (at most once a second) and one every full_scan_interval start from the
// head instead, so a row made pending again below the floor (replay, a resolved block) waits at most
// that long. Uses the statements "snapshot_xmax" and "advance" of pg/poll/claim_sql.h, prepared.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace pqxx {
class transaction_base;
}

namespace outbox_relay::pg {

class Watermark {
 public:
  static constexpr int64_t kHead = INT64_MIN;  // a claim from the head

  explicit Watermark(std::chrono::milliseconds full_scan_interval)
      : full_scan_interval_(full_scan_interval) {}

  // Forget what was learnt (a new session or a new leader learns the floor again).
  void reset();

  // Where this claim starts (its $2): past the floor, or kHead. Moves the floor first when its candidate
  // is safe (at most every 200 ms, within the claim's transaction `tx`). Throws pqxx errors.
  int64_t claim_floor(pqxx::transaction_base& tx);

  // A claim starting at `from` came back empty: the next claim starts from the head when it started
  // past the floor.
  void claimed_nothing(int64_t from) { full_next_ = from != kHead; }

  // The last id of a claim that returned rows (text of the id column): a candidate for the floor.
  void claimed(const std::string& last_id);

 private:
  using Clock = std::chrono::steady_clock;
  struct Candidate {
    int64_t id = 0;
    Clock::time_point seen;
    std::string xmax;  // empty until taken
  };

  std::chrono::milliseconds full_scan_interval_;
  int64_t floor_ = kHead;
  std::optional<Candidate> candidate_;
  Clock::time_point last_check_{};
  Clock::time_point last_full_{};
  bool full_next_ = true;
};

}  // namespace outbox_relay::pg
