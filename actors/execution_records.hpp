// What became of recent executions, for GET /executions/{id}: their phase and, once
// they ended, their report. Bounded in count, bytes and age; the least recently used
// ended record goes first. Thread-safe: the HTTP threads read it, the executions'
// callbacks write it.
#pragma once

#include "core/execution.hpp"

#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace codeexec {

struct execution_records_limits {
  std::size_t max_count = 1000;
  std::size_t max_bytes = 64 << 20;
  std::chrono::milliseconds max_age{3600000};
};

class execution_records {
 public:
  explicit execution_records(execution_records_limits limits) : limits_(limits) {}

  /// An execution of `owner` started.
  void started(const std::string& id, const std::string& owner);
  /// It ended with `report`.
  void ended(const execution_report& report);
  /// The record of `id` if `owner` started it and it is still kept.
  std::optional<execution_record> find(const std::string& owner, const std::string& id);
  /// Its phase alone (no copy of the report).
  std::optional<execution_phase> phase(const std::string& owner, const std::string& id);

 private:
  struct entry {
    execution_record record;
    std::string owner;
    std::chrono::steady_clock::time_point ended_at;
    /// About what the report holds (its output, results and error).
    std::size_t bytes = 0;
  };
  using list = std::list<entry>;

  /// Drops ended records past the age, the count or the bytes, oldest use first.
  void evict();  // mutex_ held

  execution_records_limits limits_;
  std::mutex mutex_;
  list order_;  // most recently used first; guarded by mutex_
  std::unordered_map<std::string, list::iterator> by_id_;  // guarded by mutex_
  std::size_t bytes_ = 0;                                  // guarded by mutex_
};

}  // namespace codeexec
