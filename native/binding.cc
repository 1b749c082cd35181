// Argument and result conversion, and the threads that wait. The registry
// and the platform files do the locking.
//
// Results are ACQUIRED 0, BUSY 1, or a failure { errno, syscall }: a
// negative libuv error number and the call that failed, returned together
// because the slot may be used by another thread as soon as it is given up.
// JavaScript turns failures into coded errors naming the path. A cancelled
// wait never reports.
//
// A wait runs on a thread of wait_pool, never on the libuv pool (a wait
// there would stall the process's fs I/O), and reports through a
// thread-safe function, one per Node environment (main thread or worker).
#include <napi.h>
#include <uv.h>  // UV_E* error numbers only; no libuv function is called.

#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <unordered_map>

#include "lock.h"
#include "registry.h"
#include "wait_pool.h"

namespace {

using nfl::Registry;
using nfl::Slot;

struct Waiter {
  uint32_t id = 0;
  std::shared_ptr<Slot> slot;
  const void* owner = nullptr;
  bool exclusive = true;
  std::atomic<bool> cancelled{false};
  std::atomic<bool> done{false};
  int result = 0;
  const char* syscall = "";
  std::thread::native_handle_type thread{};
  Napi::FunctionReference callback;  // used on the JavaScript thread only
};

// Per Node environment: its waits and the function that reports them.
struct EnvState {
  Napi::ThreadSafeFunction report;
  std::unordered_map<uint32_t, std::shared_ptr<Waiter>> waits;
  uint32_t next_id = 1;
};

EnvState* State(Napi::Env env) { return env.GetInstanceData<EnvState>(); }

std::shared_ptr<Slot>& SlotArg(const Napi::Value& value) { return *value.As<Napi::External<std::shared_ptr<Slot>>>().Data(); }

Napi::Value Number(Napi::Env env, int value) { return Napi::Number::New(env, value); }

// ACQUIRED and BUSY as numbers; an error as { errno, syscall }.
Napi::Value Result(Napi::Env env, int result, const char* syscall) {
  if (result >= 0) return Number(env, result);
  Napi::Object failure = Napi::Object::New(env);
  failure["errno"] = Number(env, result);
  failure["syscall"] = Napi::String::New(env, syscall);
  return failure;
}

// slot(lockPath): the process-wide slot for a canonical lock path.
Napi::Value GetSlot(const Napi::CallbackInfo& info) {
  auto* slot = new std::shared_ptr<Slot>(Registry::instance().slot(info[0].As<Napi::String>().Utf8Value()));
  return Napi::External<std::shared_ptr<Slot>>::New(info.Env(), slot,
                                                    [](Napi::Env, std::shared_ptr<Slot>* s) { delete s; });
}

// acquire(slot, mayYield): one attempt, never waits; see try_acquire.
Napi::Value Acquire(const Napi::CallbackInfo& info) {
  Slot& slot = *SlotArg(info[0]);
  bool may_yield = info[1].As<Napi::Boolean>().Value();
  const char* syscall = "";
  int r = Registry::instance().try_acquire(slot, State(info.Env()), true, may_yield, &syscall);
  return Result(info.Env(), r, syscall);
}

// release(slot)
Napi::Value Release(const Napi::CallbackInfo& info) {
  return Result(info.Env(), Registry::instance().release(*SlotArg(info[0])), nfl::kUnlockSyscall);
}

void Finish(Napi::Env env, EnvState* state, const std::shared_ptr<Waiter>& w) {
  state->waits.erase(w->id);
  if (state->waits.empty()) state->report.Unref(env);
}

// Runs on the JavaScript thread for each finished wait.
void Report(Napi::Env env, Napi::Function, std::shared_ptr<Waiter>* data) {
  std::unique_ptr<std::shared_ptr<Waiter>> owned(data);
  std::shared_ptr<Waiter> w = *owned;
  EnvState* state = State(env);
  auto it = state->waits.find(w->id);
  if (it == state->waits.end() || it->second != w) return;  // cancelled meanwhile
  Napi::FunctionReference callback = std::move(w->callback);
  Finish(env, state, w);
  callback.Call({Result(env, w->result, w->syscall)});
}

// startWait(slot, callback): waits on a new thread; callback(result) runs
// on this thread when the wait ends. Returns the wait's id.
Napi::Value StartWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvState* state = State(env);
  auto w = std::make_shared<Waiter>();
  w->id = state->next_id++;
  w->slot = SlotArg(info[0]);
  w->callback = Napi::Persistent(info[1].As<Napi::Function>());
  w->owner = state;
  if (state->waits.empty()) state->report.Ref(env);
  state->waits[w->id] = w;
  Napi::ThreadSafeFunction report = state->report;
  w->thread = nfl::run_on_wait_thread([w, report]() mutable {
    w->result = Registry::instance().wait_acquire(*w->slot, w->owner, w->exclusive, w->cancelled, &w->syscall);
    auto* data = new std::shared_ptr<Waiter>(w);
    if (report.NonBlockingCall(data, Report) != napi_ok) delete data;
    w->done.store(true);
  });
  return Napi::Number::New(env, w->id);
}

// Stops a wait and makes sure it holds nothing afterwards.
void Cancel(Napi::Env env, EnvState* state, const std::shared_ptr<Waiter>& w) {
  w->cancelled.store(true);
  Registry::instance().wake_waiters(*w->slot);
  // Repeat: the first interrupt may land just before the thread blocks.
  while (!w->done.load()) {
    nfl::interrupt_wait(w->thread);
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  // It may have acquired just before it saw the cancellation.
  if (w->result == nfl::kAcquired) Registry::instance().release(*w->slot);
  w->callback.Reset();
  Finish(env, state, w);
}

// cancelWait(id): nothing is held afterwards; a report for it never comes.
Napi::Value CancelWait(const Napi::CallbackInfo& info) {
  EnvState* state = State(info.Env());
  auto it = state->waits.find(info[0].As<Napi::Number>().Uint32Value());
  if (it != state->waits.end()) Cancel(info.Env(), state, std::shared_ptr<Waiter>(it->second));
  return info.Env().Undefined();
}

// closeIdle(): closes descriptors not used since the previous call; returns
// how many stay open.
Napi::Value CloseIdle(const Napi::CallbackInfo& info) {
  return Number(info.Env(), Registry::instance().close_idle());
}

// --- resource identities, for the canonical-path cache -----------------------
//
// A "file ref" is a Uint8Array holding a file's identity in bytes 0-15
// (dev, ino) followed by the NUL-terminated UTF-8 path, encoded once in
// JavaScript so that these calls convert no strings.

struct FileRef {
  explicit FileRef(const Napi::Value& value) {
    data = value.As<Napi::Uint8Array>().Data();
    path = reinterpret_cast<const char*>(data + 16);
  }
  uint8_t* data;
  const char* path;
};

// recordPath(ref): stores the identity of what ref's path names now.
Napi::Value RecordPath(const Napi::CallbackInfo& info) {
  FileRef ref(info[0]);
  nfl::FileId id;
  int r = nfl::path_id(ref.path, &id);
  if (r == 0) {
    std::memcpy(ref.data, &id.dev, 8);
    std::memcpy(ref.data + 8, &id.ino, 8);
  }
  return Number(info.Env(), r);
}

// samePath(ref): 1 if ref's path still names the recorded file, else 0.
Napi::Value SamePath(const Napi::CallbackInfo& info) {
  FileRef ref(info[0]);
  nfl::FileId id;
  if (nfl::path_id(ref.path, &id) != 0) return Number(info.Env(), 0);
  return Number(info.Env(), std::memcmp(ref.data, &id.dev, 8) == 0 && std::memcmp(ref.data + 8, &id.ino, 8) == 0);
}

// caseSensitive(dir): 1, 0, or a negative error; see nfl::case_sensitive.
Napi::Value CaseSensitive(const Napi::CallbackInfo& info) {
  return Number(info.Env(), nfl::case_sensitive(info[0].As<Napi::String>().Utf8Value().c_str()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* state = new EnvState();
  env.SetInstanceData(state);
  // Calls nothing itself: Report runs each wait's own callback.
  state->report = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                                "native-file-lock wait", 0, 1);
  // Referenced only while a wait is pending, like a timer would be.
  state->report.Unref(env);
  // A worker_thread that ends while waiting or holding must not leave a
  // thread blocked or a lock held for the rest of the process.
  env.AddCleanupHook([env, state]() {
    while (!state->waits.empty()) Cancel(env, state, std::shared_ptr<Waiter>(state->waits.begin()->second));
    Registry::instance().release_all(state);
    // Its sweep timer is gone: close what is idle now (twice: one sweep
    // spares descriptors used since the previous one).
    Registry::instance().close_idle();
    Registry::instance().close_idle();
    state->report.Release();
  });
  exports["slot"] = Napi::Function::New(env, GetSlot, "slot");
  exports["acquire"] = Napi::Function::New(env, Acquire, "acquire");
  exports["release"] = Napi::Function::New(env, Release, "release");
  exports["startWait"] = Napi::Function::New(env, StartWait, "startWait");
  exports["cancelWait"] = Napi::Function::New(env, CancelWait, "cancelWait");
  exports["closeIdle"] = Napi::Function::New(env, CloseIdle, "closeIdle");
  exports["recordPath"] = Napi::Function::New(env, RecordPath, "recordPath");
  exports["samePath"] = Napi::Function::New(env, SamePath, "samePath");
  exports["caseSensitive"] = Napi::Function::New(env, CaseSensitive, "caseSensitive");
  exports["lockKind"] = Napi::String::New(env, nfl::kLockSyscall);
  return exports;
}

}  // namespace

NODE_API_MODULE(native_file_lock, Init)
