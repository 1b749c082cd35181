// Argument and result conversion, and the waits. The registry (the
// process-wide slots) and the platform files do the locking.
//
// Results are ACQUIRED, BUSY (exported), or a failure { errno, syscall }: a
// negative libuv error number and the call that failed, returned together
// because the slot may be used by another thread as soon as it is given up.
// JavaScript turns failures into coded errors naming the path. A cancelled
// wait never reports.
//
// A wait runs on a thread of wait_pool, never on the libuv pool (a wait
// there would stall the process's fs I/O), and reports through a
// thread-safe function, one per Node environment (main thread or worker).
// The JavaScript thread never waits for a wait thread: cancelling only
// marks the wait, and whatever its thread still gets is given back.
#include <napi.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "lock.h"
#include "registry.h"
#include "sync_wait.h"
#include "wait_pool.h"

namespace {

using nfl::Registry;
using nfl::Slot;

class Waiter;
struct EnvState;

void Report(Napi::Env env, Napi::Function, std::nullptr_t*, std::shared_ptr<Waiter>* data);
using ReportFn = Napi::TypedThreadSafeFunction<std::nullptr_t, std::shared_ptr<Waiter>, Report>;

struct Pending {
  std::shared_ptr<Waiter> waiter;
  Napi::FunctionReference callback;
};

// One per Node environment. Reference counted: a wait thread may outlive
// its environment, and then finds it dead here instead of freed memory.
struct EnvState {
  std::mutex mu;
  bool alive = true;  // under mu; report is called only under mu while alive
  ReportFn report;
  // The JavaScript thread's alone.
  std::unordered_map<uint32_t, Pending> waits;
  uint32_t next_id = 1;
  // Shared holds of this environment by slot: shared holders have no owner
  // in the registry, so the cleanup hook gives these back by count.
  std::unordered_map<const Slot*, std::pair<std::shared_ptr<Slot>, int>> shared_holds;
};

void CountShared(EnvState& state, const std::shared_ptr<Slot>& slot, int delta) {
  auto& entry = state.shared_holds[slot.get()];
  if (!entry.first) entry.first = slot;
  entry.second += delta;
  if (entry.second <= 0) state.shared_holds.erase(slot.get());
}

std::shared_ptr<EnvState>& State(Napi::Env env) { return *env.GetInstanceData<std::shared_ptr<EnvState>>(); }

// One wait for a slot. Exactly one party ends up with what it got: the
// JavaScript caller (kDelivered), or, once the caller gave up, the wait
// thread (kCancelled while still waiting) or whoever gave up (kAbandoned,
// the result being on its way), which release an acquired lock.
class Waiter : public nfl::WaitJob, public std::enable_shared_from_this<Waiter> {
 public:
  enum Phase { kWaiting, kFinished, kDelivered, kCancelled, kAbandoned };

  Waiter(std::shared_ptr<EnvState> env, std::shared_ptr<Slot> slot, uint32_t id, bool exclusive)
      : id(id), slot(std::move(slot)), exclusive(exclusive), env_(std::move(env)) {
    // Counted from now until the wait ends, however it ends: meanwhile no
    // shared holder of this process joins (writer preference).
    if (exclusive) Registry::instance().exclusive_wait_began(*this->slot);
  }

  const uint32_t id;
  const std::shared_ptr<Slot> slot;
  const bool exclusive;
  // Written before kFinished.
  int result = 0;
  const char* syscall = "";

  // The claim is taken in this wait's name: until delivered, the lock is not
  // its environment's to give back (see release_all). An exclusive attempt
  // never steps back: this is the waiter others would step back for.
  int attempt() override { return Registry::instance().try_acquire(*slot, this, exclusive, false, &syscall); }
  int block() override { return Registry::instance().wait_acquire(*slot, this, exclusive, control_, &syscall); }
  bool cancelled() const override { return control_.cancelled.load(); }

  void finish(int r) override {
    stop_waiting();
    result = r;
    int expected = kWaiting;
    if (!phase_.compare_exchange_strong(expected, kFinished)) {
      if (r == nfl::kAcquired) Registry::instance().release(*slot);
      return;
    }
    std::lock_guard<std::mutex> lock(env_->mu);
    // A dead environment's cleanup hook abandons this wait.
    if (!env_->alive) return;
    auto* data = new std::shared_ptr<Waiter>(shared_from_this());
    if (env_->report.NonBlockingCall(data) != napi_ok) delete data;
  }

  // JavaScript thread: the caller no longer wants the result.
  void cancel() {
    int expected = kWaiting;
    if (phase_.compare_exchange_strong(expected, kCancelled)) {
      control_.cancelled.store(true);
      stop_waiting();
      Registry::instance().wake_waiters(*slot);
      nfl::cancel_wait(shared_from_this());
    } else if (expected == kFinished && phase_.compare_exchange_strong(expected, kAbandoned)) {
      if (result == nfl::kAcquired) Registry::instance().release(*slot);
    }
  }

  // JavaScript thread: true if the result is now the caller's.
  bool deliver() {
    int expected = kFinished;
    return phase_.compare_exchange_strong(expected, kDelivered);
  }

  // Ends this wait's count among the slot's exclusive waiters, once.
  void stop_waiting() {
    if (exclusive && counted_.exchange(false)) Registry::instance().exclusive_wait_ended(*slot);
  }

 private:
  std::atomic<bool> counted_{true};
  const std::shared_ptr<EnvState> env_;
  nfl::WaitControl control_;
  std::atomic<int> phase_{kWaiting};
};

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

// --- resource identities, for the canonical-path cache -----------------------
//
// A "file ref" is a Uint8Array holding a file's identity in bytes 0-15
// (dev, ino) followed by the NUL-terminated UTF-8 path, encoded once in
// JavaScript so that these calls convert no strings.

// A value that is not a Uint8Array (undefined) is no ref: a null path.
struct FileRef {
  explicit FileRef(const Napi::Value& value) {
    if (!value.IsTypedArray()) return;
    data = value.As<Napi::Uint8Array>().Data();
    path = reinterpret_cast<const char*>(data + 16);
  }
  uint8_t* data = nullptr;
  const char* path = nullptr;
};

// True if ref's path still names the file whose identity it holds.
bool SamePath(const FileRef& ref) {
  nfl::FileId id;
  if (nfl::path_id(ref.path, &id) != 0) return false;
  return std::memcmp(ref.data, &id.dev, 8) == 0 && std::memcmp(ref.data + 8, &id.ino, 8) == 0;
}

// What acquire answers, holding nothing, when the cached canonical path no
// longer holds (beside ACQUIRED and BUSY, lock.h).
constexpr int kStale = 2;

// slot(lockPath): the process-wide slot for a canonical lock path.
Napi::Value GetSlot(const Napi::CallbackInfo& info) {
  auto* slot = new std::shared_ptr<Slot>(Registry::instance().slot(info[0].As<Napi::String>().Utf8Value()));
  return Napi::External<std::shared_ptr<Slot>>::New(info.Env(), slot,
                                                    [](Napi::Env, std::shared_ptr<Slot>* s) { delete s; });
}

// acquire(slot, willWait, shared[, probe, missing]): one attempt, never
// waits; see try_acquire. With probe, first the check samePath(probe) (and,
// with missing, that nothing exists at missing's path yet) makes: STALE,
// holding nothing, if the cached canonical path no longer holds. One call
// into the addon per uncontended lock instead of two.
Napi::Value Acquire(const Napi::CallbackInfo& info) {
  if (info.Length() > 3 && info[3].IsTypedArray()) {
    FileRef missing(info[4]);
    nfl::FileId id;
    if ((missing.path != nullptr && nfl::path_id(missing.path, &id) == 0) || !SamePath(FileRef(info[3]))) {
      return Number(info.Env(), kStale);
    }
  }
  std::shared_ptr<Slot>& slot = SlotArg(info[0]);
  bool will_wait = info[1].As<Napi::Boolean>().Value();
  bool shared = info[2].As<Napi::Boolean>().Value();
  EnvState& state = *State(info.Env());
  const char* syscall = "";
  int r = Registry::instance().try_acquire(*slot, &state, !shared, will_wait, &syscall);
  if (r == nfl::kAcquired && shared) CountShared(state, slot, 1);
  return Result(info.Env(), r, syscall);
}

// release(slot, removeLockFile): ends this environment's hold, exclusive or shared.
Napi::Value Release(const Napi::CallbackInfo& info) {
  std::shared_ptr<Slot>& slot = SlotArg(info[0]);
  // A holder's slot stays in its mode until the holder releases.
  if (slot->state.load() >= nfl::kShared) CountShared(*State(info.Env()), slot, -1);
  bool remove_file = info[1].As<Napi::Boolean>().Value();
  return Result(info.Env(), Registry::instance().release(*slot, remove_file), nfl::kUnlockSyscall);
}

void Forget(Napi::Env env, EnvState& state, uint32_t id) {
  state.waits.erase(id);
  if (state.waits.empty()) state.report.Unref(env);
}

// Calls back with a wait's result through the C API, ignoring failures: a
// report may run while its environment is ending (a worker terminated, or
// dying of an uncaught exception), when JavaScript can no longer run and
// every call into it fails. node-addon-api would turn such a failure into a
// throw that cannot be thrown there, which is fatal to the whole process.
// Nothing is lost: an acquired lock is the environment's, and its cleanup
// hook gives it back.
void CallQuietly(Napi::Env env, Napi::FunctionReference& callback, int result, const char* syscall) {
  napi_env e = env;
  napi_value arg = nullptr;
  if (result >= 0) {
    if (napi_create_int32(e, result, &arg) != napi_ok) return;
  } else {
    napi_value errno_value = nullptr;
    napi_value syscall_value = nullptr;
    if (napi_create_object(e, &arg) != napi_ok || napi_create_int32(e, result, &errno_value) != napi_ok ||
        napi_create_string_utf8(e, syscall, NAPI_AUTO_LENGTH, &syscall_value) != napi_ok ||
        napi_set_named_property(e, arg, "errno", errno_value) != napi_ok ||
        napi_set_named_property(e, arg, "syscall", syscall_value) != napi_ok) {
      return;
    }
  }
  napi_value fn = callback.Value();
  napi_value recv = nullptr;
  if (fn == nullptr || napi_get_undefined(e, &recv) != napi_ok) return;
  napi_value ignored = nullptr;
  napi_call_function(e, recv, fn, 1, &arg, &ignored);
}

// Runs on the JavaScript thread for each finished wait; with no env when the
// environment is gone (its cleanup hook gave the result back).
void Report(Napi::Env env, Napi::Function, std::nullptr_t*, std::shared_ptr<Waiter>* data) {
  std::unique_ptr<std::shared_ptr<Waiter>> owned(data);
  if (env == nullptr) return;
  std::shared_ptr<Waiter> w = *owned;
  if (!w->deliver()) return;  // cancelled meanwhile
  EnvState& state = *State(env);
  auto it = state.waits.find(w->id);
  Napi::FunctionReference callback = std::move(it->second.callback);
  Forget(env, state, w->id);
  // The lock is this environment's now: release_all gives it back if the
  // environment ends holding it.
  if (w->result == nfl::kAcquired) {
    if (w->exclusive) w->slot->owner.store(&state);
    else CountShared(state, w->slot, 1);
  }
  CallQuietly(env, callback, w->result, w->syscall);
}

// startWait(slot, shared, callback): waits on a pool thread; callback(result)
// runs on this thread when the wait ends. Returns the wait's id, or a
// failure when no thread could be had for it.
Napi::Value StartWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<EnvState>& state = State(env);
  uint32_t id = state->next_id++;
  if (id == 0) id = state->next_id++;
  bool shared = info[1].ToBoolean().Value();
  auto w = std::make_shared<Waiter>(state, SlotArg(info[0]), id, !shared);
  int r = nfl::start_wait(w);
  if (r != 0) {
    w->stop_waiting();
    return Result(env, r, nfl::kThreadSyscall);
  }
  if (state->waits.empty()) state->report.Ref(env);
  state->waits[id] = Pending{w, Napi::Persistent(info[2].As<Napi::Function>())};
  return Number(env, static_cast<double>(id));
}

// cancelWait(id): returns at once; the callback never runs, and whatever the
// wait still gets is given back.
Napi::Value CancelWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvState& state = *State(env);
  auto it = state.waits.find(info[0].As<Napi::Number>().Uint32Value());
  if (it != state.waits.end()) {
    std::shared_ptr<Waiter> w = it->second.waiter;
    Forget(env, state, w->id);
    w->cancel();
  }
  return env.Undefined();
}

napi_value Noop(napi_env, napi_callback_info) { return nullptr; }

// Whether JavaScript may still run in env: false once Node stops it (a
// worker terminated, the process exiting), which a thread blocked in
// native code would otherwise never notice and so never let the stop
// finish. Node-API refuses calls into JavaScript from then on.
bool CanRunJs(void* context) {
  napi_env env = static_cast<napi_env>(context);
  // Its own scope: a wait of hours asks thousands of times.
  napi_handle_scope scope = nullptr;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return false;
  napi_value fn = nullptr;
  napi_value recv = nullptr;
  napi_value ignored = nullptr;
  bool can = napi_create_function(env, "", 0, Noop, nullptr, &fn) == napi_ok && napi_get_undefined(env, &recv) == napi_ok &&
             napi_call_function(env, recv, fn, 0, nullptr, &ignored) == napi_ok;
  napi_close_handle_scope(env, scope);
  return can;
}

// waitSync(slot, shared, timeoutMs): blocks this thread until the file
// lock is taken (ACQUIRED), timeoutMs passed (BUSY; Infinity: never) or it
// failed; see wait_sync. A thread being stopped gives up (ECANCELED).
Napi::Value WaitSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<Slot>& slot = SlotArg(info[0]);
  bool shared = info[1].ToBoolean().Value();
  double timeout = info[2].As<Napi::Number>().DoubleValue();
  EnvState& state = *State(env);
  const char* syscall = "";
  int r = nfl::wait_sync(slot, !shared, timeout, CanRunJs, static_cast<napi_env>(env), &syscall);
  // This environment's now, as in Report.
  if (r == nfl::kAcquired) {
    if (shared) CountShared(state, slot, 1);
    else slot->owner.store(&state);
  }
  return Result(env, r, syscall);
}

// closeIdle(): closes kept descriptors released over kIdleFor ago; returns
// how many stay kept.
Napi::Value CloseIdle(const Napi::CallbackInfo& info) {
  return Number(info.Env(), Registry::instance().close_idle());
}

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
Napi::Value SamePathCall(const Napi::CallbackInfo& info) { return Number(info.Env(), SamePath(FileRef(info[0])) ? 1 : 0); }

// caseSensitive(dir): 1, 0, or a negative error; see nfl::case_sensitive.
Napi::Value CaseSensitive(const Napi::CallbackInfo& info) {
  return Number(info.Env(), nfl::case_sensitive(info[0].As<Napi::String>().Utf8Value().c_str()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  nfl::keep_loaded();
  auto state = std::make_shared<EnvState>();
  env.SetInstanceData(new std::shared_ptr<EnvState>(state));
  state->report = ReportFn::New(env, "native-file-lock wait", 0, 1);
  // Referenced only while a wait is pending, like a timer would be.
  state->report.Unref(env);
  // A worker_thread that ends while waiting or holding must not leave a lock
  // held for the rest of the process. Nothing here waits for a wait thread.
  env.AddCleanupHook([env, state]() {
    {
      std::lock_guard<std::mutex> lock(state->mu);
      state->alive = false;
    }
    for (auto& entry : state->waits) {
      entry.second.callback.Reset();
      entry.second.waiter->cancel();
    }
    state->waits.clear();
    Registry::instance().release_all(state.get());
    for (auto& entry : state->shared_holds) {
      for (int i = 0; i < entry.second.second; i++) Registry::instance().release(*entry.second.first);
    }
    state->shared_holds.clear();
    // Its sweep timer is gone, and no other environment may run one: close
    // every kept descriptor nobody holds or waits for now, however recently
    // released (one another thread still uses is reopened at its next lock).
    Registry::instance().close_idle(std::chrono::milliseconds(0));
    state->report.Release();
  });
  exports["slot"] = Napi::Function::New(env, GetSlot, "slot");
  exports["acquire"] = Napi::Function::New(env, Acquire, "acquire");
  exports["release"] = Napi::Function::New(env, Release, "release");
  exports["startWait"] = Napi::Function::New(env, StartWait, "startWait");
  exports["cancelWait"] = Napi::Function::New(env, CancelWait, "cancelWait");
  exports["waitSync"] = Napi::Function::New(env, WaitSync, "waitSync");
  exports["closeIdle"] = Napi::Function::New(env, CloseIdle, "closeIdle");
  exports["recordPath"] = Napi::Function::New(env, RecordPath, "recordPath");
  exports["samePath"] = Napi::Function::New(env, SamePathCall, "samePath");
  exports["caseSensitive"] = Napi::Function::New(env, CaseSensitive, "caseSensitive");
  // The results JavaScript compares against; a cancelled wait never reports.
  exports["ACQUIRED"] = Number(env, nfl::kAcquired);
  exports["BUSY"] = Number(env, nfl::kBusy);
  exports["STALE"] = Number(env, kStale);
  return exports;
}

}  // namespace

NODE_API_MODULE(native_file_lock, Init)
