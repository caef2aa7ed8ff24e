// libFuzzer target for the WAL-mode decoding path: arbitrary bytes into the pgoutput decoder, the
// replication CopyData wrappers, the LSN/timestamp/prefix parsers, and (as a length-prefixed stream of
// messages) the transaction assembler with its relation cache and the transaction queue. Malformed
// input may throw DecodeError (or FatalError for a layout mismatch, invalid_argument for an LSN);
// anything else -- a crash, another exception, a sanitizer report, a leak -- is a bug.
// Built and run by scripts/fuzz.sh; seeds in tests/fuzz/corpus/.

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/errors.h"
#include "core/routing.h"
#include "pg/decode/assembler.h"
#include "pg/decode/lsn.h"
#include "pg/decode/pgoutput.h"
#include "pg/decode/txn_queue.h"

namespace pg = outbox_relay::pg;
namespace core = outbox_relay::core;

namespace {

void whole(std::string_view data) {
  try {
    const auto m = pg::pgoutput::decode(data);
    (void)pg::pgoutput::tag(m);
  } catch (const pg::DecodeError&) {
  }
  try {
    const auto c = pg::decode_copy_data(data);
    if (const auto* x = std::get_if<pg::XLogData>(&c)) {
      try {
        (void)pg::pgoutput::decode(x->payload);
      } catch (const pg::DecodeError&) {
      }
    }
  } catch (const pg::DecodeError&) {
  }
  try {
    const auto lsn = pg::parse_lsn(data);
    if (pg::parse_lsn(pg::format_lsn(lsn)) != lsn) __builtin_trap();
  } catch (const std::invalid_argument&) {
  }
  (void)pg::timestamp_text_to_ms(data);
  (void)pg::decode_bytea_hex(data);
  (void)pg::route_message_prefix(data, "outbox");
  (void)pg::route_message_prefix(data, "app:");
}

// The input as a stream: [u16 big-endian length][message]...
void stream(std::string_view data) {
  pg::TransactionAssembler::Options opts;
  opts.table_schema = "public";
  opts.table_name = "outbox";
  opts.message_prefix = "outbox";
  opts.warn = [](const std::string&) {};
  opts.chunk_bytes = 1024;  // small: transactions of a few records come in chunks too
  pg::TransactionAssembler assembler(core::Router(core::Layout::default_layout()), opts);
  pg::TxnQueue queue(0);
  while (data.size() >= 2) {
    const std::size_t len =
        (static_cast<std::size_t>(static_cast<uint8_t>(data[0])) << 8) | static_cast<uint8_t>(data[1]);
    data.remove_prefix(2);
    const auto chunk = data.substr(0, len);
    data.remove_prefix(chunk.size());
    try {
      auto txn = assembler.feed_bytes(chunk);
      if (txn && queue.push(std::move(*txn))) {
        auto batch = queue.take(3);
        if (!batch.empty()) {
          std::vector<core::Delivery> d(batch.messages.size());
          for (std::size_t i = 0; i < d.size(); ++i) {
            d[i].status = i % 3 == 2 ? core::DeliveryStatus::kRetriable : core::DeliveryStatus::kAcked;
          }
          const auto before = queue.confirmed();
          const auto plan = queue.plan(batch, core::settle(batch, d, core::Ordering::kPrefix));
          queue.finish(plan, batch);
          if (queue.confirmed() < before || queue.confirmed() > batch.end_position) __builtin_trap();
        }
      }
    } catch (const pg::DecodeError&) {
      assembler.reset();
    } catch (const core::FatalError&) {
      assembler.reset();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, std::size_t size) {
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  whole(data);
  stream(data);
  return 0;
}
