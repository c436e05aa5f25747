// Dedicated host uids for live sandboxes: slot i is host uid (and gid) uid_base + i.
//
// A uid is never shared by two live sandboxes: RLIMIT_NPROC counts per host uid, and
// the kernel's permission checks between sandboxes (signals, /proc) rely on it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace codeexec::sandbox {

class uid_pool;

/// One acquired uid. Returns it to the pool on destruction unless quarantined.
class uid_lease {
 public:
  uid_lease() = default;
  uid_lease(std::shared_ptr<uid_pool> pool, std::uint32_t slot, std::uint32_t uid) noexcept
      : pool_(std::move(pool)), slot_(slot), uid_(uid) {}
  uid_lease(uid_lease&&) noexcept = default;
  uid_lease& operator=(uid_lease&& other) noexcept;
  uid_lease(const uid_lease&) = delete;
  uid_lease& operator=(const uid_lease&) = delete;
  ~uid_lease() { release(); }

  std::uint32_t uid() const noexcept { return uid_; }
  explicit operator bool() const noexcept { return pool_ != nullptr; }

  /// Never hand this uid out again (used when we could not prove that every process
  /// of the sandbox is gone: reusing the uid would let a survivor meet a new sandbox).
  void quarantine() noexcept { pool_.reset(); }

 private:
  void release() noexcept;

  std::shared_ptr<uid_pool> pool_;
  std::uint32_t slot_ = 0;
  std::uint32_t uid_ = 0;
};

/// Thread-safe pool of uid slots. Create with std::make_shared (leases keep it alive).
class uid_pool : public std::enable_shared_from_this<uid_pool> {
 public:
  uid_pool(std::uint32_t uid_base, std::uint32_t count);

  /// A free uid, or empty when all slots are in use. Slots are handed out round-robin
  /// so a just-released uid is reused as late as possible.
  std::optional<uid_lease> acquire();

  std::uint32_t in_use() const;

 private:
  friend class uid_lease;
  void release(std::uint32_t slot) noexcept;

  const std::uint32_t uid_base_;
  mutable std::mutex mutex_;
  std::vector<bool> used_;
  std::uint32_t next_ = 0;
  std::uint32_t in_use_ = 0;
};

}  // namespace codeexec::sandbox
