// Threads that run blocking lock waits: created on demand, parked between
// waits (creating a thread costs more than a lock handoff) and ended after
// a while unused. Never libuv's pool: a wait there would hold a thread that
// the process's fs I/O needs.
#pragma once

#include <functional>
#include <thread>

namespace nfl {

// Runs job on a parked thread or a new one and returns that thread's
// handle, for interrupt_wait(). The thread outlives the job.
std::thread::native_handle_type run_on_wait_thread(std::function<void()> job);

}  // namespace nfl
