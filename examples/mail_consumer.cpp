// The demo's consumer: a "mail service" that reads order events and sends (prints) a confirmation
// mail once per event, deduplicating with the inbox table (sql/004_inbox.sql) in the same transaction
// as its work, then commits the Kafka offset. Usage:
//   outbox-relay-demo-consumer --brokers HOST:PORT --db-url URL --topic outbox.order [--count N] [--idle 10s]
// Exits after N new events, or after --idle seconds with nothing new.

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

namespace {

struct Args {
  std::string brokers = "127.0.0.1:19092";
  std::string db_url;
  std::string topic = "outbox.order";
  std::string group = "mailer";
  long count = 0;
  long idle_seconds = 10;
};

// The FIRST header of that name: the relay writes its own `id` and `event_type` first (and refuses rows
// whose `headers` JSON names them), so a later one could only come from elsewhere.
std::string header(const rd_kafka_message_t* m, const char* name) {
  rd_kafka_headers_t* h = nullptr;
  if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  const void* v = nullptr;
  size_t n = 0;
  if (rd_kafka_header_get(h, 0, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  return {static_cast<const char*>(v), n};
}

// Records the event in the inbox; true when it is new (the work should be done).
bool first_time(PGconn* db, const std::string& id, const rd_kafka_message_t* m) {
  const std::string topic = rd_kafka_topic_name(m->rkt);
  const std::string partition = std::to_string(m->partition), offset = std::to_string(m->offset);
  const char* params[] = {id.c_str(), topic.c_str(), partition.c_str(), offset.c_str()};
  std::unique_ptr<PGresult, decltype(&PQclear)> r(
      PQexecParams(db,
                   "INSERT INTO inbox (consumer, event_id, topic, partition, \"offset\") "
                   "VALUES ('mailer', $1, $2, $3::int, $4::bigint) ON CONFLICT DO NOTHING",
                   4, nullptr, params, nullptr, nullptr, 0),
      &PQclear);
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    std::fprintf(stderr, "mailer: inbox insert failed: %s", PQerrorMessage(db));
    std::exit(1);
  }
  return std::strcmp(PQcmdTuples(r.get()), "1") == 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--brokers")
      a.brokers = v;
    else if (k == "--db-url")
      a.db_url = v;
    else if (k == "--topic")
      a.topic = v;
    else if (k == "--group")
      a.group = v;
    else if (k == "--count")
      a.count = std::stol(v);
    else if (k == "--idle")
      a.idle_seconds = std::stol(v);
    else {
      std::fprintf(stderr, "mailer: unknown flag %s\n", k.c_str());
      return 78;
    }
  }
  PGconn* db = PQconnectdb(a.db_url.c_str());
  if (PQstatus(db) != CONNECTION_OK) {
    std::fprintf(stderr, "mailer: could not connect to the database: %s", PQerrorMessage(db));
    return 1;
  }
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::pair<const char*, std::string> props[] = {{"bootstrap.servers", a.brokers},
                                                       {"group.id", a.group},
                                                       {"auto.offset.reset", "earliest"},
                                                       {"enable.auto.commit", "false"},
                                                       {"isolation.level", "read_committed"}};
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "mailer: %s\n", err);
      return 78;
    }
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (rk == nullptr) {
    std::fprintf(stderr, "mailer: %s\n", err);
    return 1;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, a.topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);

  long sent = 0, duplicates = 0;
  auto last = std::chrono::steady_clock::now();
  while ((a.count == 0 || sent < a.count) &&
         std::chrono::steady_clock::now() - last < std::chrono::seconds(a.idle_seconds)) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 200);
    if (m == nullptr) continue;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_message_destroy(m);
      continue;
    }
    last = std::chrono::steady_clock::now();
    const auto id = header(m, "id");
    const std::string key(static_cast<const char*>(m->key), m->key_len);
    const std::string value(static_cast<const char*>(m->payload), m->len);
    PQclear(PQexec(db, "BEGIN"));
    if (first_time(db, id, m)) {
      std::printf("mailer: order confirmation mail for %s (event %s): %s\n", key.c_str(), id.c_str(),
                  value.c_str());
      ++sent;
    } else {
      std::printf("mailer: duplicate event %s skipped\n", id.c_str());
      ++duplicates;
    }
    std::fflush(stdout);
    PQclear(PQexec(db, "COMMIT"));
    rd_kafka_commit_message(rk, m, 0);
    rd_kafka_message_destroy(m);
  }
  std::printf("mailer: %ld mails sent, %ld duplicates skipped\n", sent, duplicates);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  PQfinish(db);
  return 0;
}
