// POSIX: flock(2). The lock belongs to the open file description, so two
// descriptors opened separately conflict even inside one process, and the
// kernel drops the lock when the last descriptor sharing it is closed.
//
// NATIVE_FILE_LOCK_TEST_LOCK_KIND=fcntl (read once at load) switches to
// POSIX record locks, which is how Linux emulates flock on NFS: they belong
// to the process and are dropped when ANY descriptor of the file is closed.
// The registry never closes a descriptor while the lock is held, so the
// library must stay correct under those semantics; tests use this mode to
// prove it.
#include "lock.h"

#include "alarm.h"
#include "flock_model.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <mutex>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>  // UV_E* error numbers only; no libuv function is called.

namespace nfl {

namespace {

const bool kRecordLocks = [] {
  const char* kind = std::getenv("NATIVE_FILE_LOCK_TEST_LOCK_KIND");
  return kind != nullptr && std::strcmp(kind, "fcntl") == 0;
}();

// Interrupts a wait blocked in flock/F_SETLKW: a signal whose handler does
// nothing and is installed without SA_RESTART makes the call fail with EINTR.
// A real-time signal nobody in Node uses; SIGURG where there are none.
#ifdef SIGRTMIN
int wake_signal() { return SIGRTMIN + 3; }
#else
int wake_signal() { return SIGURG; }
#endif

void on_wake_signal(int) {}

// Installs the handler once, at the first wait, and only over the default
// or ignored disposition: an application that handles the signal keeps it.
void install_wake_signal() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction old;
    if (sigaction(wake_signal(), nullptr, &old) != 0) return;
    if ((old.sa_flags & SA_SIGINFO) || (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)) return;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_wake_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the blocked call must return EINTR
    sigaction(wake_signal(), &sa, nullptr);
  });
}

// Whether the signal's disposition is this addon's handler right now. The
// host may replace it at any time; then sending the signal would run the
// host's handler, restart the call (SA_RESTART: the wait would not end),
// or kill the process (SIG_DFL), so it is not sent and waits poll.
bool wake_signal_ours() {
  struct sigaction now;
  if (sigaction(wake_signal(), nullptr, &now) != 0) return false;
  return !(now.sa_flags & (SA_SIGINFO | SA_RESTART)) && now.sa_handler == on_wake_signal;
}

// A record lock request for len bytes from start: len 0 is to the end of
// the file, however long.
struct flock record(short type, off_t start, off_t len) {
  struct flock fl;
  std::memset(&fl, 0, sizeof(fl));
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  return fl;
}

// One fcntl record-lock call (F_SETLK, F_SETLKW, F_OFD_*).
int record_call(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock fl = record(type, start, len);
  return fcntl(fd, cmd, &fl) == 0 ? 0 : -errno;
}

int record_lock(int fd, short type, bool wait) { return record_call(fd, wait ? F_SETLKW : F_SETLK, type, 0, 0); }

// A descriptor is an fd here.
int fd_of(Descriptor d) { return static_cast<int>(d); }

// One lock call, not retried on EINTR (the blocking wait relies on that).
int lock_once(int fd, bool exclusive, bool wait) {
  if (kRecordLocks) return record_lock(fd, exclusive ? F_WRLCK : F_RDLCK, wait);
  int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  return flock(fd, op) == 0 ? 0 : -errno;
}

int open_flags(int access) { return access | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK; }

}  // namespace

const char* const kLockSyscall = kRecordLocks ? "fcntl" : "flock";
const char* const kUnlockSyscall = kLockSyscall;
const char* const kThreadSyscall = "pthread_create";

namespace {
void to_id(const struct stat& st, FileId* out) {
  out->dev = static_cast<uint64_t>(st.st_dev);
  out->ino = static_cast<uint64_t>(st.st_ino);
}
}  // namespace

int open_lock_file(const char* path, Descriptor* out, FileId* id, const char** syscall) {
  *syscall = "open";
  // O_NONBLOCK: a FIFO planted at the lock path must not hang the open.
  int fd = open(path, open_flags(O_RDWR | O_CREAT), 0666);
  if (fd < 0) {
    int err = errno;
    // A lock file that exists on a read-only file system, or that we may
    // not write, can still be locked through a read-only descriptor.
    if (err == EROFS || err == EACCES || err == EPERM) {
      fd = open(path, open_flags(O_RDONLY));
      // Another user's symlink in a sticky directory fails the create with
      // EACCES; the read-only open names the real obstacle.
      if (fd < 0 && errno == ELOOP) err = ELOOP;
    }
    if (fd < 0) return -err;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    *syscall = "fstat";
    return -err;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return S_ISDIR(st.st_mode) ? UV_EISDIR : UV_EFTYPE;
  }
  to_id(st, id);
  *out = fd;
  return 0;
}

void close_lock_file(Descriptor d) { close(fd_of(d)); }

int remove_lock_file(const char* path) { return unlink(path) == 0 ? 0 : -errno; }

int try_lock(Descriptor d, bool exclusive) {
  int r;
  do {
    r = lock_once(fd_of(d), exclusive, false);
  } while (r == -EINTR);
  // EWOULDBLOCK is flock's contention result; fcntl answers EAGAIN or
  // EACCES, and so do systems that emulate flock with it.
  if (r == -EWOULDBLOCK || r == -EAGAIN || r == -EACCES) return kBusy;
  return r == 0 ? kAcquired : r;
}

int unlock(Descriptor d) {
  int fd = fd_of(d);
  int r;
  do {
    r = kRecordLocks ? record_lock(fd, F_UNLCK, false) : (flock(fd, LOCK_UN) == 0 ? 0 : -errno);
  } while (r == -EINTR);
  return r;
}

namespace {

// Waiters queue before they block on the lock. flock(2) wakes every blocked
// waiter on each unlock, and all but one go back to sleep: with a waiter per
// process that is a context switch per process per release. So a waiter
// first takes an exclusive OFD lock on byte 0 of the lock file (a queue ticket;
// Linux), and only the head of that queue blocks in flock. A whole-file
// record lock someone else holds on the lock file conflicts with tickets
// too; it is told apart by its range and ignored. A waiter holds its ticket
// while it blocks, and a shared acquisition that sees a ticket taken steps
// back (registry.cc): that is how a waiting writer stops new readers of
// other processes.
//
// Tickets are taken only where flock never sees them (flock_model_posix.cc):
// where flock is emulated with record locks (NFS, SMB/CIFS and the like, and
// record-lock mode), a ticket is a record lock in flock's own lock space,
// and a waiter stopped while holding one would keep every peer out of a
// free lock.
#ifdef F_OFD_SETLKW
constexpr bool kHaveTickets = true;
#else
// Never called without OFD locks; an invalid command if it ever were.
constexpr bool kHaveTickets = false;
#define F_OFD_GETLK (-1)
#define F_OFD_SETLK (-1)
#define F_OFD_SETLKW (-1)
#endif

// A ticket is byte 0 alone, a turn marker byte 2 alone: not byte 1, since
// the kernel merges adjacent locks of one owner into one range, and a
// ticket is told from other record locks by its range. Taking one without
// waiting answers EAGAIN or EACCES while another open file description
// holds it.
constexpr off_t kTicketByte = 0;
constexpr off_t kMarkerByte = 2;
int byte_take(int fd, off_t byte, bool wait) {
  return record_call(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, F_WRLCK, byte, 1);
}
void byte_return(int fd, off_t byte) { record_call(fd, F_OFD_SETLK, F_UNLCK, byte, 1); }

// True if another open file description holds that byte alone (a ticket or
// a marker, not some other record lock).
bool byte_taken(int fd, off_t byte) {
  struct flock fl = record(F_WRLCK, byte, 1);
  if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return false;
  return fl.l_type != F_UNLCK && fl.l_start == byte && fl.l_len == 1;
}

int ticket_take(int fd, bool wait) { return byte_take(fd, kTicketByte, wait); }
void ticket_return(int fd) { byte_return(fd, kTicketByte); }
bool ticket_taken(int fd) { return byte_taken(fd, kTicketByte); }

// Blocks in one interruptible call until it succeeds, fails, control
// stops the wait (kCancelled) or the deadline passes (kBusy). An alarm
// interrupts the call at the deadline or control's check_at, whichever is
// first, and again every millisecond until it returns (the first may land
// just before the call blocks). Without an alarm thread the call is not
// made: kBusy, and the caller retries later.
template <typename Call>
int wait_until(WaitControl& control, std::chrono::steady_clock::time_point deadline, Call call) {
  using Clock = std::chrono::steady_clock;
  for (;;) {
    if (control.stopped()) return kCancelled;
    auto at = std::min(deadline, control.check_at);
    bool alarmed = at != Clock::time_point::max();
    if (alarmed && !alarm_set(pthread_self(), at)) return kBusy;
    int r = call();
    if (alarmed) alarm_clear(pthread_self());
    if (r != -EINTR) return r;
    if (deadline != Clock::time_point::max() && Clock::now() >= deadline) return kBusy;
  }
}

template <typename Call>
int blocking(WaitControl& control, Call call) {
  return wait_until(control, std::chrono::steady_clock::time_point::max(), call);
}

// The head of the queue waits for the turn marker, for at most turn_wait,
// before it blocks on the lock: a holder whose turn is not over, re-taking
// the lock again and again, would otherwise wake it at every release.
// *turn tells whether it took the marker. kCancelled, or 0.
int wait_for_turn(int fd, WaitControl& control, std::chrono::milliseconds turn_wait, bool* turn) {
  int m = byte_take(fd, kMarkerByte, false);
  if ((m == -EAGAIN || m == -EACCES) && byte_taken(fd, kMarkerByte)) {
    m = wait_until(control, std::chrono::steady_clock::now() + turn_wait,
                   [fd] { return byte_take(fd, kMarkerByte, true); });
    if (m == kCancelled) return kCancelled;
  }
  *turn = m == 0;
  return 0;
}

}  // namespace

namespace {

// wait_lock once the wake signal can interrupt this thread.
int queue_and_wait(int fd, bool exclusive, bool ticket_usable, WaitControl& control,
                   std::chrono::milliseconds turn_wait, bool* turn) {
  // A read-only descriptor cannot take a write ticket (EBADF), and some file
  // systems have no OFD locks: then wait without one.
  bool ticketed = false;
  if (ticket_usable) {
    int t = ticket_take(fd, false);
    if ((t == -EAGAIN || t == -EACCES) && ticket_taken(fd)) {
      if (control.wakes_itself()) return kMustQueue;
      t = blocking(control, [fd] { return ticket_take(fd, true); });
      if (t == kCancelled) return kCancelled;
    }
    ticketed = t == 0;
  }
  if (ticketed && exclusive) {
    // The lock may be free by now: then it is taken at once.
    if (lock_once(fd, exclusive, false) == 0) {
      *turn = byte_take(fd, kMarkerByte, false) == 0;
      ticket_return(fd);
      return kAcquired;
    }
    if (wait_for_turn(fd, control, turn_wait, turn) == kCancelled) {
      ticket_return(fd);
      return kCancelled;
    }
  }
  // The head of the queue (it holds the ticket) keeps its place however
  // often it is woken: nobody else of the queue blocks here.
  int r = blocking(control, [fd, exclusive] { return lock_once(fd, exclusive, true); });
  // The marker stays with the new holder for its turn (end_turn), and is
  // taken before the ticket goes, so the next head finds it held.
  if (r != 0 && *turn) {
    byte_return(fd, kMarkerByte);
    *turn = false;
  }
  if (ticketed) ticket_return(fd);
  return r == 0 ? kAcquired : r;
}

}  // namespace

int wait_lock(Descriptor d, bool exclusive, bool ticket_usable, WaitControl& control,
              std::chrono::milliseconds turn_wait, bool* turn) {
  *turn = false;
  install_wake_signal();
  // Without our signal handler no blocked call can be interrupted.
  if (!wake_signal_ours()) return poll_lock(d, exclusive, control);
  // Wait threads inherit the signal mask of the thread that started them;
  // a host that blocked the signal there must not make waits
  // uninterruptible. The mask is given back after the wait, since the
  // thread may be the host's own (a synchronous wait).
  sigset_t wake;
  sigset_t before;
  sigemptyset(&wake);
  sigaddset(&wake, wake_signal());
  pthread_sigmask(SIG_UNBLOCK, &wake, &before);
  int r = queue_and_wait(fd_of(d), exclusive, ticket_usable, control, turn_wait, turn);
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
  return r;
}

void end_turn(Descriptor d) { byte_return(fd_of(d), kMarkerByte); }

bool ticket_usable(Descriptor d) { return kHaveTickets && !kRecordLocks && flock_apart_from_record_locks(fd_of(d)); }

bool others_waiting(Descriptor d) { return ticket_taken(fd_of(d)); }

void interrupt_wait(std::thread::native_handle_type t) {
  // Looked at right before sending: the host may have changed it since the
  // wait began (a wait that began under another disposition polls).
  if (wake_signal_ours()) pthread_kill(t, wake_signal());
}

std::thread::native_handle_type this_thread() { return pthread_self(); }

void keep_loaded() {
  static std::once_flag once;
  std::call_once(once, [] {
    // A second reference to the addon's own file, never dropped, with
    // RTLD_NODELETE: dlclose() by Node then never unmaps it.
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(&keep_loaded), &info) != 0 && info.dli_fname != nullptr) {
      dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE);
    }
  });
}

int path_id(const char* path, FileId* out) {
  struct stat st;
  if (stat(path, &st) != 0) return -errno;
  to_id(st, out);
  return 0;
}

#ifdef __APPLE__
// APFS and HFS+ are case-insensitive unless formatted otherwise.
int case_sensitive(const char* dir) {
  long r = pathconf(dir, _PC_CASE_SENSITIVE);
  if (r < 0) return -errno;
  return r != 0 ? 1 : 0;
}
#else
// Linux names are case-sensitive (ext4 casefold directories aside).
int case_sensitive(const char*) { return 1; }
#endif

}  // namespace nfl
