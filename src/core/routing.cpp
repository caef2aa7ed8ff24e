#include "core/routing.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/errors.h"

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

namespace {

bool topic_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

}  // namespace

bool valid_topic_name(const std::string& topic) {
  if (topic.empty() || topic.size() > 249 || topic == "." || topic == "..") return false;
  return std::all_of(topic.begin(), topic.end(), topic_char);
}

std::vector<std::string> Layout::reserved_headers() const {
  std::vector<std::string> out{"id"};
  for (const auto& p : header_placements) out.push_back(p.header);
  return out;
}

void Layout::validate() const {
  const auto& t = topic_template;
  auto bad_template = [&t](const std::string& why) {
    throw ConfigError("--topic-template: \"" + t + "\" " + why);
  };
  if (t.empty() && topic_column.empty()) bad_template("is empty and the table has no topic column");
  for (std::size_t i = 0; i < t.size();) {
    const bool dollar = t[i] == '$';
    if (dollar && (i + 1 >= t.size() || t[i + 1] != '{')) bad_template("has a '$' not followed by '{'");
    if (t[i] == '}') bad_template("has a '}' without its '{'");
    if (t[i] != '{' && !dollar) {
      if (!topic_char(t[i])) {
        bad_template("has a character no Kafka topic name may hold: '" + std::string(1, t[i]) +
                     "' (letters, digits, '.', '_' and '-' only)");
      }
      ++i;
      continue;
    }
    const auto open = dollar ? i + 1 : i;
    const auto close = t.find('}', open);
    if (close == std::string::npos) bad_template("has a '{' that is never closed");
    const auto placeholder = t.substr(open + 1, close - open - 1);
    if (placeholder.empty() || placeholder.find('{') != std::string::npos)
      bad_template("has an empty or nested placeholder");
    if (placeholder == "routedByValue" && route_by_column.empty()) {
      bad_template("uses ${routedByValue} but no --route-by column is set");
    }
    i = close + 1;
  }
  std::vector<std::string> seen{"id"};
  for (const auto& p : header_placements) {
    if (p.column.empty() || p.header.empty()) {
      throw ConfigError("--header-column: \"" + p.column + ":" + p.header +
                        "\" needs a column and a header name");
    }
    if (std::find(seen.begin(), seen.end(), p.header) != seen.end()) {
      throw ConfigError("--header-column: header \"" + p.header + "\" is set already" +
                        (p.header == "id" ? " (the relay sends the outbox id as \"id\")" : ""));
    }
    seen.push_back(p.header);
  }
}

Router::Router(Layout layout) : layout_(std::move(layout)) { layout_.validate(); }

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
  } catch (const nlohmann::json::exception& e) {
    // Valid JSON the parser cannot hold, e.g. a number beyond a double (jsonb's numeric allows 1e666):
    // the row is poison with the reason, never an exception that ends the relay on every restart.
    throw std::invalid_argument(std::string("headers cannot be read: ") + e.what());
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
        const auto reserved = layout_.reserved_headers();
        for (auto& e : extra) {
          if (std::find(reserved.begin(), reserved.end(), e.first) != reserved.end()) {
            return fail("headers: \"" + e.first + "\" is reserved (the relay sets it from the row)");
          }
          m.headers.push_back(std::move(e));
        }
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
