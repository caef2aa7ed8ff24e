#include <doctest/doctest.h>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "app/logging.h"

using namespace outbox_relay;

namespace {

// What `log` writes to stderr through the logger setup_logging makes (the daemon's text lines).
std::string text_log_of(const std::function<void()>& log) {
  const auto previous = spdlog::default_logger();
  std::fflush(stderr);
  const int saved = ::dup(2);
  std::FILE* capture = std::tmpfile();
  REQUIRE(capture != nullptr);
  ::dup2(::fileno(capture), 2);
  app::setup_logging("info");
  log();
  spdlog::default_logger()->flush();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  spdlog::drop("outbox-relay");
  spdlog::set_default_logger(previous);
  std::rewind(capture);
  std::string out;
  char buf[512];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, capture)) > 0;) out.append(buf, n);
  std::fclose(capture);
  return out;
}

}  // namespace

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

TEST_CASE("text logs: a value with a newline or other control characters stays on its line") {
  // A row's topic that would forge a second log line.
  const std::string topic = "orders\n2024-05-01T12:00:00.000+0000 info stopped (signal)\r\x1b[2J\x07";
  const auto out = text_log_of([&] { spdlog::warn("could not publish to topic \"{}\"", topic); });
  INFO(out);
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  CHECK(out.back() == '\n');
  CHECK(
      out.find(
          R"(could not publish to topic "orders\n2024-05-01T12:00:00.000+0000 info stopped (signal)\r\x1b[2J\x07")") !=
      std::string::npos);
  CHECK(out.find('\x1b') == std::string::npos);
}

TEST_CASE(
    "text logs: tabs, UTF-8 and backslashes pass as they are; C1 controls and stray bytes are escaped") {
  const auto out = text_log_of([] { spdlog::info("a\tb h\xC3\xA9llo C:\\dir \xC2\x9B bad \xFF end"); });
  INFO(out);
  CHECK(out.find("a\tb h\xC3\xA9llo C:\\dir \\u009b bad \\xff end\n") != std::string::npos);
}
