#pragma once
// PostgreSQL connection strings (URL or key=value form): validation, redaction for logs, and
// adding parameters (application_name, keepalives, replication) without string surgery.

#include <map>
#include <string>
#include <vector>

namespace outbox_relay::pg {

// Parsed non-empty parameters. Throws core::ConfigError("invalid connection string: ...") naming the
// problem but never echoing the string itself (it may hold a password): of the parts libpq's message
// quotes, only connection keywords are kept (redact_quoted).
std::map<std::string, std::string> parse_conninfo(const std::string& conninfo);

// key=value form of `params`, values quoted as libpq requires.
std::string build_conninfo(const std::map<std::string, std::string>& params);

// `conninfo` with `extra` added where the caller did not set them already.
std::string with_defaults(const std::string& conninfo, const std::map<std::string, std::string>& extra);

// `conninfo` with its password replaced by `password` (from --db-password-file), in key=value form.
// Throws core::ConfigError like parse_conninfo.
std::string with_password(const std::string& conninfo, const std::string& password);

// `text` with every double-quoted part that is not a libpq connection keyword (nor one character)
// replaced by ***: for libpq's messages about a string it could not parse.
std::string redact_quoted(const std::string& text);

// `text` with every occurrence of the password in `params` replaced by ***.
std::string redact_secret(const std::string& text, const std::map<std::string, std::string>& params);

// A failed connection attempt: throws core::ConfigError when libpq refused the parameters themselves
// (an invalid sslmode value, port number, ...: no retry can fix them), core::TransientError otherwise;
// "<what>: <cause>", the password removed from libpq's `cause`. The string form throws ConfigError
// like parse_conninfo when `conninfo` does not parse.
[[noreturn]] void throw_connect_error(const std::map<std::string, std::string>& params,
                                      const std::string& what, const std::string& cause);
[[noreturn]] void throw_connect_error(const std::string& conninfo, const std::string& what,
                                      const std::string& cause);

// One parameter set per host of a multi-host connection string (`host=a,b port=5432,5433` or
// `postgresql://a:5432,b:5433/db`): host, hostaddr and port split at commas as libpq pairs them (one port
// for every host, or one per host), every other parameter kept. A single-host string gives one set.
// Throws core::ConfigError when the lists do not pair.
std::vector<std::map<std::string, std::string>> split_hosts(const std::map<std::string, std::string>& params);

// "host:port" of one host's parameters (hostaddr when no host name), for logs.
std::string host_label(const std::map<std::string, std::string>& params);

// For logs and errors: host, port, dbname and user only; never the password. Does not throw.
std::string redact_conninfo(const std::string& conninfo);

}  // namespace outbox_relay::pg
