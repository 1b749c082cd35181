// Deadlines for blocked calls that take no timeout (fcntl F_OFD_SETLKW):
// one thread per process interrupts a thread whose deadline has passed
// (interrupt_wait, lock.h), and again, ever less often, until its alarm is
// cleared, since one interrupt may land just before the call blocks.
// POSIX only; lock_posix.cc bounds the wait for a turn marker with it.
#pragma once

#include <chrono>
#include <pthread.h>

namespace nfl {

// At most one alarm per thread; setting another replaces it. Returns false
// when no alarm thread could be had: the caller must not block unbounded
// then.
bool alarm_set(pthread_t thread, std::chrono::steady_clock::time_point at);
// After it returns, thread is never interrupted for that alarm.
void alarm_clear(pthread_t thread);

}  // namespace nfl
