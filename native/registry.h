// The process-wide table of lock files, shared by every worker_thread.
//
// One slot per canonical lock path holds the process's only descriptor of
// that file and a claim: whoever holds the claim is the one caller in the
// process allowed to lock, unlock, open or close that descriptor. Because a
// descriptor is closed only by the claim holder or while nobody holds the
// claim, closing can never drop a lock another caller here holds, even under
// POSIX record-lock semantics (NFS), where any close drops the process's lock.
//
// Closing an idle descriptor is not a claim: the closer marks the slot
// kClosing for one close(2), and a caller that finds it so waits for that
// close and then claims the slot, so an idle sweep never makes a free lock
// look busy.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "lock.h"

namespace nfl {

// Slot::state
constexpr int kFree = 0;
constexpr int kClaimed = 1;
constexpr int kClosing = 2;  // an idle descriptor is being closed; free right after

struct Slot {
  explicit Slot(std::string p) : path(std::move(p)) {}
  const std::string path;

  // Claimed by compare-and-swap, so an uncontended lock never touches the
  // registry mutex; waiters sleep on `freed` under it.
  std::atomic<int> state{kFree};
  std::atomic<const void*> owner{nullptr};
  std::atomic<int> waiting{0};
  std::atomic<uint64_t> last_used{0};  // sweep generation of the last release
  std::condition_variable freed;

  // Used only by the claim holder, or by a closer while kClosing.
  Handle handle = kNoHandle;
  FileId id{};
  // Acquisitions without waiting since this process last waited, and when
  // that run began.
  int streak = 0;
  std::chrono::steady_clock::time_point streak_began;
};

class Registry {
 public:
  static Registry& instance();

  std::shared_ptr<Slot> slot(const std::string& path);

  // Claims the slot and takes the file lock without waiting: kAcquired,
  // kBusy (claimed here or locked elsewhere), or an error, with *syscall
  // naming the call that failed. With may_yield, a process that has kept taking the
  // lock again without waiting for a while steps back (kBusy) once when
  // another process is queued for it, so that waiter gets its turn.
  int try_acquire(Slot& s, const void* owner, bool exclusive, bool may_yield, const char** syscall);
  // The same, blocking the calling dedicated thread until acquired, failed
  // or cancelled (kCancelled; nothing held).
  int wait_acquire(Slot& s, const void* owner, bool exclusive, const std::atomic<bool>& cancelled, const char** syscall);
  // Wakes claim waiters so that a cancelled one notices.
  void wake_waiters(Slot& s);
  // Unlocks and gives up the claim. On an unlock error the descriptor is
  // closed, which drops the lock anyway, and the error is returned (the
  // call is kUnlockSyscall).
  int release(Slot& s);
  // Releases everything owner holds (a worker_thread that ended holding).
  void release_all(const void* owner);
  // Closes descriptors not used since the previous sweep and forgets slots
  // nobody refers to. Returns how many descriptors stay open.
  int close_idle();

 private:
  bool claim(Slot& s, const void* owner);
  int lock_claimed(Slot& s, bool exclusive, const std::atomic<bool>* cancelled, const char** syscall);
  void unclaim(Slot& s);
  // Closes s's descriptor if nobody holds the claim; false if someone does.
  bool close_unclaimed(Slot& s);

  std::atomic<uint64_t> generation_{1};
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Slot>> slots_;
};

}  // namespace nfl
