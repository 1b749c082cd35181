// The process-wide slots, one per canonical lock path, shared by every
// worker_thread, and the locking policy: the claim, the turn and streak,
// and which descriptors stay open (lock.h says why it lives here).
//
// One slot per canonical lock path holds the process's only descriptor of
// that file and a claim: whoever holds the claim is the one caller in the
// process allowed to lock, unlock, open or close that descriptor. Because a
// descriptor is closed only by the claim holder or while nobody holds the
// claim, closing can never drop a lock another caller here holds, even under
// POSIX record-lock semantics (NFS), where any close drops the process's lock.
//
// Shared holders of a slot share its one file lock: the first takes the
// claim and locks the file shared, then gives the claim up for a count of
// holders (Slot::state kShared and up); more holders, of any thread, join
// that count without a system call, and the last one takes the claim back
// to unlock. Writers are preferred: no holder joins or takes a shared lock
// while an exclusive waiter of this process waits (Slot::exclusive_waiters)
// or, where tickets exist (Linux), while another process holds a ticket:
// a queued waiter would otherwise wait for as long as readers overlap.
//
// Closing an idle descriptor is not a claim: the closer marks the slot
// kClosing for one close(2), and a caller that finds it so waits for that
// close and then claims the slot, so an idle sweep never makes a free lock
// look busy.
//
// A descriptor outlives its claim only while its lock is hot: the claim
// given up for the third time within kHotFor, or a thread here waiting for
// it. A cold lock's descriptor is closed as the claim is given up (so a
// file system can be unmounted right after a release), and at most
// kKeptMax hot ones stay open, the least recently used closed first. Neither
// depends on a timer; close_idle, called now and then, only closes kept
// descriptors released more than kIdleFor ago.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "lock.h"

namespace nfl {

// Slot::state
constexpr int kFree = 0;
constexpr int kClaimed = 1;
constexpr int kClosing = 2;  // an idle descriptor is being closed; free right after
constexpr int kShared = 3;   // locked shared by one holder; kShared + n - 1 for n holders

constexpr auto kHotFor = std::chrono::milliseconds(100);
constexpr size_t kKeptMax = 16;
// How long a kept descriptor may go unused before close_idle closes it.
// NATIVE_FILE_LOCK_TEST_IDLE_MS (read once at load) sets it for tests.
extern const std::chrono::milliseconds kIdleFor;

struct Slot : std::enable_shared_from_this<Slot> {
  explicit Slot(std::string p) : path(std::move(p)) {}
  const std::string path;

  // Claimed by compare-and-swap, so an uncontended lock never touches the
  // registry mutex; waiters sleep on `freed` under it.
  std::atomic<int> state{kFree};
  std::atomic<const void*> owner{nullptr};
  std::atomic<int> waiting{0};
  // Waits for an exclusive lock of this slot in this process, from the
  // start of the wait to its end: while any, no shared holder joins.
  std::atomic<int> exclusive_waiters{0};
  // Monotonic milliseconds of the last two times the claim was given up;
  // written by the claim holder.
  std::atomic<int64_t> freed_at{std::numeric_limits<int64_t>::min() / 2};
  std::atomic<int64_t> freed_before{std::numeric_limits<int64_t>::min() / 2};
  std::atomic<bool> kept{false};  // listed in Registry::kept_; written under the mutex
  // ticket_usable(descriptor) (lock.h), asked at the first look at the
  // queue and kept until the descriptor closes: 1, 0, or -1 not asked yet.
  // Shared holders of any thread may look at once; each would store the
  // same answer.
  std::atomic<int> ticket_usable{-1};
  std::condition_variable freed;

  // Used only by the claim holder, or by a closer while kClosing.
  Descriptor descriptor = kNoDescriptor;
  FileId id{};
  // This process holds the turn marker (wait_lock, lock.h) through its turn.
  bool turn = false;
  // When this process's run of acquisitions without waiting (its turn)
  // began: when it last waited, or when a turn ended with nobody queued.
  std::chrono::steady_clock::time_point streak_began;
};

class Registry {
 public:
  static Registry& instance();

  std::shared_ptr<Slot> slot(const std::string& path);

  // Claims the slot and takes the file lock without waiting: kAcquired,
  // kBusy (claimed here or locked elsewhere), or an error, with *syscall
  // naming the call that failed. With will_wait (the caller waits when
  // busy; tryLock does not), a process whose turn is over steps back (kBusy)
  // once when another process holds the queue ticket, so that waiter gets
  // the lock. Shared (!exclusive): joins this process's shared holders or
  // locks the file shared, unless a writer waits (see above): kBusy.
  int try_acquire(Slot& s, const void* owner, bool exclusive, bool will_wait, const char** syscall);
  // The same, blocking the calling thread until acquired, failed or
  // control stopped the wait (kCancelled; nothing held); kMustQueue: see
  // lock.h (nothing held).
  int wait_acquire(Slot& s, const void* owner, bool exclusive, WaitControl& control, const char** syscall);
  // Wakes claim waiters so that a cancelled one notices.
  void wake_waiters(Slot& s);
  // An exclusive wait of this process begins or ends (whatever its
  // outcome); shared waiters held back by it are woken when the last ends.
  void exclusive_wait_began(Slot& s);
  void exclusive_wait_ended(Slot& s);
  // Ends one hold, exclusive or shared. The last holder unlocks and gives
  // up the claim, closing the descriptor unless the lock is hot. On an
  // unlock error the descriptor is closed, which drops the lock anyway, and
  // the error is returned (the call is kUnlockSyscall).
  // With remove_file the last holder also deletes the lock file, if its
  // path still names the locked file, while it holds the lock exclusively:
  // an exclusive holder before unlocking; a shared one only if the lock can
  // be taken exclusively at once after unlocking (no other holder anywhere).
  // The descriptor is then closed.
  int release(Slot& s, bool remove_file = false);
  // Releases every exclusive lock owner holds (a worker_thread that ended
  // holding); shared holds have no owner, and their holders count them.
  void release_all(const void* owner);
  // Closes kept descriptors released idle_for ago or longer that nobody
  // holds or waits for, and forgets slots nobody refers to. Returns how
  // many descriptors stay kept.
  int close_idle(std::chrono::milliseconds idle_for = kIdleFor);

 private:
  bool claim(Slot& s, const void* owner);
  // Deletes the lock file, held exclusively, if its path still names it.
  void remove_if_locked(Slot& s);
  // One more shared holder if this process holds the lock shared and no
  // exclusive waiter of it waits.
  bool join(Slot& s);
  // Turns the claim, its file lock just taken shared, into the first shared hold.
  void share(Slot& s);
  // A new shared hold stays only if no other process is queued (holds a
  // ticket); otherwise it is given back: kBusy.
  int unless_queued(Slot& s);
  int try_share(Slot& s, const void* owner, const char** syscall);
  int lock_claimed(Slot& s, bool exclusive, WaitControl* control, const char** syscall);
  // Gives the turn marker back, if held; the next acquisition looks at the
  // queue.
  void end_turn_now(Slot& s);
  // Gives up the claim; closes the descriptor unless the lock is hot and
  // may_keep.
  void unclaim(Slot& s, bool may_keep = true);
  // Closes s's descriptor if nobody holds the claim; false if someone does.
  bool close_unclaimed(Slot& s);
  // Lists s as kept open, closing the least recently used others beyond
  // kKeptMax.
  void keep(Slot& s);

  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Slot>> slots_;
  std::vector<std::shared_ptr<Slot>> kept_;
};

}  // namespace nfl
