// POSIX: flock(2). The lock belongs to the open file description, so two
// descriptors opened separately conflict even inside one process, and the
// kernel drops the lock when the last descriptor sharing it is closed.
#include "lock.h"

#include <cerrno>
#include <sys/file.h>
#include <sys/stat.h>

namespace nfl {

const char* const kLockSyscall = "flock";
const char* const kUnlockSyscall = "flock";

static int flock_retrying(int fd, int op) {
  int r;
  do {
    r = flock(fd, op);
  } while (r == -1 && errno == EINTR);
  return r == -1 ? -errno : 0;
}

int try_lock(int fd, bool exclusive) {
  int r = flock_retrying(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
  // EWOULDBLOCK is the documented contention result; some systems that
  // emulate flock with fcntl report EAGAIN or EACCES instead.
  if (r == -EWOULDBLOCK || r == -EAGAIN || r == -EACCES) return kBusy;
  return r == 0 ? kAcquired : r;
}

int unlock(int fd) { return flock_retrying(fd, LOCK_UN); }

static void to_id(const struct stat& st, FileId* out) {
  out->dev = static_cast<uint64_t>(st.st_dev);
  out->ino = static_cast<uint64_t>(st.st_ino);
}

int fd_id(int fd, FileId* out) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  to_id(st, out);
  return 0;
}

int path_id(const char* path, FileId* out) {
  struct stat st;
  if (stat(path, &st) != 0) return -errno;
  to_id(st, out);
  return 0;
}

}  // namespace nfl
