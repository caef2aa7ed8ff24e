#pragma once
// Secrets kept out of argv, logs and errors: password files, and the redaction of settings before
// the effective configuration is printed.

#include <string>

namespace outbox_relay::app {

// The contents of `path` without trailing newlines (the usual shape of a mounted secret). Throws
// core::ConfigError naming `flag` and the path, never the contents, when the file is unreadable or empty.
std::string read_secret_file(const std::string& flag, const std::string& path);

// `value` of setting `key` (a long flag name) as it may be printed: connection strings reduced to
// host/port/dbname/user, a secret librdkafka property (one -X
// item, sasl.password=...) and any *password*
// setting replaced by [redacted]. Paths of password files are not secret and stay.
std::string redact_setting(const std::string& key, const std::string& value);

}  // namespace outbox_relay::app
