// The internal contract between the binding and one file per platform.
// Everything here is one system call deep: no retries, no waiting, no policy.
#pragma once

#include <cstdint>

namespace nfl {

// Results of try_lock. Errors are negative libuv-style numbers (-errno on
// POSIX, uv_translate_sys_error() on Windows) so that JavaScript can name them
// with util.getSystemErrorName().
constexpr int kAcquired = 0;
constexpr int kBusy = 1;

// One non-blocking attempt to lock the whole file behind fd.
int try_lock(int fd, bool exclusive);

// Drops the lock taken through fd. Unlocking an unlocked file is not an error.
int unlock(int fd);

// Identity of an open file or of what a path names now (symlinks followed):
// two ids with equal dev and ino are the same file.
struct FileId {
  uint64_t dev;
  uint64_t ino;
};
int fd_id(int fd, FileId* out);
int path_id(const char* utf8_path, FileId* out);

// The system call names that errors from this platform carry.
extern const char* const kLockSyscall;
extern const char* const kUnlockSyscall;

}  // namespace nfl
