#include "actors/execution_records.hpp"

namespace codeexec {
namespace {

/// What the bookkeeping of a record costs besides its report.
constexpr std::size_t record_overhead = 256;

/// About the memory a report holds: its text, rich results and error.
std::size_t report_bytes(const execution_report& report) {
  const auto& r = report.result;
  std::size_t bytes = 0;
  for (const auto* chunks : {&r.stdout_chunks, &r.stderr_chunks})
    for (const auto& c : *chunks) bytes += c.size() + 32;
  for (const auto& result : r.results)
    for (const auto& [format, value] : result.items())
      bytes +=
          format.size() + (value.is_string() ? value.get_ref<const std::string&>().size() : 16);
  if (r.error) bytes += r.error->name.size() + r.error->value.size() + r.error->traceback.size();
  if (report.rejection) bytes += report.rejection->message.size();
  return bytes;
}

execution_phase phase_of(const execution_report& report) {
  if (report.rejection) return execution_phase::failed;
  const auto& error = report.result.error;
  if (!error) return execution_phase::completed;
  return error->name == "ExecutionCancelled" ? execution_phase::cancelled : execution_phase::failed;
}

}  // namespace

void execution_records::started(const std::string& id, const std::string& owner) {
  std::lock_guard lock{mutex_};
  entry e;
  e.record.id = id;
  e.record.started = std::chrono::system_clock::now();
  e.owner = owner;
  order_.push_front(std::move(e));
  by_id_[id] = order_.begin();
  bytes_ += record_overhead;
  evict();
}

void execution_records::ended(const execution_report& report) {
  std::lock_guard lock{mutex_};
  const auto it = by_id_.find(report.execution_id);
  if (it == by_id_.end()) return;
  auto& e = *it->second;
  e.record.phase = phase_of(report);
  e.record.ended = std::chrono::system_clock::now();
  e.record.report = report;
  e.ended_at = std::chrono::steady_clock::now();
  e.bytes = report_bytes(report);
  bytes_ += e.bytes;
  evict();
}

std::optional<execution_record> execution_records::find(const std::string& owner,
                                                        const std::string& id) {
  std::lock_guard lock{mutex_};
  evict();
  const auto it = by_id_.find(id);
  if (it == by_id_.end() || it->second->owner != owner) return std::nullopt;
  order_.splice(order_.begin(), order_, it->second);
  return it->second->record;
}

std::optional<execution_phase> execution_records::phase(const std::string& owner,
                                                        const std::string& id) {
  std::lock_guard lock{mutex_};
  const auto it = by_id_.find(id);
  if (it == by_id_.end() || it->second->owner != owner) return std::nullopt;
  return it->second->record.phase;
}

void execution_records::evict() {
  const auto oldest = std::chrono::steady_clock::now() - limits_.max_age;
  // From the least recently used end; running records stay (they are bounded by
  // MAX_CONCURRENT_EXECUTIONS).
  for (auto it = order_.end(); it != order_.begin();) {
    --it;
    const bool over = by_id_.size() > limits_.max_count || bytes_ > limits_.max_bytes;
    if (it->record.phase == execution_phase::running) continue;
    if (!over && it->ended_at > oldest) continue;
    bytes_ -= record_overhead + it->bytes;
    by_id_.erase(it->record.id);
    it = order_.erase(it);
  }
}

}  // namespace codeexec
