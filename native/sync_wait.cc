#include "sync_wait.h"

#include <uv.h>  // UV_E* error numbers only; no libuv function is called.

#include <algorithm>
#include <cmath>

namespace nfl {

namespace {

using Clock = WaitControl::Clock;

// Ends the wait at its deadline, or when the environment no longer wants
// it; asked on the blocked thread itself, every kStillWantedEvery.
class SyncControl : public WaitControl {
 public:
  SyncControl(double timeout_ms, StillWanted still_wanted, void* context)
      : forever_(timeout_ms < 0 || !std::isfinite(timeout_ms) || timeout_ms > 1e12),
        deadline_(forever_ ? Clock::time_point::max()
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

  const bool forever_;
  const Clock::time_point deadline_;
  const StillWanted still_wanted_;
  void* const context_;
  bool timed_out_ = false;
};

}  // namespace

int wait_sync(const std::shared_ptr<Slot>& slot, bool exclusive, double timeout_ms, StillWanted still_wanted,
              void* context, const char** syscall) {
  SyncControl control(timeout_ms, still_wanted, context);
  Registry& registry = Registry::instance();
  // As for an asynchronous wait: counted until it ends, so that meanwhile
  // no shared holder of this process joins (writer preference).
  if (exclusive) registry.exclusive_wait_began(*slot);
  int r = registry.wait_acquire(*slot, &control, exclusive, control, syscall);
  if (exclusive) registry.exclusive_wait_ended(*slot);
  if (r != kCancelled) return r;
  if (control.timed_out()) return kBusy;
  *syscall = "wait";
  return UV_ECANCELED;
}

}  // namespace nfl
