#pragma once
// Parses a command line (without the program name) as the daemon would; unit tests only.

#include <string>
#include <vector>

#include "app/options.h"

namespace outbox_relay::testing {

inline app::Options parse_args(std::vector<std::string> args) {
  args.insert(args.begin(), "outbox-relay");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  app::Options o;
  app::parse_options(static_cast<int>(argv.size()), argv.data(), o);
  return o;
}

}  // namespace outbox_relay::testing
