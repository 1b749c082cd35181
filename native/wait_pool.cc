#include "wait_pool.h"

#include <uv.h>  // UV_E* error numbers only; no libuv function is called.

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <system_error>
#include <vector>

#include "lock.h"

namespace nfl {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long an idle thread stays parked. NATIVE_FILE_LOCK_TEST_PARK_MS (read
// once) shortens it for tests.
const milliseconds kParkedFor = [] {
  const char* ms = std::getenv("NATIVE_FILE_LOCK_TEST_PARK_MS");
  long n = ms != nullptr ? std::strtol(ms, nullptr, 10) : 0;
  return milliseconds(n > 0 ? n : 10000);
}();

// A queued wait is first tried 1 ms after it queued, then again after an
// eighth of the time it has waited so far (at most 250 ms): a lock held for
// t is noticed within about t/8, and thousands of long waits cost little.
constexpr milliseconds kFirstPoll{1};
constexpr milliseconds kMaxPoll{250};
constexpr int kPollFraction = 8;
// Waits due this soon are tried in the same round: one wakeup serves many.
constexpr milliseconds kBatch{1};
// A cancelled wait may have been interrupted just before it blocked: the
// poller interrupts it again, 2 ms later, then ever less often (a wait that
// cannot be interrupted, see interrupt_wait, ends when the lock is free).
constexpr milliseconds kInterruptAgain{2};
constexpr milliseconds kMaxInterruptAgain{256};

}  // namespace

struct Pool {
  std::mutex mu;
  std::condition_variable work;    // parked blocking threads
  std::condition_variable polled;  // the poller
  std::deque<std::shared_ptr<WaitJob>> queue;  // waits no blocking thread has taken
  std::vector<std::shared_ptr<WaitJob>> interrupting;
  int threads = 0;  // blocking threads
  int parked = 0;   // of them, parked and not yet called
  int calls = 0;    // parked threads called to serve the queue
  bool poller = false;
  bool kicked = false;  // the poller has new work

  static Pool& get() {
    // Never destroyed: detached threads use it while the process exits.
    static Pool* pool = new Pool();
    return *pool;
  }

  // The oldest queued wait that no thread is trying, taken off the queue.
  std::shared_ptr<WaitJob> take() {
    for (auto it = queue.begin(); it != queue.end(); ++it) {
      if (!(*it)->taken_.exchange(true)) {
        std::shared_ptr<WaitJob> job = std::move(*it);
        queue.erase(it);
        return job;
      }
    }
    return nullptr;
  }

  void remove(const std::shared_ptr<WaitJob>& job) {
    auto it = std::find(queue.begin(), queue.end(), job);
    if (it != queue.end()) queue.erase(it);
  }

  static void serve() {
    Pool& p = get();
    std::unique_lock<std::mutex> lock(p.mu);
    for (;;) {
      std::shared_ptr<WaitJob> job = p.take();
      if (!job) {
        p.parked++;
        bool called = p.work.wait_for(lock, kParkedFor, [&p] { return p.calls > 0; });
        p.parked--;
        if (!called) {
          p.threads--;
          return;
        }
        p.calls--;
        continue;
      }
      job->blocking_ = true;
      job->thread_ = this_thread();
      lock.unlock();
      int r = job->cancelled() ? kCancelled : job->block();
      lock.lock();
      // From here on nobody interrupts this thread for that job.
      job->blocking_ = false;
      lock.unlock();
      job->finish(r);
      job.reset();
      lock.lock();
    }
  }

  static void poll() {
    Pool& p = get();
    std::unique_lock<std::mutex> lock(p.mu);
    std::vector<std::shared_ptr<WaitJob>> due;
    for (;;) {
      auto now = Clock::now();
      auto next = now + kParkedFor;
      for (auto it = p.interrupting.begin(); it != p.interrupting.end();) {
        WaitJob& job = **it;
        if (!job.blocking_) {
          job.interrupting_ = false;
          it = p.interrupting.erase(it);
          continue;
        }
        if (job.next_try_ <= now) {
          interrupt_wait(job.thread_);
          job.interval_ = std::min(kMaxInterruptAgain, job.interval_ * 2);
          job.next_try_ = now + job.interval_;
        }
        next = std::min(next, job.next_try_);
        ++it;
      }
      // Those due soon too: one wakeup serves many waits.
      for (auto& job : p.queue) {
        if (job->next_try_ <= now + kBatch) due.push_back(job);
        else next = std::min(next, job->next_try_);
      }
      if (due.empty() && p.queue.empty() && p.interrupting.empty()) {
        if (!p.polled.wait_for(lock, kParkedFor, [&p] { return p.kicked; })) {
          p.poller = false;
          return;
        }
        p.kicked = false;
        continue;
      }
      lock.unlock();
      for (auto& job : due) {
        if (job->taken_.exchange(true)) continue;  // a blocking thread has it
        int r = job->cancelled() ? kCancelled : job->attempt();
        if (r == kBusy) {
          auto tried = Clock::now();
          auto waited = std::chrono::duration_cast<milliseconds>(tried - job->queued_at_);
          job->next_try_ = tried + std::clamp(waited / kPollFraction, kFirstPoll, kMaxPoll);
          next = std::min(next, job->next_try_);
          job->taken_.store(false);
          continue;
        }
        lock.lock();
        p.remove(job);
        lock.unlock();
        job->finish(r);
      }
      due.clear();
      lock.lock();
      p.polled.wait_until(lock, next, [&p] { return p.kicked; });
      p.kicked = false;
    }
  }

  // Starts a thread running fn; false when the system has none to give.
  static bool spawn(void (*fn)()) {
    try {
      std::thread(fn).detach();
      return true;
    } catch (const std::system_error&) {
      return false;
    }
  }
};

int start_wait(const std::shared_ptr<WaitJob>& job) {
  Pool& p = Pool::get();
  std::lock_guard<std::mutex> lock(p.mu);
  job->queued_at_ = Clock::now();
  job->next_try_ = job->queued_at_ + kFirstPoll;
  p.queue.push_back(job);
  if (p.parked > p.calls) {
    p.calls++;
    p.work.notify_one();
    return 0;
  }
  if (p.threads < kBlockingThreads) {
    // The new thread waits for the mutex, held here, then takes the oldest.
    if (Pool::spawn(Pool::serve)) {
      p.threads++;
      return 0;
    }
  }
  // Every blocking thread is busy (or none could be had): the poller serves
  // the queue until one frees up.
  if (!p.poller && Pool::spawn(Pool::poll)) p.poller = true;
  if (p.poller) {
    p.kicked = true;
    p.polled.notify_one();
    return 0;
  }
  p.remove(job);
  return UV_EAGAIN;
}

void cancel_wait(const std::shared_ptr<WaitJob>& job) {
  Pool& p = Pool::get();
  std::lock_guard<std::mutex> lock(p.mu);
  if (!job->taken_.exchange(true)) {
    p.remove(job);
    return;
  }
  if (!job->blocking_ || job->interrupting_) return;
  interrupt_wait(job->thread_);
  // Again later from the poller, in case that landed just before the
  // thread blocked. Without a poller the wait ends when the lock is free.
  if (!p.poller && Pool::spawn(Pool::poll)) p.poller = true;
  if (!p.poller) return;
  job->interrupting_ = true;
  job->interval_ = kInterruptAgain;
  job->next_try_ = Clock::now() + kInterruptAgain;
  p.interrupting.push_back(job);
  p.kicked = true;
  p.polled.notify_one();
}

}  // namespace nfl
