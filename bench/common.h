#pragma once
// Small helpers shared by the bench tools: a monotonic clock that every bench process on this host
// shares (CLOCK_MONOTONIC), a flag parser, and the payload every tool sends so sizes match.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

// Nanoseconds on CLOCK_MONOTONIC: comparable across processes on the same host (the harness uses
// Python's time.monotonic_ns(), the same clock).
inline int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

// `--name value` pairs and bare positional words; `-X k=v` may repeat.
class Args {
 public:
  Args(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "-X" && i + 1 < argc) {
        xprops_.emplace_back(argv[++i]);
      } else if (a.rfind("--", 0) == 0) {
        const auto eq = a.find('=');
        if (eq != std::string::npos) {
          values_[a.substr(2, eq - 2)] = a.substr(eq + 1);
        } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
          values_[a.substr(2)] = argv[++i];
        } else {
          values_[a.substr(2)] = "1";
        }
      } else {
        positional_.push_back(a);
      }
    }
  }
  [[nodiscard]] std::string str(const std::string& k, const std::string& def = "") const {
    auto it = values_.find(k);
    return it == values_.end() ? def : it->second;
  }
  [[nodiscard]] std::string need(const std::string& k) const {
    auto it = values_.find(k);
    if (it == values_.end()) throw std::invalid_argument("--" + k + " is required");
    return it->second;
  }
  [[nodiscard]] int64_t num(const std::string& k, int64_t def) const {
    auto it = values_.find(k);
    return it == values_.end() ? def : std::stoll(it->second);
  }
  [[nodiscard]] double real(const std::string& k, double def) const {
    auto it = values_.find(k);
    return it == values_.end() ? def : std::stod(it->second);
  }
  [[nodiscard]] bool flag(const std::string& k) const { return values_.count(k) > 0; }
  [[nodiscard]] const std::vector<std::string>& positional() const { return positional_; }
  [[nodiscard]] const std::vector<std::string>& xprops() const { return xprops_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
  std::vector<std::string> xprops_;
};

// The event payload: a JSON object of about `bytes` bytes as PostgreSQL's jsonb renders it
// ({"id": N, "ts": N, "pad": "xxx…"}). `ts` is the generator's clock right before COMMIT.
inline std::string payload(uint64_t id, int64_t ts, std::size_t bytes) {
  std::string head = "{\"id\": " + std::to_string(id) + ", \"ts\": " + std::to_string(ts) + ", \"pad\": \"";
  const std::size_t fixed = head.size() + 2;
  std::string out = head;
  if (bytes > fixed) out.append(bytes - fixed, 'x');
  out += "\"}";
  return out;
}

// A unique event number: the writer (connection) in the top bits, its sequence number below.
inline uint64_t event_id(unsigned writer, uint64_t seq) {
  return (static_cast<uint64_t>(writer + 1) << 40) | seq;
}

// Parses the decimal digits of a record key ("123" or, from Debezium's JSON key format, "\"123\"").
inline bool parse_event_id(const char* p, std::size_t n, uint64_t& out) {
  uint64_t v = 0;
  bool any = false;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = p[i];
    if (c >= '0' && c <= '9') {
      v = v * 10 + static_cast<uint64_t>(c - '0');
      any = true;
    } else if (any) {
      break;
    }
  }
  out = v;
  return any;
}

// Writes (event id, ns) pairs as raw little-endian int64 pairs: the harness reads them with numpy.
inline void write_pairs(const std::string& path, const std::vector<std::pair<uint64_t, int64_t>>& v) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("cannot write " + path);
  if (!v.empty()) std::fwrite(v.data(), sizeof v[0], v.size(), f);
  std::fclose(f);
}

}  // namespace bench
