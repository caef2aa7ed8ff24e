// Multi-host connection strings: one parameter set per host, as libpq pairs hosts and ports.
#include <doctest/doctest.h>

#include "core/errors.h"
#include "pg/common/conninfo.h"
#include "pg/common/session.h"

using namespace outbox_relay;

TEST_CASE("a multi-host URL splits into one parameter set per host") {
  const auto hosts = pg::split_hosts(pg::parse_conninfo(
      "postgresql://relay:pw@10.0.0.1:5432,10.0.0.2:5433/app?target_session_attrs=read-write"));
  REQUIRE(hosts.size() == 2);
  CHECK(hosts[0].at("host") == "10.0.0.1");
  CHECK(hosts[0].at("port") == "5432");
  CHECK(hosts[1].at("host") == "10.0.0.2");
  CHECK(hosts[1].at("port") == "5433");
  for (const auto& h : hosts) {
    CHECK(h.at("dbname") == "app");
    CHECK(h.at("password") == "pw");
    CHECK(h.at("target_session_attrs") == "read-write");
  }
  CHECK(pg::host_label(hosts[1]) == "10.0.0.2:5433");
}

TEST_CASE("one port serves every host; a single host gives one set") {
  const auto hosts = pg::split_hosts(pg::parse_conninfo("host=a,b port=6432 dbname=d"));
  REQUIRE(hosts.size() == 2);
  CHECK(hosts[0].at("port") == "6432");
  CHECK(hosts[1].at("port") == "6432");
  CHECK(hosts[1].at("host") == "b");
  const auto one = pg::split_hosts(pg::parse_conninfo("host=db dbname=d"));
  REQUIRE(one.size() == 1);
  CHECK(pg::host_label(one[0]) == "db");
  CHECK(pg::split_hosts(pg::parse_conninfo("dbname=d")).size() == 1);
}

TEST_CASE("an empty entry leaves that host's value to libpq's default") {
  const auto hosts = pg::split_hosts(pg::parse_conninfo("host=a,b port=,5433"));
  REQUIRE(hosts.size() == 2);
  CHECK(hosts[0].count("port") == 0);
  CHECK(hosts[1].at("port") == "5433");
}

TEST_CASE("host and port lists that do not pair are a configuration error") {
  CHECK_THROWS_AS(pg::split_hosts(pg::parse_conninfo("host=a,b,c port=1,2")), core::ConfigError);
  CHECK_THROWS_AS(pg::split_hosts(pg::parse_conninfo("host=a,b hostaddr=127.0.0.1")), core::ConfigError);
}

TEST_CASE("session parameters keep a multi-host string intact") {
  const auto p = pg::session_params("postgresql://u@a:1,b:2/d?target_session_attrs=read-write", {});
  CHECK(p.at("host") == "a,b");
  CHECK(p.at("port") == "1,2");
  CHECK(p.at("target_session_attrs") == "read-write");
  const auto again = pg::parse_conninfo(pg::build_conninfo(p));
  CHECK(again.at("host") == "a,b");
  CHECK(again.at("port") == "1,2");
  CHECK(pg::redact_conninfo("postgresql://u:secret@a:1,b:2/d").find("secret") == std::string::npos);
}
