#include "pg/wal/failover.h"

#include <algorithm>

#include "pg/common/conninfo.h"
#include "pg/common/libpq_exec.h"
#include "pg/common/session.h"

namespace outbox_relay::pg {

namespace {

constexpr int kFailoverSlots = 170000;

bool truthy(const std::optional<std::string>& v) { return v && (*v == "t" || *v == "on"); }

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "\"" : ", \"") + n + "\"";
  return out;
}

void read_standby(PGconn* c, const std::string& slot, StandbySlotFacts& s) {
  const auto timeout = std::chrono::milliseconds(5000);
  if (PQserverVersion(c) < kFailoverSlots) {
    const auto r = exec(c, "SELECT pg_is_in_recovery()", {}, timeout, "standby probe");
    s.in_recovery = ok(r) && field(r, 0, 0).value_or("f") == "t";
    return;
  }
  const auto r = exec(c,
                      "SELECT pg_is_in_recovery(), current_setting('sync_replication_slots'), "
                      "current_setting('hot_standby_feedback'), current_setting('primary_slot_name') <> '', "
                      "s.slot_name IS NOT NULL, s.synced, s.temporary, s.invalidation_reason "
                      "FROM (SELECT 1) x LEFT JOIN pg_replication_slots s ON s.slot_name = $1",
                      {slot}, timeout, "standby probe");
  if (!ok(r)) {
    s.reached = false;
    s.error = result_error(r.get());
    return;
  }
  s.in_recovery = truthy(field(r, 0, 0));
  s.sync_replication_slots = truthy(field(r, 0, 1));
  s.hot_standby_feedback = truthy(field(r, 0, 2));
  s.primary_slot_name_set = truthy(field(r, 0, 3));
  s.slot_exists = truthy(field(r, 0, 4));
  s.slot_synced = truthy(field(r, 0, 5));
  s.slot_temporary = truthy(field(r, 0, 6));
  s.invalidation_reason = field(r, 0, 7).value_or("");
}

}  // namespace

FailoverFacts primary_failover_facts(const TextQuery& q, const std::string& slot) {
  FailoverFacts f;
  const auto v = q("SELECT current_setting('server_version_num')::int", {});
  f.server_version = std::stoi(v.at(0).at(0).value_or("0"));
  if (f.server_version < kFailoverSlots) {
    f.slot_exists = !q("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", {slot}).empty();
    return f;
  }
  const auto s = q("SELECT failover FROM pg_replication_slots WHERE slot_name = $1", {slot});
  f.slot_exists = !s.empty();
  f.slot_failover = f.slot_exists && truthy(s[0][0]);
  const auto listed =
      q("SELECT l.name, coalesce(p.slot_type = 'physical', false), coalesce(p.active, false) "
        "FROM (SELECT trim(n) AS name FROM "
        "unnest(string_to_array(current_setting('synchronized_standby_slots'), "
        "',')) n) l LEFT JOIN pg_replication_slots p ON p.slot_name = l.name WHERE l.name <> ''",
        {});
  for (const auto& row : listed) {
    const auto name = row[0].value_or("");
    f.standby_slots.push_back(name);
    if (!truthy(row[1])) {
      f.standby_slots_missing.push_back(name);
    } else if (!truthy(row[2])) {
      f.standby_slots_inactive.push_back(name);
    }
  }
  return f;
}

void probe_standbys(const std::string& conninfo, const std::string& primary_label, const std::string& slot,
                    std::chrono::milliseconds timeout, FailoverFacts& f) {
  std::vector<std::map<std::string, std::string>> hosts;
  try {
    hosts = split_hosts(session_params(conninfo, {"outbox-relay failover probe", timeout, timeout}));
  } catch (const std::exception&) {
    return;  // the source reports a bad connection string itself
  }
  for (auto& h : hosts) {
    if (host_label(h) == primary_label) continue;
    StandbySlotFacts s;
    s.label = host_label(h);
    h["target_session_attrs"] = "any";  // a standby is what we look for here
    h.erase("replication");
    try {
      const auto c = connect_libpq(h, "could not connect to " + s.label);
      s.reached = true;
      read_standby(c.get(), slot, s);
    } catch (const std::exception& e) {
      s.reached = false;
      s.error = e.what();
    }
    f.standbys.push_back(std::move(s));
  }
}

FailoverReadiness judge_failover(const FailoverFacts& f, const std::string& slot, bool failover_slot) {
  FailoverReadiness out;
  const std::string name = "slot \"" + slot + "\"";
  if (f.server_version < kFailoverSlots) {
    out.warnings.push_back("PostgreSQL " + std::to_string(f.server_version / 10000) +
                           " has no failover slots: " + name +
                           " exists on this server only, so after a standby is promoted the relay stops "
                           "(slot missing) and the failover needs operator action (`outbox-relay check` "
                           "prints the procedure; PostgreSQL 17 or later makes it automatic)");
    return out;
  }
  out.supported = true;
  if (!failover_slot) {
    out.warnings.push_back("--failover-slot=off: " + name +
                           " is not synchronized to standbys; a promotion needs operator action");
  } else if (f.slot_exists && !f.slot_failover) {
    out.warnings.push_back(name + " is not a failover slot (the relay makes it one when it next starts " +
                           "streaming it; or ALTER_REPLICATION_SLOT " + slot + " (FAILOVER true))");
  } else if (f.slot_exists) {
    out.fine.push_back(name + " is a failover slot");
  }
  // synchronized_standby_slots: logical walsenders send nothing the listed standbys have not flushed.
  if (f.standby_slots.empty()) {
    out.protected_by_standby_slots = 0;
    out.warnings.push_back(
        "synchronized_standby_slots is not set on the primary: the relay may publish events a promoted "
        "standby lacks; set it to the physical slot of the standby that synchronizes " +
        name);
  } else if (!f.standby_slots_missing.empty()) {
    out.protected_by_standby_slots = 0;
    out.warnings.push_back("synchronized_standby_slots names " + joined(f.standby_slots_missing) +
                           ", which is not a physical slot on the primary: logical decoding (the relay) "
                           "waits until it is");
  } else if (!f.standby_slots_inactive.empty()) {
    out.protected_by_standby_slots = 1;
    out.warnings.push_back("synchronized_standby_slots names " + joined(f.standby_slots_inactive) +
                           ", which no standby streams from now: the relay waits for it");
  } else {
    out.protected_by_standby_slots = 1;
    out.fine.push_back("synchronized_standby_slots (" + joined(f.standby_slots) + ") protects " + name);
  }
  bool any_standby = false;
  for (const auto& s : f.standbys) {
    if (!s.reached) {
      out.warnings.push_back("could not check " + name + " on " + s.label + ": " + s.error);
      continue;
    }
    if (!s.in_recovery) continue;  // another primary: not a standby of this one
    any_standby = true;
    if (s.slot_exists && s.slot_synced && !s.slot_temporary && s.invalidation_reason.empty()) {
      out.synced = 1;
      out.fine.push_back(name + " is synchronized on standby " + s.label);
      continue;
    }
    if (out.synced < 0) out.synced = 0;
    std::vector<std::string> missing;
    if (!s.sync_replication_slots) missing.emplace_back("sync_replication_slots = on");
    if (!s.hot_standby_feedback) missing.emplace_back("hot_standby_feedback = on");
    if (!s.primary_slot_name_set) missing.emplace_back("primary_slot_name");
    std::string why;
    if (!s.invalidation_reason.empty()) {
      why = "its copy is invalidated (" + s.invalidation_reason + ")";
    } else if (s.slot_temporary) {
      why = "its copy is not persisted yet (the standby has not caught up with the slot)";
    } else if (!missing.empty()) {
      why = "set " + joined(missing) + " there (and dbname in primary_conninfo)";
    } else if (!s.slot_exists) {
      why =
          "no copy yet (a new failover slot is copied within about 30 s; if it stays missing, check "
          "dbname in the standby's primary_conninfo)";
    } else {
      why = "a slot of that name exists there but was not synchronized from this primary";
    }
    out.warnings.push_back(name + " is not synchronized on standby " + s.label + ": " + why);
  }
  if (!any_standby && f.standbys.empty()) {
    out.warnings.push_back("no standby in --db-url: whether " + name +
                           " is synchronized to a standby was not checked (list the standbys as further "
                           "hosts, with target_session_attrs=read-write)");
  }
  return out;
}

std::string manual_failover_procedure(const std::string& slot, const std::string& publication) {
  return "after a standby is promoted (no failover slots before PostgreSQL 17), slot \"" + slot +
         "\" does not exist there and the relay exits instead of starting from \"now\". To resume: (1) make "
         "sure the old primary is gone for good (stopped, fenced); (2) on the new primary, check that "
         "publication \"" +
         publication + "\" exists and DELETE FROM outbox_relay_slots WHERE slot_name = '" + slot +
         "'; (3) start the relay: it creates the slot at \"now\" and publishes from there; (4) publish the "
         "gap by hand: the outbox rows committed after the newest event Kafka holds (its id header) and "
         "before the new slot (outbox_relay_slots.created_at), e.g. copied into a table of the same layout "
         "and relayed once with --mode=poll --table=<copy> --exit-when-idle (consumers drop duplicates by "
         "id). PostgreSQL 17+ with failover slots (sync_replication_slots on the standby, "
         "synchronized_standby_slots on the primary) makes this automatic";
}

}  // namespace outbox_relay::pg
