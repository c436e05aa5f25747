#include "actors/sandbox_directory.hpp"

#include <algorithm>

namespace codeexec {

bool sandbox_directory::add(std::shared_ptr<sandbox_record> record, std::size_t per_owner_max) {
  std::lock_guard lock{mutex_};
  const auto owned =
      static_cast<std::size_t>(std::count_if(by_id_.begin(), by_id_.end(), [&](const auto& entry) {
        return entry.second->owner == record->owner;
      }));
  if (owned >= per_owner_max) return false;
  by_id_.emplace(record->id, std::move(record));
  return true;
}

void sandbox_directory::remove(const std::string& id) {
  std::lock_guard lock{mutex_};
  by_id_.erase(id);
}

std::shared_ptr<sandbox_record> sandbox_directory::find(const std::string& owner,
                                                        const std::string& id) const {
  std::lock_guard lock{mutex_};
  auto it = by_id_.find(id);
  // Another key's sandbox is reported exactly like a missing one.
  if (it == by_id_.end() || it->second->owner != owner) return nullptr;
  return it->second;
}

std::vector<std::shared_ptr<sandbox_record>> sandbox_directory::list(
    const std::string& owner) const {
  std::vector<std::shared_ptr<sandbox_record>> out;
  {
    std::lock_guard lock{mutex_};
    for (const auto& [id, record] : by_id_)
      if (record->owner == owner) out.push_back(record);
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a->created < b->created; });
  return out;
}

std::vector<std::shared_ptr<sandbox_record>> sandbox_directory::all() const {
  std::lock_guard lock{mutex_};
  std::vector<std::shared_ptr<sandbox_record>> out;
  for (const auto& [id, record] : by_id_) out.push_back(record);
  return out;
}

std::size_t sandbox_directory::size() const {
  std::lock_guard lock{mutex_};
  return by_id_.size();
}

std::shared_ptr<e2b_extension> sandbox_directory::extend(
    const std::string& owner, const std::string& id,
    const std::function<std::shared_ptr<e2b_extension>()>& make) {
  std::lock_guard lock{mutex_};
  auto it = by_id_.find(id);
  if (it == by_id_.end() || it->second->owner != owner) return nullptr;
  if (!it->second->e2b) it->second->e2b = make();
  return it->second->e2b;
}

std::optional<extended_sandbox> sandbox_directory::find_extended(const std::string& id) const {
  std::lock_guard lock{mutex_};
  auto it = by_id_.find(id);
  if (it == by_id_.end() || !it->second->e2b) return std::nullopt;
  return extended_sandbox{id, it->second->owner, it->second->e2b};
}

std::size_t sandbox_directory::count(const std::string& owner) const {
  std::lock_guard lock{mutex_};
  return static_cast<std::size_t>(
      std::count_if(by_id_.begin(), by_id_.end(),
                    [&](const auto& entry) { return entry.second->owner == owner; }));
}

}  // namespace codeexec
