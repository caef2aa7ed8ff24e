#include "pg/poll/watermark.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <pqxx/pqxx>

namespace outbox_relay::pg {

void Watermark::reset() {
  floor_ = kHead;
  candidate_.reset();
  full_next_ = true;
}

int64_t Watermark::claim_floor(pqxx::transaction_base& tx) {
  const auto now = Clock::now();
  if (candidate_ && now - last_check_ >= std::chrono::milliseconds(200)) {
    last_check_ = now;
    if (candidate_->xmax.empty()) {
      if (now - candidate_->seen >= std::chrono::seconds(1)) {
        candidate_->xmax = tx.exec_prepared("snapshot_xmax")[0][0].as<std::string>();
      }
    } else {
      const auto r = tx.exec_prepared("advance", candidate_->xmax, std::to_string(floor_),
                                      std::to_string(candidate_->id));
      if (r[0][0].as<bool>()) {
        floor_ = r[0][1].is_null() ? candidate_->id : std::max(floor_, r[0][1].as<int64_t>() - 1);
        candidate_.reset();
        spdlog::debug("watermark at {}", floor_);
      } else {
        spdlog::debug("watermark held at {}: a transaction that may add rows at or below {} is still running",
                      floor_, candidate_->id);
      }
    }
  }
  // After an empty claim (at most once a second: under a light load most claims are empty) and every
  // full_scan_interval, from the head.
  if ((full_next_ && now - last_full_ >= std::chrono::seconds(1)) ||
      now - last_full_ >= full_scan_interval_) {
    full_next_ = false;
    last_full_ = now;
    return kHead;
  }
  return floor_;
}

void Watermark::claimed(const std::string& last_id) {
  if (candidate_) return;
  try {
    const auto id = std::stoll(last_id);
    if (id > floor_) candidate_ = Candidate{id, Clock::now(), {}};
  } catch (const std::exception&) {
    // not an integer after all: no watermark
  }
}

}  // namespace outbox_relay::pg
