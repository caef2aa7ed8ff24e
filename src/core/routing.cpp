#include "core/routing.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace outbox_relay::core {

Layout Layout::default_layout() {
  Layout l;
  l.name = "default";
  l.id_column = "id";
  l.key_column = "aggregate_id";
  l.value_column = "payload";
  l.topic_column = "topic";
  l.headers_column = "headers";
  l.timestamp_column = "created_at";
  l.header_placements = {{"event_type", "event_type"}};
  l.topic_template = "outbox.{aggregate_type}";
  l.route_by_column = "aggregate_type";
  return l;
}

Layout Layout::debezium_layout() {
  Layout l;
  l.name = "debezium";
  l.id_column = "id";
  l.key_column = "aggregateid";
  l.value_column = "payload";
  l.header_placements = {{"type", "type"}};
  l.topic_template = "outbox.event.${routedByValue}";
  l.route_by_column = "aggregatetype";
  return l;
}

std::vector<std::string> Layout::columns() const {
  std::vector<std::string> out;
  auto add = [&out](const std::string& c) {
    if (!c.empty() && std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  };
  add(id_column);
  add(key_column);
  add(value_column);
  add(route_by_column);
  for (const auto& p : header_placements) add(p.column);
  add(topic_column);
  add(headers_column);
  add(timestamp_column);
  // columns named by {placeholders} in the template
  for (std::size_t pos = topic_template.find('{'); pos != std::string::npos;
       pos = topic_template.find('{', pos + 1)) {
    const auto end = topic_template.find('}', pos);
    if (end == std::string::npos) break;
    const auto column = topic_template.substr(pos + 1, end - pos - 1);
    if (column != "routedByValue") add(column);
  }
  return out;
}

std::vector<std::string> Layout::required_columns() const {
  auto all = columns();
  std::erase_if(all, [this](const std::string& c) {
    return c == topic_column || c == headers_column || c == timestamp_column;
  });
  return all;
}

bool valid_topic_name(const std::string& topic) {
  if (topic.empty() || topic.size() > 249 || topic == "." || topic == "..") return false;
  return std::all_of(topic.begin(), topic.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::variant<std::string, std::string> render_topic(const std::string& tmpl, const Layout& layout,
                                                    const OutboxRow& row) {
  std::string out;
  out.reserve(tmpl.size() + 16);
  std::size_t i = 0;
  while (i < tmpl.size()) {
    const bool dollar = tmpl[i] == '$' && i + 1 < tmpl.size() && tmpl[i + 1] == '{';
    if (tmpl[i] != '{' && !dollar) {
      out.push_back(tmpl[i++]);
      continue;
    }
    const auto open = dollar ? i + 1 : i;
    const auto close = tmpl.find('}', open);
    if (close == std::string::npos) {
      out.append(tmpl, i, std::string::npos);
      break;
    }
    std::string name = tmpl.substr(open + 1, close - open - 1);
    if (name == "routedByValue") name = layout.route_by_column;
    const auto* v = row.find(name);
    if (v == nullptr || !v->has_value()) {
      return std::variant<std::string, std::string>(std::in_place_index<1>,
                                                    "column \"" + name + "\" for the topic is NULL");
    }
    out += **v;
    i = close + 1;
  }
  return std::variant<std::string, std::string>(std::in_place_index<0>, std::move(out));
}

std::vector<Header> parse_headers_json(const std::string& json_text) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::invalid_argument(std::string("headers is not valid JSON: ") + e.what());
  }
  if (j.is_null()) return {};
  if (!j.is_object())
    throw std::invalid_argument("headers must be a JSON object, got " + std::string(j.type_name()));
  std::vector<Header> out;
  out.reserve(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& v = it.value();
    if (v.is_string()) {
      out.emplace_back(it.key(), v.get<std::string>());
    } else if (v.is_null()) {
      out.emplace_back(it.key(), std::string());
    } else {
      out.emplace_back(it.key(), v.dump());
    }
  }
  return out;
}

namespace {

int64_t parse_timestamp_ms(const std::string& s) {
  int64_t v = 0;
  const auto* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || p != end) return 0;
  return v;
}

}  // namespace

Router::Result Router::map(const OutboxRow& row) const {
  auto fail = [](std::string why) { return Result(std::in_place_index<1>, std::move(why)); };
  OutboxMessage m;
  m.id = row.id;
  m.position = row.position;

  const std::optional<std::string>* topic_override =
      layout_.topic_column.empty() ? nullptr : row.find(layout_.topic_column);
  if (topic_override != nullptr && topic_override->has_value() && !(*topic_override)->empty()) {
    m.topic = **topic_override;
  } else {
    auto rendered = render_topic(layout_.topic_template, layout_, row);
    if (rendered.index() == 1) return fail(std::get<1>(rendered));
    m.topic = std::move(std::get<0>(rendered));
  }
  if (!valid_topic_name(m.topic)) return fail("invalid topic name \"" + m.topic + "\"");

  if (const auto* k = row.find(layout_.key_column); k != nullptr) m.key = *k;
  if (const auto* v = row.find(layout_.value_column); v != nullptr) m.value = *v;

  m.headers.emplace_back("id", row.id);
  for (const auto& p : layout_.header_placements) {
    const auto* v = row.find(p.column);
    if (v != nullptr && v->has_value()) m.headers.emplace_back(p.header, **v);
  }
  if (!layout_.headers_column.empty()) {
    const auto* h = row.find(layout_.headers_column);
    if (h != nullptr && h->has_value()) {
      try {
        auto extra = parse_headers_json(**h);
        for (auto& e : extra) m.headers.push_back(std::move(e));
      } catch (const std::invalid_argument& e) {
        return fail(e.what());
      }
    }
  }
  if (!layout_.timestamp_column.empty()) {
    const auto* t = row.find(layout_.timestamp_column);
    if (t != nullptr && t->has_value()) m.timestamp_ms = parse_timestamp_ms(**t);
  }
  return Result(std::in_place_index<0>, std::move(m));
}

}  // namespace outbox_relay::core
