#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "app/logging.h"

using namespace outbox_relay;

TEST_CASE("json_escape: quotes, backslashes and control characters") {
  CHECK(app::json_escape(R"(say "hi" \ bye)") == R"(say \"hi\" \\ bye)");
  CHECK(app::json_escape("a\nb\rc\td") == R"(a\nb\rc\td)");
  CHECK(app::json_escape(std::string("\x01\x1f\x7f", 3)) == R"(\u0001\u001f\u007f)");
  CHECK(app::json_escape(std::string("nul\0byte", 8)) == R"(nul\u0000byte)");
  CHECK(app::json_escape("plain ascii") == "plain ascii");
}

TEST_CASE("json_escape: valid UTF-8 passes, invalid bytes become U+FFFD") {
  CHECK(app::json_escape("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80") ==
        "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80");
  CHECK(app::json_escape("bad \xFF byte") == R"(bad \ufffd byte)");
  CHECK(app::json_escape("cut \xE2\x82") == R"(cut \ufffd\ufffd)");
  CHECK(app::json_escape("overlong \xC0\xAF") == R"(overlong \ufffd\ufffd)");
  CHECK(app::json_escape("surrogate \xED\xA0\x80") == R"(surrogate \ufffd\ufffd\ufffd)");
}

TEST_CASE("json_log_line is one valid JSON object whatever the message") {
  const std::string nasty = "could not connect: \"x\"\n\tline2 \\ \xFF\x01 end";
  const auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123));
  const auto line = app::json_log_line(t, "warning", nasty);
  CHECK(line.find('\n') == std::string::npos);
  const auto j = nlohmann::json::parse(line);
  CHECK(j["time"] == "2023-11-14T22:13:20.123Z");
  CHECK(j["level"] == "warning");
  CHECK(j["msg"] == "could not connect: \"x\"\n\tline2 \\ \xEF\xBF\xBD\x01 end");
}
