#include "alarm.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "lock.h"

namespace nfl {

namespace {

using Clock = std::chrono::steady_clock;

// Re-sent 1 ms after the deadline, then ever less often: a signal that
// cannot end the call (the host took the signal over) costs little.
constexpr auto kAgain = std::chrono::milliseconds(1);
constexpr auto kMaxAgain = std::chrono::milliseconds(256);
// An alarm thread with nothing to do ends after this long.
constexpr auto kIdle = std::chrono::seconds(10);

struct Alarm {
  pthread_t thread;
  Clock::time_point at;
  std::chrono::milliseconds again{kAgain};
};

struct Alarms {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<Alarm> set;
  bool running = false;
  // When the thread wakes next: a new alarm due later needs no wake-up.
  Clock::time_point wakes_at = Clock::time_point::max();

  // The thread's alarm, or set.end() (at most one per thread); under mu.
  std::vector<Alarm>::iterator find(pthread_t thread) {
    return std::find_if(set.begin(), set.end(), [thread](const Alarm& x) { return pthread_equal(x.thread, thread); });
  }

  static Alarms& get() {
    // Never destroyed: the thread may run while the process exits.
    static Alarms* alarms = new Alarms();
    return *alarms;
  }

  static void run() {
    Alarms& a = get();
    std::unique_lock<std::mutex> lock(a.mu);
    for (;;) {
      auto now = Clock::now();
      auto next = Clock::time_point::max();
      for (Alarm& alarm : a.set) {
        if (alarm.at <= now) {
          // Under the mutex: the thread cannot have cleared its alarm and ended.
          interrupt_wait(alarm.thread);
          alarm.at = now + alarm.again;
          alarm.again = std::min(kMaxAgain, alarm.again * 2);
        }
        next = std::min(next, alarm.at);
      }
      if (next == Clock::time_point::max()) {
        a.wakes_at = now + kIdle;
        if (!a.changed.wait_for(lock, kIdle, [&a] { return !a.set.empty(); })) {
          a.running = false;
          a.wakes_at = Clock::time_point::max();
          return;
        }
        continue;
      }
      a.wakes_at = next;
      a.changed.wait_until(lock, next);
    }
  }
};

}  // namespace

bool alarm_set(pthread_t thread, Clock::time_point at) {
  Alarms& a = Alarms::get();
  std::lock_guard<std::mutex> lock(a.mu);
  auto it = a.find(thread);
  if (it != a.set.end()) *it = {thread, at, kAgain};
  else a.set.push_back({thread, at, kAgain});
  if (!a.running) {
    try {
      std::thread(Alarms::run).detach();
      a.running = true;
    } catch (const std::system_error&) {
      a.set.erase(a.find(thread));
      return false;
    }
    return true;
  }
  if (at < a.wakes_at) a.changed.notify_one();
  return true;
}

void alarm_clear(pthread_t thread) {
  Alarms& a = Alarms::get();
  std::lock_guard<std::mutex> lock(a.mu);
  auto it = a.find(thread);
  if (it != a.set.end()) a.set.erase(it);
}

}  // namespace nfl
