#pragma once
// A librdkafka mock cluster of the test's own, for producers that must share one (given
// test.mock.num.brokers, each producer would get a cluster of its own) or whose topics the test sets up.

#include <doctest/doctest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <memory>
#include <string>

namespace outbox_relay::testing {

class MockCluster {
 public:
  explicit MockCluster(int brokers = 1) {
    char err[512];
    owner_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), err, sizeof err));
    REQUIRE(owner_);
    cluster_.reset(rd_kafka_mock_cluster_new(owner_.get(), brokers));
    REQUIRE(cluster_);
  }
  [[nodiscard]] std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(cluster_.get()); }
  void create_topic(const std::string& name, int partitions) {
    REQUIRE(rd_kafka_mock_topic_create(cluster_.get(), name.c_str(), partitions, 1) ==
            RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  [[nodiscard]] rd_kafka_mock_cluster_t* get() const { return cluster_.get(); }

 private:
  struct OwnerDeleter {
    void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  };
  struct ClusterDeleter {
    void operator()(rd_kafka_mock_cluster_t* c) const { rd_kafka_mock_cluster_destroy(c); }
  };
  std::unique_ptr<rd_kafka_t, OwnerDeleter> owner_;  // destroyed last
  std::unique_ptr<rd_kafka_mock_cluster_t, ClusterDeleter> cluster_;
};

}  // namespace outbox_relay::testing
