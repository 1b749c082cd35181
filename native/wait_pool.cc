#include "wait_pool.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

namespace nfl {

namespace {

constexpr auto kParkedFor = std::chrono::seconds(10);

struct WaitThread {
  std::thread::native_handle_type handle{};
  std::function<void()> job;
  std::condition_variable wake;
};

std::mutex mu;
std::vector<WaitThread*> parked;

void serve(WaitThread* self) {
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    if (!self->job) {
      // Spurious wakeups and interrupt signals land here too: wait again.
      if (!self->wake.wait_for(lock, kParkedFor, [self] { return static_cast<bool>(self->job); })) {
        for (auto it = parked.begin(); it != parked.end(); ++it) {
          if (*it == self) {
            parked.erase(it);
            break;
          }
        }
        lock.unlock();
        delete self;
        return;
      }
    }
    std::function<void()> job = std::move(self->job);
    self->job = nullptr;
    lock.unlock();
    job();
    lock.lock();
    parked.push_back(self);
  }
}

}  // namespace

std::thread::native_handle_type run_on_wait_thread(std::function<void()> job) {
  std::lock_guard<std::mutex> lock(mu);
  if (!parked.empty()) {
    WaitThread* t = parked.back();
    parked.pop_back();
    t->job = std::move(job);
    t->wake.notify_one();
    return t->handle;
  }
  auto* t = new WaitThread();
  t->job = std::move(job);
  // The new thread blocks on mu (held here) until its handle is recorded.
  std::thread thread(serve, t);
  t->handle = thread.native_handle();
  thread.detach();
  return t->handle;
}

}  // namespace nfl
