#include "sync_wait.h"

#include <uv.h>  // UV_E* error numbers only; no libuv function is called.

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <mutex>

#include "wait_pool.h"

namespace nfl {

namespace {

using Clock = WaitControl::Clock;

// Ends the wait at its deadline, or when the environment no longer wants
// it; asked on the blocked thread itself, every kStillWantedEvery.
class SyncControl : public WaitControl {
 public:
  SyncControl(double timeout_ms, StillWanted still_wanted, void* context)
      : deadline_(timeout_ms < 0 || !std::isfinite(timeout_ms) || timeout_ms > 1e12
                      ? Clock::time_point::max()
                      : Clock::now() + std::chrono::microseconds(static_cast<int64_t>(timeout_ms * 1000))),
        still_wanted_(still_wanted),
        context_(context) {
    next_check(Clock::now());
  }

  bool timed_out() const { return timed_out_; }

 protected:
  bool check() override {
    auto now = Clock::now();
    if (now >= deadline_) {
      timed_out_ = true;
      return false;
    }
    if (!still_wanted_(context_)) return false;
    next_check(now);
    return true;
  }

 private:
  void next_check(Clock::time_point now) { check_at = std::min(deadline_, now + kStillWantedEvery); }

  const Clock::time_point deadline_;
  const StillWanted still_wanted_;
  void* const context_;
  bool timed_out_ = false;
};

// The same wait on a pool thread, which is never woken until it ends, so
// that it keeps its place in the queue; the blocked thread sleeps on a
// condition variable meanwhile. What it gets is held in this wait's name
// until the blocked thread takes the result; if it gave up first, finish()
// gives back whatever the wait got.
class PoolWait : public WaitJob, public std::enable_shared_from_this<PoolWait> {
 public:
  PoolWait(std::shared_ptr<Slot> slot, bool exclusive) : slot_(std::move(slot)), exclusive_(exclusive) {}

  // An exclusive attempt never steps back: this is the waiter others step back for.
  int attempt() override { return Registry::instance().try_acquire(*slot_, this, exclusive_, false, &syscall_); }
  int block() override { return Registry::instance().wait_acquire(*slot_, this, exclusive_, control_, &syscall_); }
  bool cancelled() const override { return control_.cancelled.load(); }

  void finish(int r) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (gave_up_) {
      if (r == kAcquired) Registry::instance().release(*slot_);
      return;
    }
    result_ = r;
    done_ = true;
    ended_.notify_one();
  }

  // The blocked thread: waits until done or until `until`; true if done.
  bool wait_until(Clock::time_point until) {
    std::unique_lock<std::mutex> lock(mu_);
    ended_.wait_until(lock, until, [this] { return done_; });
    return done_;
  }

  // The blocked thread gives up, unless the result came in meanwhile
  // (then false, and the result is the caller's).
  bool give_up() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (done_) return false;
      gave_up_ = true;
    }
    control_.cancelled.store(true);
    Registry::instance().wake_waiters(*slot_);
    cancel_wait(shared_from_this());
    return true;
  }

  int result() const { return result_; }
  const char* syscall() const { return syscall_; }

 private:
  const std::shared_ptr<Slot> slot_;
  const bool exclusive_;
  WaitControl control_;
  // Written by the pool thread before done_.
  const char* syscall_ = "";
  std::mutex mu_;
  std::condition_variable ended_;
  bool done_ = false;     // under mu_
  bool gave_up_ = false;  // under mu_
  int result_ = 0;        // under mu_
};

// Waits on a pool thread, asking control on this thread at its check_at
// (kCancelled when it says stop).
int wait_on_pool(const std::shared_ptr<Slot>& slot, bool exclusive, WaitControl& control, const char** syscall) {
  auto job = std::make_shared<PoolWait>(slot, exclusive);
  int r = start_wait(job);
  if (r != 0) {
    *syscall = kThreadSyscall;
    return r;
  }
  while (!job->wait_until(control.check_at)) {
    if (control.stopped() && job->give_up()) return kCancelled;
  }
  *syscall = job->syscall();
  return job->result();
}

}  // namespace

int wait_sync(const std::shared_ptr<Slot>& slot, bool exclusive, double timeout_ms, StillWanted still_wanted,
              void* context, const char** syscall) {
  SyncControl control(timeout_ms, still_wanted, context);
  Registry& registry = Registry::instance();
  // As for an asynchronous wait: counted until it ends, so that meanwhile
  // no shared holder of this process joins (writer preference).
  if (exclusive) registry.exclusive_wait_began(*slot);
  int r = registry.wait_acquire(*slot, &control, exclusive, control, syscall);
  if (r == kMustQueue) r = wait_on_pool(slot, exclusive, control, syscall);
  if (exclusive) registry.exclusive_wait_ended(*slot);
  if (r != kCancelled) return r;
  if (control.timed_out()) return kBusy;
  *syscall = "wait";
  return UV_ECANCELED;
}

}  // namespace nfl
