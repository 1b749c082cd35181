// Argument and result conversion only; the platform files do the work.
// Every function returns a number: 0 / kBusy / kReplaced on success, a
// negative libuv error number on failure. JavaScript turns those into coded
// errors that name the path, which this layer does not know.
//
// Paths arrive as "file refs": a Uint8Array holding the file's identity in
// bytes 0-15 (dev, ino; written by recordFd / recordPath) followed by the
// NUL-terminated UTF-8 path. JavaScript encodes each path once, so the calls
// on every lock and unlock convert no strings.
#include <napi.h>
#include <uv.h>  // UV_E* error numbers only; no libuv function is called.

#include <cstring>

#include "lock.h"

namespace {

// The lock was taken but the path no longer names the locked file (deleted
// or replaced since it was opened); the lock has been given back.
constexpr int kReplaced = 2;
constexpr size_t kIdBytes = 16;

struct FileRef {
  explicit FileRef(const Napi::Value& value) {
    Napi::Uint8Array bytes = value.As<Napi::Uint8Array>();
    data = bytes.Data();
    path = reinterpret_cast<const char*>(data + kIdBytes);
  }
  nfl::FileId id() const {
    nfl::FileId id;
    std::memcpy(&id.dev, data, 8);
    std::memcpy(&id.ino, data + 8, 8);
    return id;
  }
  void set_id(const nfl::FileId& id) {
    std::memcpy(data, &id.dev, 8);
    std::memcpy(data + 8, &id.ino, 8);
  }
  uint8_t* data;
  const char* path;
};

bool Same(const nfl::FileId& a, const nfl::FileId& b) { return a.dev == b.dev && a.ino == b.ino; }

Napi::Value Result(const Napi::CallbackInfo& info, int value) { return Napi::Number::New(info.Env(), value); }

int Fd(const Napi::CallbackInfo& info) { return info[0].As<Napi::Number>().Int32Value(); }

// tryLock(fd, exclusive)
Napi::Value TryLock(const Napi::CallbackInfo& info) {
  return Result(info, nfl::try_lock(Fd(info), info[1].As<Napi::Boolean>().Value()));
}

// tryLockAt(fd, exclusive, ref): one attempt, then a check that ref's path
// still names the file fd was opened on. A lock on a file that was deleted or
// replaced excludes nobody, so it is given back.
Napi::Value TryLockAt(const Napi::CallbackInfo& info) {
  int fd = Fd(info);
  int r = nfl::try_lock(fd, info[1].As<Napi::Boolean>().Value());
  if (r != nfl::kAcquired) return Result(info, r);
  FileRef ref(info[2]);
  nfl::FileId now;
  int s = nfl::path_id(ref.path, &now);
  if (s == 0 && Same(now, ref.id())) return Result(info, nfl::kAcquired);
  nfl::unlock(fd);
  return Result(info, s == 0 || s == UV_ENOENT ? kReplaced : s);
}

// unlock(fd)
Napi::Value Unlock(const Napi::CallbackInfo& info) { return Result(info, nfl::unlock(Fd(info))); }

// recordFd(fd, ref): stores the identity of the open file in ref.
Napi::Value RecordFd(const Napi::CallbackInfo& info) {
  FileRef ref(info[1]);
  nfl::FileId id;
  int r = nfl::fd_id(Fd(info), &id);
  if (r == 0) ref.set_id(id);
  return Result(info, r);
}

// recordPath(ref): stores the identity of what ref's path names now.
Napi::Value RecordPath(const Napi::CallbackInfo& info) {
  FileRef ref(info[0]);
  nfl::FileId id;
  int r = nfl::path_id(ref.path, &id);
  if (r == 0) ref.set_id(id);
  return Result(info, r);
}

// samePath(ref): 1 if ref's path still names the recorded file, 0 if it
// names another file or nothing, < 0 on any other error.
Napi::Value SamePath(const Napi::CallbackInfo& info) {
  FileRef ref(info[0]);
  nfl::FileId now;
  int r = nfl::path_id(ref.path, &now);
  if (r == UV_ENOENT || r == UV_ENOTDIR) return Result(info, 0);
  if (r != 0) return Result(info, r);
  return Result(info, Same(now, ref.id()) ? 1 : 0);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports["tryLock"] = Napi::Function::New(env, TryLock, "tryLock");
  exports["tryLockAt"] = Napi::Function::New(env, TryLockAt, "tryLockAt");
  exports["unlock"] = Napi::Function::New(env, Unlock, "unlock");
  exports["recordFd"] = Napi::Function::New(env, RecordFd, "recordFd");
  exports["recordPath"] = Napi::Function::New(env, RecordPath, "recordPath");
  exports["samePath"] = Napi::Function::New(env, SamePath, "samePath");
  exports["lockSyscall"] = Napi::String::New(env, nfl::kLockSyscall);
  exports["unlockSyscall"] = Napi::String::New(env, nfl::kUnlockSyscall);
  return exports;
}

}  // namespace

NODE_API_MODULE(native_file_lock, Init)
