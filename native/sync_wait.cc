#include "sync_wait.h"

#include <uv.h>  // UV_E* error numbers only; no libuv function is called.

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <mutex>

#include "wait_pool.h"

namespace nfl {

namespace {

using Clock = std::chrono::steady_clock;

// One synchronous wait. What it gets is held in this wait's name until the
// blocked thread takes the result; if it gave up first, finish() gives
// back whatever the wait got.
class SyncWait : public WaitJob, public std::enable_shared_from_this<SyncWait> {
 public:
  SyncWait(std::shared_ptr<Slot> slot, bool exclusive) : slot_(std::move(slot)), exclusive_(exclusive) {
    // As for an asynchronous wait: counted until it ends, so that meanwhile
    // no shared holder of this process joins (writer preference).
    if (exclusive_) Registry::instance().exclusive_wait_began(*slot_);
  }

  // An exclusive attempt never steps back: this is the waiter others step back for.
  int attempt() override { return Registry::instance().try_acquire(*slot_, this, exclusive_, false, &syscall_); }
  int block() override { return Registry::instance().wait_acquire(*slot_, this, exclusive_, cancelled_, &syscall_); }
  bool cancelled() const override { return cancelled_.load(); }

  void finish(int r) override {
    stop_waiting();
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
    cancelled_.store(true);
    stop_waiting();
    Registry::instance().wake_waiters(*slot_);
    cancel_wait(shared_from_this());
    return true;
  }

  int result() const { return result_; }
  const char* syscall() const { return syscall_; }

  // Ends this wait's count among the slot's exclusive waiters, once.
  void stop_waiting() {
    if (exclusive_ && counted_.exchange(false)) Registry::instance().exclusive_wait_ended(*slot_);
  }

 private:
  const std::shared_ptr<Slot> slot_;
  const bool exclusive_;
  std::atomic<bool> counted_{true};
  std::atomic<bool> cancelled_{false};
  // Written by the pool thread before done_.
  const char* syscall_ = "";
  std::mutex mu_;
  std::condition_variable ended_;
  bool done_ = false;     // under mu_
  bool gave_up_ = false;  // under mu_
  int result_ = 0;        // under mu_
};

}  // namespace

int wait_sync(const std::shared_ptr<Slot>& slot, bool exclusive, double timeout_ms, StillWanted still_wanted,
              void* context, const char** syscall) {
  auto job = std::make_shared<SyncWait>(slot, exclusive);
  int r = start_wait(job);
  if (r != 0) {
    job->stop_waiting();
    *syscall = kThreadSyscall;
    return r;
  }
  bool forever = timeout_ms < 0 || !std::isfinite(timeout_ms) || timeout_ms > 1e12;
  auto deadline = Clock::now() + std::chrono::microseconds(forever ? 0 : static_cast<int64_t>(timeout_ms * 1000));
  for (;;) {
    auto now = Clock::now();
    auto until = now + kStillWantedEvery;
    if (!forever) until = std::min(until, deadline);
    if (job->wait_until(until)) break;
    bool timed_out = !forever && Clock::now() >= deadline;
    bool wanted = timed_out || still_wanted(context);
    if (timed_out || !wanted) {
      if (!job->give_up()) break;  // the result came in meanwhile
      if (wanted) return kBusy;
      *syscall = "wait";
      return UV_ECANCELED;
    }
  }
  *syscall = job->syscall();
  return job->result();
}

}  // namespace nfl
