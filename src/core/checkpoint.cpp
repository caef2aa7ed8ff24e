#include "core/checkpoint.h"

#include <charconv>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace outbox_relay::core {

std::string encode_checkpoint(const Checkpoint& checkpoint, const std::string& identity) {
  nlohmann::json j = {{"v", 1},
                      {"identity", identity},
                      {"position", std::to_string(checkpoint.position)},
                      {"ids", checkpoint.ids}};
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
  if (!j.contains("v") || !j["v"].is_number_integer() || j["v"].get<int>() != 1) {
    throw std::invalid_argument("checkpoint has an unknown version (this relay reads version 1)");
  }
  DecodedCheckpoint d;
  if (!j.contains("identity") || !j["identity"].is_string())
    throw std::invalid_argument("checkpoint has no identity");
  d.identity = j["identity"].get<std::string>();
  if (!j.contains("position") || !j["position"].is_string())
    throw std::invalid_argument("checkpoint has no position");
  const auto pos = j["position"].get<std::string>();
  const auto [p, ec] = std::from_chars(pos.data(), pos.data() + pos.size(), d.checkpoint.position);
  if (ec != std::errc() || p != pos.data() + pos.size() || pos.empty())
    throw std::invalid_argument("checkpoint position \"" + pos + "\" is not a number");
  if (!j.contains("ids") || !j["ids"].is_array()) throw std::invalid_argument("checkpoint has no ids");
  for (const auto& id : j["ids"]) {
    if (!id.is_string()) throw std::invalid_argument("checkpoint ids must be strings");
    d.checkpoint.ids.push_back(id.get<std::string>());
  }
  return d;
}

}  // namespace outbox_relay::core
