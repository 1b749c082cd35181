// A wait that blocks the calling JavaScript thread (lockSync and
// withFileLockSync). That thread itself blocks in the wait (wait_acquire),
// as a wait thread does for an asynchronous wait: the same claim, the same
// queue ticket and turn marker, so a synchronous waiter takes its turn among
// the waiters of every thread and process, and a release wakes it directly,
// with no thread in between. An alarm (alarm.h) interrupts it at its
// deadline and every kStillWantedEvery, for it to look whether its
// environment still wants the lock. Where another process is queued ahead
// (kMustQueue), those wake-ups would cost its place in the queue: then a pool
// thread waits for it (wait_pool.h), never woken until the wait ends, and the
// JavaScript thread sleeps on a condition variable meanwhile.
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
