// Windows: LockFileEx byte-range locks on the HANDLE behind a CRT descriptor
// of Node's own C runtime (uv_get_osfhandle, not _get_osfhandle: an addon may
// link a different CRT whose descriptor table does not know Node's fds).
//
// The locked range is fixed: offset 0, length 2^64 - 1, the whole file. Byte
// range locks on Windows are mandatory, so other handles cannot read or write
// the locked lock file; nothing reads it, it stays empty.
#include "lock.h"

#include <uv.h>
#include <windows.h>

#include <string>

namespace nfl {

const char* const kLockSyscall = "LockFileEx";
const char* const kUnlockSyscall = "UnlockFileEx";

static int last_error() { return uv_translate_sys_error(static_cast<int>(GetLastError())); }

static HANDLE handle_of(int fd) { return reinterpret_cast<HANDLE>(uv_get_osfhandle(fd)); }

int try_lock(int fd, bool exclusive) {
  HANDLE h = handle_of(fd);
  if (h == INVALID_HANDLE_VALUE) return UV_EBADF;
  OVERLAPPED ov = {};  // Offset 0: the start of the fixed range.
  DWORD flags = LOCKFILE_FAIL_IMMEDIATELY | (exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0);
  if (LockFileEx(h, flags, 0, MAXDWORD, MAXDWORD, &ov)) return kAcquired;
  DWORD err = GetLastError();
  // ERROR_LOCK_VIOLATION is documented for FAIL_IMMEDIATELY; ERROR_IO_PENDING
  // appears when the handle was opened for overlapped I/O.
  if (err == ERROR_LOCK_VIOLATION || err == ERROR_IO_PENDING) return kBusy;
  return uv_translate_sys_error(static_cast<int>(err));
}

int unlock(int fd) {
  HANDLE h = handle_of(fd);
  if (h == INVALID_HANDLE_VALUE) return UV_EBADF;
  OVERLAPPED ov = {};
  if (UnlockFileEx(h, 0, MAXDWORD, MAXDWORD, &ov)) return 0;
  // Unlocking a range that is not locked is not an error for the caller.
  if (GetLastError() == ERROR_NOT_LOCKED) return 0;
  return last_error();
}

static int handle_id(HANDLE h, FileId* out) {
  BY_HANDLE_FILE_INFORMATION info;
  if (!GetFileInformationByHandle(h, &info)) return last_error();
  out->dev = info.dwVolumeSerialNumber;
  out->ino = (static_cast<uint64_t>(info.nFileIndexHigh) << 32) | info.nFileIndexLow;
  return 0;
}

int fd_id(int fd, FileId* out) {
  HANDLE h = handle_of(fd);
  if (h == INVALID_HANDLE_VALUE) return UV_EBADF;
  return handle_id(h, out);
}

int path_id(const char* utf8_path, FileId* out) {
  int n = MultiByteToWideChar(CP_UTF8, 0, utf8_path, -1, nullptr, 0);
  if (n <= 0) return last_error();
  std::wstring wide(static_cast<size_t>(n), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, utf8_path, -1, &wide[0], n);
  // No access rights are needed to read the file index; share everything so
  // this never disturbs another opener. BACKUP_SEMANTICS allows directories.
  HANDLE h = CreateFileW(wide.c_str(), 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                         nullptr, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, nullptr);
  if (h == INVALID_HANDLE_VALUE) return last_error();
  int r = handle_id(h, out);
  CloseHandle(h);
  return r;
}

}  // namespace nfl
