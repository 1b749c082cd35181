// The contract between the process-wide registry and one file per platform
// (lock_posix.cc: flock(2); lock_win32.cc: LockFileEx).
//
// Words, as both languages use them (README "How it works" has the rest):
//   held lock        what lock()/tryLock() return and withFileLock holds:
//                    FileLock, implemented by HeldLock (src/held-lock.ts)
//   per-thread line  one JavaScript thread's FIFO of callers for one lock
//                    file, a reader-writer line (Line, src/line.ts)
//   process-wide slot  one per canonical lock path, shared by every
//                    worker_thread: the descriptor and the claim (Slot,
//                    registry.h); the registry is their table
//   claim            the right, held by one caller in the process at a time,
//                    to lock, unlock, open or close a slot's descriptor
//                    (Registry::claim, unclaim)
//   descriptor       the open lock file: an fd on POSIX, a HANDLE on Windows
//                    (Descriptor, below; Slot::descriptor)
//   file lock        the kernel's lock taken through a descriptor: try_lock,
//                    wait_lock, unlock, below
//   queue ticket     an OFD record lock on byte 0 that a waiter takes before
//                    it blocks on the lock, so one waiter at a time blocks
//                    (Linux; ticket_take, ticket_return in lock_posix.cc);
//                    on Windows a LockFileEx lock on the file's last byte,
//                    taken before the wait polls (lock_win32.cc)
//   turn marker      an OFD record lock on byte 2 that a process which got
//                    the lock after waiting keeps through its turn; the
//                    next head waiter waits for it (at most kTurnWait)
//                    rather than racing every release of that turn (Linux;
//                    wait_lock, end_turn)
//   shared holders   the holders of a slot locked shared, any thread:
//                    one file lock, a count (Slot::state, registry.h)
//   turn, streak     how long a process may keep re-taking a lock without
//                    waiting (kTurn), and when that run of acquisitions
//                    began (Slot::streak_began); registry.cc
//   kept descriptor  one left open after its claim was given up, because its
//                    lock is hot; close_idle closes it once unused for
//                    kIdleFor (registry.h)
//   wait thread, poller  the addon's threads that block in wait_lock, and
//                    the one that retries queued waits (wait_pool.h); the
//                    JavaScript side of a wait is waitForFile (src/wait.ts)
//
// Policy lives above this header, in registry.cc: the claim, the turn and
// streak, when to step back for a queued process, reopening a replaced
// file, and which descriptors stay open and for how long. It is below the
// JavaScript line because fairness between processes is decided at the
// moment of each acquisition, on whatever thread makes it (a wait thread
// included). The platform files hold none of it: each function here makes
// one attempt (or one blocking wait) with the platform's calls, and folds
// contention into kBusy. They only retry a call interrupted by a signal; a
// wait that cannot be interrupted polls (poll_lock, below); and on Linux and
// Windows a wait queues behind a ticket, which others_waiting lets the
// registry see.
//
// exclusive false asks for a shared lock: flock(LOCK_SH), F_RDLCK in
// record-lock mode, LockFileEx without LOCKFILE_EXCLUSIVE_LOCK. Neither
// converts a held lock atomically, so the registry never asks for a mode
// change through a locked descriptor.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace nfl {

// A descriptor: an fd on POSIX, a HANDLE on Windows.
using Descriptor = intptr_t;
constexpr Descriptor kNoDescriptor = -1;

// Results of try_lock and wait_lock; the binding exports the first two as
// ACQUIRED and BUSY. Errors are negative libuv-style numbers (-errno on
// POSIX, uv_translate_sys_error() on Windows) so that JavaScript can name
// them with util.getSystemErrorName().
constexpr int kAcquired = 0;
constexpr int kBusy = 1;
constexpr int kCancelled = 3;
// wait_lock with a check_at (WaitControl): another process is queued ahead,
// and a waiter woken now and then would lose its place in the queue at each
// wake (the kernel queues a blocked request again at the back). Nothing is
// held; the caller waits on a thread that is never woken (wait_pool.h).
constexpr int kMustQueue = 4;

// Opens (creating if missing, mode 0666 & ~umask) the lock file at path
// without following a symlink there, close-on-exec. Falls back to a
// read-only open when the file exists but may not be written. Refuses
// A file's identity: equal dev and ino mean the same file.
struct FileId {
  uint64_t dev;
  uint64_t ino;
};

// anything but a regular file. *id is the file's identity, read by the
// same call that checks its type. On failure *syscall names the failed call.
// kBusy: the file cannot be opened for now but will be (Windows: another
// process opened it sharing nothing, or it is being deleted); wait and retry.
int open_lock_file(const char* utf8_path, Descriptor* out, FileId* id, const char** syscall);
void close_lock_file(Descriptor d);
// Deletes the lock file at path (unlink; DeleteFileW, which every open's
// FILE_SHARE_DELETE allows while the file is open and locked). 0 or an error.
int remove_lock_file(const char* utf8_path);

// One non-blocking attempt to lock the whole file, exclusive or shared (see above).
int try_lock(Descriptor d, bool exclusive);
// Drops the lock taken through d. Unlocking an unlocked file is not an error.
int unlock(Descriptor d);

// How a blocked wait ends early. Another thread sets cancelled, then
// interrupts the waiting one (interrupt_wait; Registry::wake_waiters for a
// wait for the claim). A waiting thread that must look at something itself
// now and then (a JavaScript thread blocked in a synchronous wait, which
// alone can tell whether its environment is stopping) sets check_at: no
// blocked call outlasts it (an alarm interrupts it, alarm.h), and check()
// is called on that thread once it has passed.
class WaitControl {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~WaitControl() = default;

  std::atomic<bool> cancelled{false};
  // Read and written only by the waiting thread. max: never.
  Clock::time_point check_at = Clock::time_point::max();

  // Whether the waiting thread takes control back by itself (check_at).
  bool wakes_itself() const { return check_at != Clock::time_point::max(); }

  // Asked on the waiting thread before each blocking call and after each
  // interruption: true ends the wait (kCancelled).
  bool stopped() {
    if (cancelled.load()) return true;
    if (!wakes_itself() || Clock::now() < check_at) return false;
    if (check()) return false;
    cancelled.store(true);
    return true;
  }

 protected:
  // false ends the wait; true goes on, with a later check_at.
  virtual bool check() { return true; }
};

// Blocks the calling thread (never a libuv one) until the lock is taken, an
// error occurs, or control stopped() (kCancelled). Where a blocked call
// cannot be interrupted now, it polls instead (poll_lock).
// *turn tells whether the caller now also holds the turn marker (Linux,
// exclusive waits at the head of the queue): the head waits for it, up to
// turn_wait, before it blocks on the lock, and keeps it with the lock until
// end_turn, so that the next head waits for that instead of being woken by
// every release of the new holder's turn.
// ticket_usable is ticket_usable(d), below: without it the wait takes no
// ticket and no marker. With a check_at, a wait that would queue behind
// another process's ticket returns kMustQueue instead.
int wait_lock(Descriptor d, bool exclusive, bool ticket_usable, WaitControl& control,
              std::chrono::milliseconds turn_wait, bool* turn);
// Gives back the turn marker that wait_lock took (*turn).
void end_turn(Descriptor d);
// Makes wait_lock on thread t notice cancellation soon, if it can. The
// caller repeats it until the wait has ended (one may land just before the
// call blocks) and never calls it after the thread ended. Never blocks.
void interrupt_wait(std::thread::native_handle_type t);
// The calling thread, as interrupt_wait takes it.
std::thread::native_handle_type this_thread();

// wait_lock where no blocked call can be interrupted: try_lock every
// millisecond, asking control by itself.
inline int poll_lock(Descriptor d, bool exclusive, WaitControl& control) {
  for (;;) {
    if (control.stopped()) return kCancelled;
    int r = try_lock(d, exclusive);
    if (r != kBusy) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Keeps the addon loaded for the life of the process: its threads outlive
// any one Node environment, and Node unloads an addon with the last
// environment that loaded it.
void keep_loaded();

// Whether waits for the lock behind d queue on tickets: always on Windows;
// on Linux where the file system keeps flock apart from record locks
// (flock_model.h), which it asks the file system (fstatfs), so the registry
// asks once per descriptor (Slot::ticket_usable).
bool ticket_usable(Descriptor d);
// True when another process holds the queue ticket for the lock behind d
// (see wait_lock). Only where ticket_usable(d).
bool others_waiting(Descriptor d);

// Identity of what a path names now (symlinks followed); *id of
// open_lock_file is the open file's: equal dev and ino mean the same file.
int path_id(const char* utf8_path, FileId* out);

// 1 if the directory at path tells names apart by case, 0 if it matches
// them case-insensitively (the Windows default, APFS and HFS+ by default),
// or a negative error.
int case_sensitive(const char* utf8_dir);

// The system call names that errors from this platform carry. kLockSyscall
// also names the kind of lock: "flock" or "fcntl" on POSIX (fcntl record
// locks are a test-only mode that reproduces how NFS emulates flock),
// "LockFileEx" on Windows.
extern const char* const kLockSyscall;
extern const char* const kUnlockSyscall;
// Names the call that failed when no thread could be had for a wait.
extern const char* const kThreadSyscall;

}  // namespace nfl
