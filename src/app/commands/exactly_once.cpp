// What `check` and `status` say of --exactly-once.

#include <fmt/format.h>

#include "app/commands/commands.h"
#include "kafka/checkpoint_topic.h"
#include "pg/decode/lsn.h"

namespace outbox_relay::app {

std::string describe_exactly_once(const Options& o, std::chrono::milliseconds timeout) {
  const auto& t = *o.transactions;
  auto text =
      fmt::format("transactional id \"{}\", checkpoint topic \"{}\": ", t.identity, t.checkpoint_topic);
  const auto cp = kafka::read_checkpoint(o.producer_properties(), t.checkpoint_topic, t.identity, timeout);
  if (!cp) return text + "no checkpoint yet";
  if (cp->position > 0) text += "position " + pg::format_lsn(cp->position) + ", ";
  return text + fmt::format("{} ids published and maybe not marked", cp->ids.size());
}

}  // namespace outbox_relay::app
