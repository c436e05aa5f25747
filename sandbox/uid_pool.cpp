#include "sandbox/uid_pool.hpp"

namespace codeexec::sandbox {

uid_lease& uid_lease::operator=(uid_lease&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = std::move(other.pool_);
    slot_ = other.slot_;
    uid_ = other.uid_;
  }
  return *this;
}

void uid_lease::release() noexcept {
  if (pool_) pool_->release(slot_);
  pool_.reset();
}

uid_pool::uid_pool(std::uint32_t uid_base, std::uint32_t count)
    : uid_base_(uid_base), used_(count, false) {}

std::optional<uid_lease> uid_pool::acquire() {
  std::lock_guard lock(mutex_);
  const auto count = static_cast<std::uint32_t>(used_.size());
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint32_t slot = (next_ + i) % count;
    if (used_[slot]) continue;
    used_[slot] = true;
    ++in_use_;
    next_ = (slot + 1) % count;
    return uid_lease(shared_from_this(), slot, uid_base_ + slot);
  }
  return std::nullopt;
}

std::uint32_t uid_pool::in_use() const {
  std::lock_guard lock(mutex_);
  return in_use_;
}

void uid_pool::release(std::uint32_t slot) noexcept {
  std::lock_guard lock(mutex_);
  if (slot < used_.size() && used_[slot]) {
    used_[slot] = false;
    --in_use_;
  }
}

}  // namespace codeexec::sandbox
