// Connection strings (pg/common/conninfo.h): no message derived from one may carry its password.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "core/errors.h"
#include "pg/common/conninfo.h"

namespace pg = outbox_relay::pg;
namespace core = outbox_relay::core;

namespace {

// The message of the ConfigError parse_conninfo throws for `conninfo` ("" when it parses).
std::string parse_error(const std::string& conninfo) {
  try {
    (void)pg::parse_conninfo(conninfo);
  } catch (const core::ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("conninfo: a URL libpq cannot parse is refused without echoing its password") {
  for (const std::string url :
       {"postgresql://relay:S3cr%ZZet@db.example:5432/app", "postgresql://relay:S3cr%ZZet@[::1/app",
        "postgresql://relay:S3cr%ZZet@db:5x/app", "host=db password=S3cr%ZZet nonsense",
        "host=db password='S3cr%ZZet"}) {
    const auto why = parse_error(url);
    INFO(url, " -> ", why);
    CHECK(why.rfind("invalid connection string: ", 0) == 0);
    CHECK(why.find("S3cr") == std::string::npos);
    CHECK(why.find("ZZet") == std::string::npos);
  }
  // what libpq quotes that is a keyword stays: the operator can still tell which option is wrong
  CHECK(parse_error("host=db bogus_option=1").find("\"bogus_option\"") == std::string::npos);
  CHECK(parse_error("postgresql://db/app?sslmode").find("invalid connection string") == 0);
  CHECK(pg::redact_quoted(R"(invalid value "x1y2" for "sslmode")") == R"(invalid value "***" for "sslmode")");
  CHECK(pg::redact_conninfo("postgresql://relay:S3cr%ZZet@db/app") == "(invalid connection string)");
}

TEST_CASE(
    "conninfo: a connection error names a refused option as a configuration error, never the password") {
  const std::map<std::string, std::string> params = {
      {"host", "db"}, {"password", "S3cret"}, {"sslmode", "bogus"}};
  CHECK_THROWS_WITH_AS(
      pg::throw_connect_error(params, "could not connect to host=db", "invalid sslmode value: \"bogus\"\n"),
      "could not connect to host=db: invalid sslmode value: \"bogus\"", core::ConfigError);
  CHECK_THROWS_WITH_AS(pg::throw_connect_error(params, "could not connect",
                                               "FATAL:  password authentication failed, sent \"S3cret\""),
                       "could not connect: FATAL:  password authentication failed, sent \"***\"",
                       core::TransientError);
  CHECK_THROWS_AS(pg::throw_connect_error(params, "could not connect", "connection refused"),
                  core::TransientError);
  CHECK_THROWS_AS(pg::throw_connect_error("postgresql://u:S3cr%ZZet@db/app", "could not connect", "refused"),
                  core::ConfigError);
  CHECK(pg::redact_secret("a S3cret b S3cret", params) == "a *** b ***");
}
