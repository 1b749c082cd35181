// Windows: LockFileEx byte-range locks on a HANDLE the registry opens itself.
//
// The locked range is fixed: offset 0, length 2^64 - 1, the whole file but
// its last byte. Byte-range locks on Windows are mandatory, so other handles
// cannot read or write the locked lock file (a shared lock: cannot write
// it); nothing does, it stays empty. A lock belongs to the handle (and the
// process): a second handle of the same process is refused like another
// process. Shared locks of several handles coexist, as flock(LOCK_SH) does.
//
// The last byte, offset 2^64 - 1, which the lock never covers, is the queue
// ticket: a waiter locks it exclusively before it waits for the lock and
// unlocks it once it has the lock, so holders see a queued process
// (others_waiting) and step back for it, and one waiter at a time tries the
// lock. Versions without tickets lock the same range, so they and this one
// exclude each other; they just never look at the queue.
#include "lock.h"

#include <uv.h>
#include <windows.h>

#include <cstdio>
#include <mutex>
#include <string>
#include <unordered_map>

namespace nfl {

const char* const kLockSyscall = "LockFileEx";
const char* const kUnlockSyscall = "UnlockFileEx";
const char* const kThreadSyscall = "CreateThread";

namespace {

int last_error() { return uv_translate_sys_error(static_cast<int>(GetLastError())); }

HANDLE as_handle(Descriptor d) { return reinterpret_cast<HANDLE>(d); }

std::wstring wide(const char* utf8) {
  int n = MultiByteToWideChar(CP_UTF8, 0, utf8, -1, nullptr, 0);
  if (n <= 0) return std::wstring();
  std::wstring w(static_cast<size_t>(n), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, utf8, -1, &w[0], n);
  w.resize(static_cast<size_t>(n - 1));
  return w;
}

// A name CreateFileW accepts at any length. Plain paths of MAX_PATH
// characters or more fail unless the system opts in to long paths; the
// \\?\ prefix lifts the limit but also turns off Win32 normalisation
// (slashes, `.`, `..`, trailing dots and spaces), so the path is normalised
// first with GetFullPathNameW, as the plain call would have done. UNC paths
// take the \\?\UNC\ form. ("Maximum Path Length Limitation", MSDN.)
std::wstring long_path_safe(const std::wstring& path) {
  if (path.size() < MAX_PATH || path.compare(0, 4, L"\\\\?\\") == 0 || path.compare(0, 4, L"\\\\.\\") == 0) return path;
  DWORD n = GetFullPathNameW(path.c_str(), 0, nullptr, nullptr);
  if (n == 0) return path;
  std::wstring full(n, L'\0');
  n = GetFullPathNameW(path.c_str(), n, &full[0], nullptr);
  if (n == 0 || n >= full.size()) return path;
  full.resize(n);
  if (full.compare(0, 2, L"\\\\") == 0) return L"\\\\?\\UNC\\" + full.substr(2);
  if (full.size() >= 3 && full[1] == L':' && full[2] == L'\\') return L"\\\\?\\" + full;
  return path;  // Relative or device forms: leave them to the system.
}

std::wstring native_path(const char* utf8) { return long_path_safe(wide(utf8)); }

constexpr DWORD kShareAll = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
constexpr ULONG kCaseSensitiveDir = 0x1;  // FILE_CS_FLAG_CASE_SENSITIVE_DIR

// A file deleted while some process still has it open stays "delete pending"
// until the last handle closes, and every open of it fails with
// ERROR_ACCESS_DENIED; only the thread's last NTSTATUS tells that apart from
// a real denial. RtlGetLastNtStatus is looked up, not linked, as Chromium's
// base/win/nt_status.cc does.
constexpr LONG kStatusDeletePending = static_cast<LONG>(0xC0000056L);
bool delete_pending() {
  using Fn = LONG(WINAPI*)();
  static const Fn last_status = reinterpret_cast<Fn>(
      reinterpret_cast<void*>(GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "RtlGetLastNtStatus")));
  return last_status != nullptr && last_status() == kStatusDeletePending;
}

// Someone else's open that will end by itself: another process opened the
// lock file sharing nothing (ERROR_SHARING_VIOLATION), or it is being
// deleted. The caller waits and retries as for a held lock.
bool open_busy(DWORD err) { return err == ERROR_SHARING_VIOLATION || (err == ERROR_ACCESS_DENIED && delete_pending()); }

// A release signal per lock file: an auto-reset event named after the file's
// identity, shared by every process of the session (the Local\ namespace)
// that has the file open. unlock() sets it and the queue's head waits on it,
// so a release wakes the head at once instead of at its next poll. Holders
// of other versions or sessions never set it: the head also wakes every
// millisecond to try. Each descriptor has its event; nullptr where it could
// not be created (then only polling).
std::mutex events_mu;
std::unordered_map<Descriptor, HANDLE>* events = new std::unordered_map<Descriptor, HANDLE>();

HANDLE release_event(Descriptor d) {
  std::lock_guard<std::mutex> lock(events_mu);
  auto it = events->find(d);
  return it == events->end() ? nullptr : it->second;
}

void open_release_event(Descriptor d, const BY_HANDLE_FILE_INFORMATION& info) {
  wchar_t name[64];
  swprintf(name, 64, L"Local\\native-file-lock-%08lx-%08lx%08lx", static_cast<unsigned long>(info.dwVolumeSerialNumber),
           static_cast<unsigned long>(info.nFileIndexHigh), static_cast<unsigned long>(info.nFileIndexLow));
  HANDLE e = CreateEventW(nullptr, FALSE, FALSE, name);
  std::lock_guard<std::mutex> lock(events_mu);
  (*events)[d] = e;
}

void close_release_event(Descriptor d) {
  HANDLE e = nullptr;
  {
    std::lock_guard<std::mutex> lock(events_mu);
    auto it = events->find(d);
    if (it == events->end()) return;
    e = it->second;
    events->erase(it);
  }
  if (e != nullptr) CloseHandle(e);
}

}  // namespace

namespace {
void to_id(const BY_HANDLE_FILE_INFORMATION& info, FileId* out) {
  out->dev = info.dwVolumeSerialNumber;
  out->ino = (static_cast<uint64_t>(info.nFileIndexHigh) << 32) | info.nFileIndexLow;
}
}  // namespace

int open_lock_file(const char* utf8_path, Descriptor* out, FileId* id, const char** syscall) {
  *syscall = "CreateFileW";
  std::wstring path = native_path(utf8_path);
  // OPEN_REPARSE_POINT: a symlink at the lock path is opened itself, never
  // followed, and then refused below. The handle is not inheritable.
  DWORD flags = FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT;
  HANDLE h = CreateFileW(path.c_str(), GENERIC_READ | GENERIC_WRITE, kShareAll, nullptr, OPEN_ALWAYS, flags, nullptr);
  if (h == INVALID_HANDLE_VALUE) {
    DWORD err = GetLastError();
    if (open_busy(err)) return kBusy;
    DWORD attributes = GetFileAttributesW(path.c_str());
    if (attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY)) return UV_EISDIR;
    // An existing lock file we may not write can be locked read-only.
    if (err == ERROR_ACCESS_DENIED || err == ERROR_WRITE_PROTECT) {
      h = CreateFileW(path.c_str(), GENERIC_READ, kShareAll, nullptr, OPEN_EXISTING, flags, nullptr);
      if (h == INVALID_HANDLE_VALUE && open_busy(GetLastError())) return kBusy;
    }
    if (h == INVALID_HANDLE_VALUE) return uv_translate_sys_error(static_cast<int>(err));
  }
  BY_HANDLE_FILE_INFORMATION info;
  if (!GetFileInformationByHandle(h, &info)) {
    int r = last_error();
    CloseHandle(h);
    *syscall = "GetFileInformationByHandle";
    return r;
  }
  if (info.dwFileAttributes & (FILE_ATTRIBUTE_REPARSE_POINT | FILE_ATTRIBUTE_DIRECTORY)) {
    CloseHandle(h);
    return (info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) ? UV_ELOOP : UV_EISDIR;
  }
  to_id(info, id);
  *out = reinterpret_cast<Descriptor>(h);
  open_release_event(*out, info);
  return 0;
}

void close_lock_file(Descriptor d) {
  close_release_event(d);
  CloseHandle(as_handle(d));
}

// The name goes at once where the file system deletes with POSIX semantics;
// else the file is "delete pending" until its last handle closes, and
// open_busy makes openers wait for that.
int remove_lock_file(const char* utf8_path) { return DeleteFileW(native_path(utf8_path).c_str()) ? 0 : last_error(); }

int try_lock(Descriptor d, bool exclusive) {
  OVERLAPPED ov = {};  // Offset 0: the start of the fixed range.
  DWORD flags = LOCKFILE_FAIL_IMMEDIATELY | (exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0);
  if (LockFileEx(as_handle(d), flags, 0, MAXDWORD, MAXDWORD, &ov)) return kAcquired;
  DWORD err = GetLastError();
  // ERROR_LOCK_VIOLATION is the documented answer of FAIL_IMMEDIATELY.
  if (err == ERROR_LOCK_VIOLATION || err == ERROR_IO_PENDING) return kBusy;
  return uv_translate_sys_error(static_cast<int>(err));
}

int unlock(Descriptor d) {
  OVERLAPPED ov = {};
  if (UnlockFileEx(as_handle(d), 0, MAXDWORD, MAXDWORD, &ov)) {
    HANDLE e = release_event(d);
    if (e != nullptr) SetEvent(e);
    return 0;
  }
  if (GetLastError() == ERROR_NOT_LOCKED) return 0;
  return last_error();
}

namespace {

constexpr DWORD kTicketLow = MAXDWORD;  // offset 2^64 - 1, one byte
constexpr DWORD kTicketHigh = MAXDWORD;

// One attempt at the ticket: exclusive to take it, shared to look whether
// someone else holds it (lookers never keep each other out).
int ticket_lock(HANDLE h, bool exclusive) {
  OVERLAPPED ov = {};
  ov.Offset = kTicketLow;
  ov.OffsetHigh = kTicketHigh;
  DWORD flags = LOCKFILE_FAIL_IMMEDIATELY | (exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0);
  if (LockFileEx(h, flags, 0, 1, 0, &ov)) return kAcquired;
  DWORD err = GetLastError();
  if (err == ERROR_LOCK_VIOLATION || err == ERROR_IO_PENDING) return kBusy;
  return uv_translate_sys_error(static_cast<int>(err));
}

void ticket_return(HANDLE h) {
  OVERLAPPED ov = {};
  ov.Offset = kTicketLow;
  ov.OffsetHigh = kTicketHigh;
  UnlockFileEx(h, 0, 1, 0, &ov);
}

}  // namespace

// A blocked LockFileEx cannot be interrupted everywhere: Wine 8 waits for the
// conflicting lock without an alertable wait and CancelSynchronousIo finds
// nothing to cancel (ERROR_NOT_FOUND); on a handle opened for overlapped I/O
// its lock waits never complete. So the wait thread blocks on the release
// event instead, for at most a millisecond at a time, and tries the lock
// whenever it wakes. It does so only once it holds the ticket; until then
// it tries to take the ticket every millisecond, so the queue's head alone
// competes for a lock that a holder steps back from.
int wait_lock(Descriptor d, bool exclusive, bool ticket_usable, WaitControl& control, std::chrono::milliseconds,
              bool* turn) {
  *turn = false;
  HANDLE h = as_handle(d);
  int t;
  for (;;) {
    if (control.stopped()) return kCancelled;
    t = ticket_usable ? ticket_lock(h, true) : UV_ENOTSUP;
    if (t != kBusy) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Without a ticket (none asked for, or an error taking it), wait anyway:
  // a wait unseen by holders.
  HANDLE e = release_event(d);
  int r;
  for (;;) {
    if (control.stopped()) {
      r = kCancelled;
      break;
    }
    r = try_lock(d, exclusive);
    if (r != kBusy) break;
    if (e != nullptr) {
      WaitForSingleObject(e, 1);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  if (t == kAcquired) ticket_return(h);
  return r;
}

void interrupt_wait(std::thread::native_handle_type) {}

std::thread::native_handle_type this_thread() { return std::thread::native_handle_type{}; }

void keep_loaded() {
  // GET_MODULE_HANDLE_EX_FLAG_PIN: the module stays loaded until the process
  // ends, whatever FreeLibrary calls follow (MSDN, GetModuleHandleExW).
  HMODULE self;
  GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                     reinterpret_cast<LPCWSTR>(&keep_loaded), &self);
}

// The ticket's byte is outside every lock's range on every file system.
bool ticket_usable(Descriptor) { return true; }

bool others_waiting(Descriptor d) {
  HANDLE h = as_handle(d);
  int r = ticket_lock(h, false);
  if (r == kAcquired) ticket_return(h);
  return r == kBusy;
}

void end_turn(Descriptor) {}

namespace {
int handle_id(HANDLE h, FileId* out) {
  BY_HANDLE_FILE_INFORMATION info;
  if (!GetFileInformationByHandle(h, &info)) return last_error();
  to_id(info, out);
  return 0;
}
}  // namespace

int path_id(const char* utf8_path, FileId* out) {
  // No access rights are needed to read the file index; share everything so
  // this never disturbs another opener. BACKUP_SEMANTICS allows directories.
  HANDLE h = CreateFileW(native_path(utf8_path).c_str(), 0, kShareAll, nullptr, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, nullptr);
  if (h == INVALID_HANDLE_VALUE) return last_error();
  int r = handle_id(h, out);
  CloseHandle(h);
  return r;
}

// Windows folders match names case-insensitively unless a per-folder flag
// says otherwise ("Case sensitivity", Microsoft Learn). File systems and
// versions that do not know the flag (FAT, Windows before 10 1803) answer
// with an error: they are case-insensitive.
int case_sensitive(const char* utf8_dir) {
  HANDLE h = CreateFileW(native_path(utf8_dir).c_str(), 0, kShareAll, nullptr, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, nullptr);
  if (h == INVALID_HANDLE_VALUE) return last_error();
  FILE_CASE_SENSITIVE_INFO info = {};
  bool known = GetFileInformationByHandleEx(h, FileCaseSensitiveInfo, &info, sizeof info);
  CloseHandle(h);
  return known && (info.Flags & kCaseSensitiveDir) ? 1 : 0;
}

}  // namespace nfl
