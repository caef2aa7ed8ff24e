#pragma once
// Whether WAL mode's slot survives the promotion of a standby (PostgreSQL 17+ failover slots), from what
// the primary and the other hosts of a multi-host --db-url report. Used by the WAL source at start and
// after following a new primary (warnings in the log), by `check`/`status` and by the /metrics gauges.
//
// The facts are gathered by two functions (one query on the primary; one short connection to each other
// host), and judged by a pure one (judge_failover), so the rules are written once and unit-tested.

#include <chrono>
#include <string>
#include <vector>

#include "pg/common/text_query.h"

namespace outbox_relay::pg {

// What a standby (another host of --db-url) says about the slot.
struct StandbySlotFacts {
  std::string label;  // host:port
  bool reached = false;
  std::string error;  // why it was not reached
  bool in_recovery = false;
  bool sync_replication_slots = false;
  bool hot_standby_feedback = false;
  bool primary_slot_name_set = false;
  bool slot_exists = false;
  bool slot_synced = false;
  bool slot_temporary = false;  // synced, but not yet persisted: dropped if promoted now
  std::string invalidation_reason;
};

struct FailoverFacts {
  int server_version = 0;  // server_version_num of the primary
  bool slot_exists = false;
  bool slot_failover = false;                       // pg_replication_slots.failover (17+)
  std::vector<std::string> standby_slots;           // synchronized_standby_slots (17+)
  std::vector<std::string> standby_slots_missing;   // listed, but no physical slot of that name
  std::vector<std::string> standby_slots_inactive;  // listed, but no standby streams from it
  std::vector<StandbySlotFacts> standbys;           // the other hosts of --db-url
};

// One query on a normal connection to the primary. Throws what `q` throws.
FailoverFacts primary_failover_facts(const TextQuery& q, const std::string& slot);

// Connects to every host of `conninfo` except `primary_label` (host:port) with a short timeout and adds
// what each says about `slot`. Never throws: an unreachable host is recorded with its error.
void probe_standbys(const std::string& conninfo, const std::string& primary_label, const std::string& slot,
                    std::chrono::milliseconds timeout, FailoverFacts& f);

struct FailoverReadiness {
  bool supported = false;  // PostgreSQL 17 or later
  // 1: the slot is synchronized (persisted, valid) on a standby of --db-url; 0: on none of those probed;
  // -1: unknown (no standby in --db-url, or no failover slots).
  int synced = -1;
  // 1: synchronized_standby_slots names physical slots that exist and are streamed (the relay receives
  // nothing a standby lacks); 0: not; -1: no failover slots.
  int protected_by_standby_slots = -1;
  std::vector<std::string> fine;      // what is in place
  std::vector<std::string> warnings;  // each names the setting that is missing
};

// `failover_slot`: --failover-slot (the relay makes its slot a failover slot).
FailoverReadiness judge_failover(const FailoverFacts& f, const std::string& slot, bool failover_slot);

// What an operator does after a promotion when the server has no failover slots (15, 16).
std::string manual_failover_procedure(const std::string& slot, const std::string& publication);

}  // namespace outbox_relay::pg
