#include "kafka/config.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>

#include "core/errors.h"

namespace outbox_relay::kafka {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

void refuse_weakening(const std::string& key, const std::string& value) {
  const auto v = lower(value);
  auto refuse = [&](const std::string& why) {
    throw core::ConfigError("-X " + key + "=" + value + ": " + why);
  };
  if (key == "acks" || key == "request.required.acks") {
    if (v != "all" && v != "-1")
      refuse("the relay always uses acks=all so that no acknowledged event is lost");
  } else if (key == "enable.idempotence") {
    if (v != "true")
      refuse("the relay always uses the idempotent producer (no duplicates or reordering on retry)");
  } else if (key == "max.in.flight.requests.per.connection" || key == "max.in.flight") {
    int n = 0;
    try {
      n = std::stoi(v);
    } catch (const std::exception&) {
      refuse("not a number");
    }
    if (n < 1 || n > 5) refuse("must be 1..5 with the idempotent producer (ordering)");
  } else if (key == "enable.gapless.guarantee" && v == "false") {
    // allowed: the default
  } else if (key == "partitioner" || key == "topic.partitioner") {
    // Every librdkafka partitioner but `random` hashes the key (the *_random ones pick at random only
    // for keyless records, which carry no order).
    if (v == "random") refuse("records must be partitioned by key (the aggregate id) to keep per-key order");
  } else if (key == "transactional.id") {
    refuse(
        "the relay does not take a transactional id from -X: it would turn every batch into a "
        "Kafka transaction the relay never commits");
  } else if (key == "dr_cb" || key == "dr_msg_cb" || key == "error_cb" || key == "opaque" ||
             key == "partitioner_cb") {
    refuse("callbacks are set by the relay");
  } else if (key == "delivery.report.only.error" && v == "true") {
    refuse("the relay needs every delivery report to mark events sent");
  }
}

}  // namespace

std::vector<Property> parse_overrides(const std::vector<std::string>& args) {
  std::vector<Property> out;
  for (const auto& a : args) {
    const auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw core::ConfigError("-X " + a.substr(0, a.find_first_of(":")) + ": expected key=value");
    }
    auto key = a.substr(0, eq);
    auto value = a.substr(eq + 1);
    refuse_weakening(key, value);
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

std::vector<Property> producer_properties(const std::string& brokers,
                                          const std::vector<Property>& overrides) {
  std::vector<Property> props = {
      {"client.id", "outbox-relay"},
      // Batches are bounded by the relay's own batch size; a short linger lets one batch fill
      // producer batches without adding visible latency to a lone event.
      {"linger.ms", "2"},
      {"batch.num.messages", "10000"},
      {"batch.size", "1000000"},
      {"queue.buffering.max.messages", "200000"},
      {"queue.buffering.max.kbytes", "262144"},
      // A delivery that cannot finish within this is reported as failed and the batch is retried:
      // short enough that a stuck batch does not hold its claim for minutes.
      {"message.timeout.ms", "30000"},
      {"socket.keepalive.enable", "true"},
      {"reconnect.backoff.ms", "100"},
      {"reconnect.backoff.max.ms", "2000"},
      {"retry.backoff.ms", "100"},
      {"topic.metadata.refresh.interval.ms", "60000"},
      {"statistics.interval.ms", "0"},
  };
  if (!brokers.empty()) props.emplace_back("bootstrap.servers", brokers);
  for (const auto& o : overrides) {
    if (!brokers.empty() && (o.first == "bootstrap.servers" || o.first == "metadata.broker.list")) {
      throw core::ConfigError("-X " + o.first +
                              " conflicts with --kafka-brokers: give the bootstrap servers once");
    }
    props.push_back(o);
  }
  props.emplace_back("acks", "all");
  props.emplace_back("enable.idempotence", "true");
  return props;
}

rd_kafka_conf_s* new_conf(const std::vector<Property>& properties) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [k, v] : properties) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw core::ConfigError("-X " + k + ": " + err);
    }
  }
  return conf;
}

bool is_secret_property(const std::string& name) {
  const auto n = lower(name);
  for (const char* s :
       {"password", "secret", "key.pem", ".key", "token", "sasl.oauthbearer.config", "jaas"}) {
    if (n.find(s) != std::string::npos) return true;
  }
  return false;
}

}  // namespace outbox_relay::kafka
