#include "core/checkpoint.h"

#include <charconv>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

namespace outbox_relay::core {

namespace {

// An id written the one way a bigint column prints it (no sign, no leading zero), as a number; a run of
// consecutive such ids is stored as its first id and length.
std::optional<uint64_t> canonical_number(const std::string& id) {
  if (id.empty() || id.size() > 18 || (id.size() > 1 && id[0] == '0')) return std::nullopt;
  uint64_t v = 0;
  const auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), v);
  if (ec != std::errc() || p != id.data() + id.size()) return std::nullopt;
  return v;
}

uint64_t decimal(const std::string& text, const char* what) {
  uint64_t v = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty())
    throw std::invalid_argument(std::string("checkpoint ") + what + " \"" + text + "\" is not a number");
  return v;
}

constexpr std::size_t kMinRun = 3;           // shorter runs stay single ids
constexpr std::size_t kMaxIds = 10'000'000;  // what a decoded checkpoint may expand to

}  // namespace

std::string encode_checkpoint(const Checkpoint& checkpoint, const std::string& identity) {
  // ids: an array of single ids ("17") and runs (["100", 2000] = 100..2099), in the checkpoint's order,
  // so that a batch of consecutive ids costs a few bytes however large it is.
  auto ids = nlohmann::json::array();
  const auto& in = checkpoint.ids;
  for (std::size_t i = 0; i < in.size();) {
    std::size_t n = 1;
    if (const auto first = canonical_number(in[i])) {
      while (i + n < in.size() && canonical_number(in[i + n]) == *first + n) ++n;
    }
    if (n >= kMinRun) {
      ids.push_back(nlohmann::json::array({in[i], n}));
    } else {
      for (std::size_t k = 0; k < n; ++k) ids.push_back(in[i + k]);
    }
    i += n;
  }
  nlohmann::json j = {
      {"v", 2}, {"identity", identity}, {"position", std::to_string(checkpoint.position)}, {"ids", ids}};
  if (checkpoint.partial_records > 0) {
    j["partial"] = {{"lsn", std::to_string(checkpoint.partial_lsn)}, {"records", checkpoint.partial_records}};
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

DecodedCheckpoint decode_checkpoint(const std::string& value) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(value);
  } catch (const nlohmann::json::exception& e) {  // not JSON, or numbers it cannot hold
    throw std::invalid_argument(std::string("checkpoint is not JSON: ") + e.what());
  }
  if (!j.is_object()) throw std::invalid_argument("checkpoint is not a JSON object");
  const int version = j.contains("v") && j["v"].is_number_integer() ? j["v"].get<int>() : 0;
  if (version != 1 && version != 2) {
    throw std::invalid_argument("checkpoint has an unknown version (this relay reads versions 1 and 2)");
  }
  DecodedCheckpoint d;
  if (!j.contains("identity") || !j["identity"].is_string())
    throw std::invalid_argument("checkpoint has no identity");
  d.identity = j["identity"].get<std::string>();
  if (!j.contains("position") || !j["position"].is_string())
    throw std::invalid_argument("checkpoint has no position");
  d.checkpoint.position = decimal(j["position"].get<std::string>(), "position");
  if (j.contains("partial")) {
    const auto& partial = j["partial"];
    if (!partial.is_object() || !partial.contains("lsn") || !partial["lsn"].is_string() ||
        !partial.contains("records") || !partial["records"].is_number_unsigned())
      throw std::invalid_argument("checkpoint partial must be {\"lsn\": \"<decimal>\", \"records\": N}");
    d.checkpoint.partial_lsn = decimal(partial["lsn"].get<std::string>(), "partial lsn");
    d.checkpoint.partial_records = partial["records"].get<uint64_t>();
    // Equal is normal: a commit record may start right where the one before it ended.
    if (d.checkpoint.partial_lsn < d.checkpoint.position && d.checkpoint.partial_records > 0)
      throw std::invalid_argument("checkpoint partial transaction is not after its position");
  }
  if (!j.contains("ids") || !j["ids"].is_array()) throw std::invalid_argument("checkpoint has no ids");
  auto& ids = d.checkpoint.ids;
  for (const auto& id : j["ids"]) {
    if (id.is_string()) {
      ids.push_back(id.get<std::string>());
    } else if (version == 2 && id.is_array() && id.size() == 2 && id[0].is_string() &&
               id[1].is_number_unsigned()) {
      const auto first = canonical_number(id[0].get<std::string>());
      const auto n = id[1].get<uint64_t>();
      if (!first || n == 0 || n > kMaxIds || *first > std::numeric_limits<uint64_t>::max() - n)
        throw std::invalid_argument("checkpoint has a malformed run of ids");
      for (uint64_t k = 0; k < n && ids.size() <= kMaxIds; ++k) ids.push_back(std::to_string(*first + k));
    } else {
      throw std::invalid_argument("checkpoint ids must be strings or runs [\"first\", count]");
    }
    if (ids.size() > kMaxIds) throw std::invalid_argument("checkpoint names too many ids");
  }
  return d;
}

}  // namespace outbox_relay::core
