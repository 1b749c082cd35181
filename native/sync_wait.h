// A wait that blocks the calling JavaScript thread (lockSync and
// withFileLockSync). It is a wait of the pool like any other (wait_pool.h):
// the same queue, the same blocking call behind a queue ticket, the same
// claim, so a synchronous waiter takes its turn among asynchronous waiters of
// every thread and process. Only the end differs: the pool thread wakes the
// blocked JavaScript thread through a condition variable instead of calling
// back through the event loop, which is not running.
#pragma once

#include <chrono>
#include <memory>

#include "registry.h"

namespace nfl {

// Whether the blocked thread should go on waiting; called on that thread
// now and then (every kStillWantedEvery), e.g. to notice that its Node
// environment is being stopped (a worker terminated, the process exiting).
using StillWanted = bool (*)(void* context);
constexpr auto kStillWantedEvery = std::chrono::milliseconds(100);

// Waits for slot's file lock (exclusive, or shared) until acquired, failed,
// timeout_ms passed (negative or Infinity: never) or still_wanted answered
// false. Returns kAcquired (held in the wait's name: the caller makes the
// hold its own at once, as a delivered asynchronous wait does), kBusy when the time ran out or
// UV_ECANCELED (syscall "wait") when no longer wanted (nothing is held
// then: what the wait still gets is given back), or a negative error with
// *syscall naming the failed call. Uses no CPU while it waits.
int wait_sync(const std::shared_ptr<Slot>& slot, bool exclusive, double timeout_ms, StillWanted still_wanted,
              void* context, const char** syscall);

}  // namespace nfl
