#include "registry.h"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <vector>

namespace nfl {

const std::chrono::milliseconds kIdleFor = [] {
  const char* ms = std::getenv("NATIVE_FILE_LOCK_TEST_IDLE_MS");
  long n = ms != nullptr ? std::strtol(ms, nullptr, 10) : -1;
  return std::chrono::milliseconds(n >= 0 ? n : 1000);
}();

namespace {
bool same_file(const FileId& a, const FileId& b) { return a.dev == b.dev && a.ino == b.ino; }

// Only for the claim holder, or a closer while kClosing.
void close_descriptor(Slot& s) {
  if (s.descriptor == kNoDescriptor) return;
  close_lock_file(s.descriptor);
  s.descriptor = kNoDescriptor;
  s.turn = false;  // the close gave the marker back
  s.ticket_usable.store(-1, std::memory_order_relaxed);
}

// ticket_usable() of s's open descriptor, asked once (a fstatfs on Linux).
bool ticket_usable(Slot& s) {
  int known = s.ticket_usable.load(std::memory_order_relaxed);
  if (known < 0) {
    known = nfl::ticket_usable(s.descriptor) ? 1 : 0;
    s.ticket_usable.store(known, std::memory_order_relaxed);
  }
  return known != 0;
}

// others_waiting() where that can be known.
bool others_waiting(Slot& s) { return ticket_usable(s) && nfl::others_waiting(s.descriptor); }

// Every release reads it, so the cheapest monotonic clock there is: Linux's
// coarse clock (a few ms of resolution, a quarter of CLOCK_MONOTONIC's cost).
int64_t now_ms() {
#ifdef CLOCK_MONOTONIC_COARSE
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
#else
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
#endif
}
}  // namespace

// A released flock goes to whoever asks first, and that is nearly always
// the releasing process asking again: the woken waiter still has to be
// scheduled. So a process may keep the lock to itself for kTurn, then it
// steps back once if another process is queued; with n processes a waiter
// waits about n turns. Switching costs a handoff, so turns are long enough
// for switches to stay rare. Every acquisition reads the clock (tens of
// nanoseconds: no system call on Linux or Windows), and only after a full
// turn does it look at the queue. Counting acquisitions instead would make a
// turn last that many holds, however long each one is.
// The head waits for the marker at most kTurnWait: a holder that stopped
// or went idle in its turn does not keep it out longer.
constexpr auto kTurn = std::chrono::milliseconds(2);
constexpr auto kTurnWait = kTurn + std::chrono::milliseconds(1);

Registry& Registry::instance() {
  // Never destroyed: worker threads may still use it while the process exits.
  static Registry* registry = new Registry();
  return *registry;
}

std::shared_ptr<Slot> Registry::slot(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& entry = slots_[path];
  if (!entry) entry = std::make_shared<Slot>(path);
  return entry;
}

int Registry::lock_claimed(Slot& s, bool exclusive, WaitControl* control, const char** syscall) {
  for (int attempt = 0; attempt < 3; attempt++) {
    if (s.descriptor == kNoDescriptor) {
      Descriptor d;
      int r = open_lock_file(s.path.c_str(), &d, &s.id, syscall);
      if (r != 0) return r;
      s.descriptor = d;
    }
    // A process that waits again is no longer in its turn; wait_lock only
    // says whether the wait took the marker.
    if (control) end_turn_now(s);
    int r = control ? wait_lock(s.descriptor, exclusive, ticket_usable(s), *control, kTurnWait, &s.turn)
                      : try_lock(s.descriptor, exclusive);
    if (r != kAcquired) {
      if (r < 0) *syscall = kLockSyscall;
      return r;
    }
    FileId now;
    if (path_id(s.path.c_str(), &now) == 0 && same_file(now, s.id)) return kAcquired;
    // Deleted or replaced since it was opened: a lock on an orphan excludes
    // nobody. Start over with whatever is at the path now; if the path is
    // unusable, the open reports why.
    unlock(s.descriptor);
    close_descriptor(s);
  }
  return kBusy;  // Replaced again and again: the caller waits and retries.
}

bool Registry::claim(Slot& s, const void* owner) {
  int expected = kFree;
  while (!s.state.compare_exchange_strong(expected, kClaimed)) {
    if (expected != kClosing) return false;
    // Free but for one close(2) in progress: wait it out, then reopen.
    std::this_thread::yield();
    expected = kFree;
  }
  s.owner.store(owner);
  return true;
}

void Registry::unclaim(Slot& s, bool may_keep) {
  int64_t now = now_ms();
  // Hot: the third time within kHotFor, so that a lock used once or twice
  // in a row is still cold.
  int64_t before_last = s.freed_before.load(std::memory_order_relaxed);
  bool hot = now - before_last < kHotFor.count() || s.waiting.load() > 0;
  s.freed_before.store(s.freed_at.load(std::memory_order_relaxed), std::memory_order_relaxed);
  s.freed_at.store(now, std::memory_order_relaxed);
  bool keep_open = hot && may_keep && s.descriptor != kNoDescriptor;
  if (!keep_open) close_descriptor(s);
  s.owner.store(nullptr);
  s.state.store(kFree);
  // A waiter increments `waiting` before it checks `state` under the
  // mutex, so either it sees the slot free or we see it waiting here.
  if (s.waiting.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    // All, not one: a woken waiter may have been cancelled and leave.
    s.freed.notify_all();
  }
  if (keep_open && !s.kept.load(std::memory_order_relaxed)) keep(s);
}


int Registry::try_acquire(Slot& s, const void* owner, bool exclusive, bool will_wait, const char** syscall) {
  if (!exclusive) return try_share(s, owner, syscall);
  if (!claim(s, owner)) return kBusy;
  int r = lock_claimed(s, exclusive, nullptr, syscall);
  if (r == kAcquired && will_wait) {
    auto now = std::chrono::steady_clock::now();
    if (now - s.streak_began >= kTurn) {
      if (others_waiting(s)) {
        unlock(s.descriptor);
        end_turn_now(s);
        r = kBusy;
      } else {
        // Nobody queued: a new turn, without the marker, which is for a
        // process that has waited.
        end_turn_now(s);
        s.streak_began = now;
      }
    }
  }
  if (r != kAcquired) unclaim(s);
  return r;
}

void Registry::end_turn_now(Slot& s) {
  if (!s.turn) return;
  end_turn(s.descriptor);
  s.turn = false;
}

bool Registry::join(Slot& s) {
  int state = s.state.load();
  while (state >= kShared && s.exclusive_waiters.load() == 0) {
    if (s.state.compare_exchange_weak(state, state + 1)) return true;
  }
  return false;
}

void Registry::share(Slot& s) {
  s.owner.store(nullptr);
  s.state.store(kShared);
  // Shared waiters of other threads may join now.
  if (s.waiting.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    s.freed.notify_all();
  }
}

// A shared lock is checked for a queued process every time, unlike an
// exclusive one's turn: readers that overlap never release the file lock,
// so a queued writer would otherwise wait for as long as they keep coming.
// The check is one F_OFD_GETLK; the descriptor stays open while shared.
int Registry::unless_queued(Slot& s) {
  if (!others_waiting(s)) return kAcquired;
  release(s);
  return kBusy;
}

int Registry::try_share(Slot& s, const void* owner, const char** syscall) {
  if (join(s)) return unless_queued(s);
  // Not even the claim while a writer waits: it would only delay the writer's.
  if (s.exclusive_waiters.load() > 0 || !claim(s, owner)) return kBusy;
  int r = lock_claimed(s, false, nullptr, syscall);
  if (r != kAcquired) {
    unclaim(s);
    return r;
  }
  share(s);
  return unless_queued(s);
}

int Registry::wait_acquire(Slot& s, const void* owner, bool exclusive, WaitControl& control, const char** syscall) {
  // A shared waiter that found another process queued waits for this
  // process's holders to leave, then takes its own ticket behind it.
  bool may_join = !exclusive;
  for (;;) {
    bool claimed = false;
    bool joined = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      s.waiting++;
      auto ready = [&] {
        if (control.cancelled.load()) return true;
        if (!exclusive && s.exclusive_waiters.load() > 0) return false;
        if (may_join && (joined = join(s))) return true;
        return claimed = claim(s, owner);
      };
      if (control.wakes_itself()) {
        s.freed.wait_until(lock, control.check_at, ready);
      } else {
        s.freed.wait(lock, ready);
      }
      s.waiting--;
    }
    if (!claimed && !joined) {
      // Cancelled, or the waiting thread's time to look (outside the mutex).
      if (control.stopped()) return kCancelled;
      continue;
    }
    if (joined) {
      int r = control.cancelled.load() ? kCancelled : unless_queued(s);
      if (r == kCancelled) release(s);
      if (r != kBusy) return r;
      may_join = false;
      continue;
    }
    int r = lock_claimed(s, exclusive, &control, syscall);
    if (r == kAcquired) {
      if (exclusive) {
        s.streak_began = std::chrono::steady_clock::now();
      } else {
        share(s);
      }
      if (!control.cancelled.load()) return kAcquired;
      end_turn_now(s);
      release(s);
      return kCancelled;
    }
    unclaim(s);
    if (r != kBusy) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Registry::wake_waiters(Slot& s) {
  std::lock_guard<std::mutex> lock(mu_);
  s.freed.notify_all();
}

void Registry::exclusive_wait_began(Slot& s) { s.exclusive_waiters++; }

void Registry::exclusive_wait_ended(Slot& s) {
  if (--s.exclusive_waiters > 0 || s.waiting.load() == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  s.freed.notify_all();
}

int Registry::release(Slot& s, bool remove_file) {
  // A shared holder leaves the count; the last takes the claim back to unlock.
  int state = s.state.load();
  bool shared = state >= kShared;
  while (state >= kShared) {
    int next = state == kShared ? kClaimed : state - 1;
    if (s.state.compare_exchange_weak(state, next)) {
      if (next != kClaimed) return 0;
      break;
    }
  }
  // A turn that is over ends at the release too, so that a holder that goes
  // idle now does not keep the head waiter out until kTurnWait.
  if (s.turn && std::chrono::steady_clock::now() - s.streak_began >= kTurn) end_turn_now(s);
  // Deleted only under an exclusive lock: another holder of this file, even
  // a shared one, would otherwise keep holding it while newcomers lock a new
  // file at the path.
  if (remove_file && !shared) remove_if_locked(s);
  int r = unlock(s.descriptor);
  if (remove_file && shared && r == 0 && try_lock(s.descriptor, true) == kAcquired) {
    remove_if_locked(s);
    r = unlock(s.descriptor);
  }
  // After an unlock error, closing is what drops the lock.
  unclaim(s, r == 0 && !remove_file);
  return r;
}

// Whoever locks the deleted file next, here or in another process, finds in
// lock_claimed that the path no longer names it and starts over with a new
// file. Only if the path still names the locked file; a failed delete
// leaves the file, as without the option.
void Registry::remove_if_locked(Slot& s) {
  FileId now;
  if (path_id(s.path.c_str(), &now) == 0 && same_file(now, s.id)) remove_lock_file(s.path.c_str());
}

void Registry::keep(Slot& s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (s.kept.load()) return;
  s.kept.store(true);
  kept_.push_back(s.shared_from_this());
  std::vector<const Slot*> held;
  while (kept_.size() > kKeptMax) {
    size_t oldest = kept_.size();
    for (size_t i = 0; i < kept_.size(); i++) {
      const Slot* k = kept_[i].get();
      if (k == &s || std::find(held.begin(), held.end(), k) != held.end()) continue;
      if (oldest == kept_.size() || k->freed_at.load() < kept_[oldest]->freed_at.load()) oldest = i;
    }
    if (oldest == kept_.size()) break;  // all held: none is idle
    Slot& victim = *kept_[oldest];
    if (close_unclaimed(victim)) {
      victim.kept.store(false);
      kept_.erase(kept_.begin() + static_cast<std::ptrdiff_t>(oldest));
    } else {
      held.push_back(&victim);
    }
  }
}

void Registry::release_all(const void* owner) {
  std::vector<std::shared_ptr<Slot>> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& entry : slots_) {
      if (entry.second->owner.load() == owner) held.push_back(entry.second);
    }
  }
  for (auto& s : held) release(*s);
}

bool Registry::close_unclaimed(Slot& s) {
  int expected = kFree;
  if (!s.state.compare_exchange_strong(expected, kClosing)) return false;
  close_descriptor(s);
  s.state.store(kFree);
  return true;
}

int Registry::close_idle(std::chrono::milliseconds idle_for) {
  int64_t released_before = now_ms() - idle_for.count();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = kept_.begin(); it != kept_.end();) {
    Slot& s = **it;
    // freed_at is read before the slot is marked kClosing: a release in
    // between only costs its next claim a reopen.
    bool idle = s.waiting.load() == 0 && s.freed_at.load(std::memory_order_relaxed) <= released_before;
    if (idle && close_unclaimed(s)) {
      s.kept.store(false);
      it = kept_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = slots_.begin(); it != slots_.end();) {
    // Only the table refers to it: nobody can be about to claim it, and its
    // descriptor was closed when it was last released.
    if (it->second.use_count() == 1 && close_unclaimed(*it->second)) {
      it = slots_.erase(it);
    } else {
      ++it;
    }
  }
  return static_cast<int>(kept_.size());
}

}  // namespace nfl
