// The threads that run lock waits, shared by every Node environment of the
// process (the addon is never unloaded, so there is one pool per process).
//
// At most kBlockingThreads threads block in a wait at a time; they are
// created on demand, parked between waits (creating a thread costs more than
// a lock handoff) and end after a while unused. Waits beyond that queue in
// FIFO order: the oldest goes to the next thread that frees up, and
// meanwhile one poller thread tries every queued wait without blocking, with
// a short backoff. So the process never runs more than kBlockingThreads + 1
// wait threads, however many waits are open. Never libuv's pool: a wait
// there would hold a thread that the process's fs I/O needs.
//
// Nothing here is ever destroyed: the threads may still run while the
// process exits.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

namespace nfl {

constexpr int kBlockingThreads = 8;

// One wait, as the pool sees it.
class WaitJob {
 public:
  virtual ~WaitJob() = default;
  // One attempt that never blocks: kBusy when the wait goes on.
  virtual int attempt() = 0;
  // Blocks until done, failed or cancelled (kCancelled).
  virtual int block() = 0;
  // Called once, on a pool thread, with the result.
  virtual void finish(int result) = 0;
  virtual bool cancelled() const = 0;

 private:
  friend struct Pool;
  friend int start_wait(const std::shared_ptr<WaitJob>& job);
  friend void cancel_wait(const std::shared_ptr<WaitJob>& job);
  std::atomic<bool> taken_{false};  // a thread is running attempt() or block()
  // Under the pool's mutex.
  bool blocking_ = false;
  bool interrupting_ = false;
  std::thread::native_handle_type thread_{};
  // When the poller next tries it (queued) or interrupts it (cancelled
  // while blocking): under the mutex, or by the thread that has it taken.
  std::chrono::steady_clock::time_point next_try_{};
  std::chrono::milliseconds interval_{0};  // between interrupts
  std::chrono::steady_clock::time_point queued_at_{};
};

// Queues job and makes sure a thread will serve it. Returns 0, or a negative
// error number (UV_EAGAIN) when no thread could be had for it; then the job
// is dropped and finish() is never called.
int start_wait(const std::shared_ptr<WaitJob>& job);

// After job->cancelled() became true: drops it if no thread has it yet;
// interrupts its blocking thread now and again until block() returns.
// Never blocks the caller.
void cancel_wait(const std::shared_ptr<WaitJob>& job);

}  // namespace nfl
