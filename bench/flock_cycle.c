/*
 * The physical limit for the benchmark: the same lock cycles as the Node
 * contenders, done with plain blocking flock(2) and nothing else. Compiled by
 * bench/run.mjs with the system compiler.
 *
 *   flock_cycle uncontended LOCK CYCLES
 *       open + flock(LOCK_EX) + flock(LOCK_UN) + close, CYCLES times.
 *   flock_cycle contended LOCK COUNTER CYCLES
 *       prints "ready", waits for "go" on stdin, then CYCLES times: lock,
 *       read the counter, write it back plus one, unlock.
 *   flock_cycle handoff LOCK
 *       answers the driver's handoff commands (see bench/workers/handoff.mjs,
 *       which speaks the same protocol).
 *   flock_cycle handoff-loop LOCK
 *       the same, but a waiter blocks in flock on a second thread that wakes
 *       the main thread, blocked in poll(2), through a pipe once it holds the
 *       lock: the hop every event-loop program (Node, libuv) pays at a
 *       handoff, with nothing else around it.
 *
 * Every timestamp is CLOCK_MONOTONIC in nanoseconds: the clock libuv's
 * hrtime reads too, so the driver can compare stamps across processes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define COUNTER_WIDTH 20

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, const char *path) {
  fprintf(stderr, "flock_cycle: %s %s: %s\n", what, path ? path : "", strerror(errno));
  exit(2);
}

static int open_lock(const char *path) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) die("open", path);
  return fd;
}

static void lock_fd(int fd, const char *path) {
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) die("flock(LOCK_EX)", path);
  }
}

static void unlock_fd(int fd, const char *path) {
  if (flock(fd, LOCK_UN) != 0) die("flock(LOCK_UN)", path);
}

/* Reads one command line from the driver; exits when the driver is gone. */
static void read_line(char *buf, size_t size) {
  if (fgets(buf, (int)size, stdin) == NULL) exit(3);
  buf[strcspn(buf, "\n")] = '\0';
}

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}

static void cycle(const char *path) {
  int fd = open_lock(path);
  lock_fd(fd, path);
  unlock_fd(fd, path);
  if (close(fd) != 0) die("close", path);
}

struct usage {
  double cpu_us;
  long vcsw, ivcsw;
};

static struct usage usage_now(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  struct usage u = {(double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec), ru.ru_nvcsw,
                    ru.ru_nivcsw};
  return u;
}

static int uncontended(const char *path, long cycles) {
  /* Warm the dentry cache and the branch predictors like the JIT warm-up
     the Node contenders get. */
  for (long i = 0; i < 1000; i++) cycle(path);
  struct usage used = usage_now();
  int64_t t0 = now_ns();
  for (long i = 0; i < cycles; i++) cycle(path);
  int64_t t1 = now_ns();
  struct usage after = usage_now();
  say("result {\"cycles\":%ld,\"usPerCycle\":%.4f,\"usage\":{\"cpuUs\":%.0f,\"vcsw\":%ld,\"ivcsw\":%ld}}\n", cycles, (double)(t1 - t0) / 1000.0 / (double)cycles,
      after.cpu_us - used.cpu_us, after.vcsw - used.vcsw, after.ivcsw - used.ivcsw);
  return 0;
}

static int contended(const char *path, const char *counter_path, long cycles) {
  char line[64];
  int counter = open(counter_path, O_RDWR | O_CLOEXEC);
  if (counter < 0) die("open", counter_path);
  double *waits = malloc(sizeof(double) * (size_t)(cycles > 0 ? cycles : 1));
  if (waits == NULL) die("malloc", NULL);
  say("ready\n");
  read_line(line, sizeof line);
  struct usage used = usage_now();
  int64_t start = now_ns();
  for (long i = 0; i < cycles; i++) {
    int64_t t0 = now_ns();
    int fd = open_lock(path);
    lock_fd(fd, path);
    waits[i] = (double)(now_ns() - t0) / 1000.0;
    char buf[COUNTER_WIDTH + 1];
    ssize_t n = pread(counter, buf, COUNTER_WIDTH, 0);
    if (n != COUNTER_WIDTH) die("pread", counter_path);
    buf[COUNTER_WIDTH] = '\0';
    long long value = strtoll(buf, NULL, 10);
    snprintf(buf, sizeof buf, "%0*lld", COUNTER_WIDTH, value + 1);
    if (pwrite(counter, buf, COUNTER_WIDTH, 0) != COUNTER_WIDTH) die("pwrite", counter_path);
    unlock_fd(fd, path);
    close(fd);
  }
  int64_t end = now_ns();
  struct usage after = usage_now();
  printf("result {\"start\":%lld,\"end\":%lld,\"usage\":{\"cpuUs\":%.0f,\"vcsw\":%ld,\"ivcsw\":%ld},\"waits\":[", (long long)start, (long long)end,
         after.cpu_us - used.cpu_us, after.vcsw - used.vcsw, after.ivcsw - used.ivcsw);
  for (long i = 0; i < cycles; i++) printf(i ? ",%.2f" : "%.2f", waits[i]);
  say("]}\n");
  return 0;
}

/*
 * hold          -> take the lock, answer "held"
 * wait          -> answer "waiting", block until the lock is ours, stamp,
 *                  release, answer "acquired STAMP CPU_US VCSW IVCSW" (the
 *                  usage of this process over the wait)
 * release US    -> sleep US microseconds, stamp, release, answer
 *                  "released STAMP CPU_US VCSW IVCSW" (over the release)
 * quit          -> answer "result {}" and exit
 */
static void say_usage(const char *word, int64_t stamp, struct usage since) {
  struct usage now = usage_now();
  say("%s %lld %.0f %ld %ld\n", word, (long long)stamp, now.cpu_us - since.cpu_us, now.vcsw - since.vcsw, now.ivcsw - since.ivcsw);
}

struct loop_wait {
  int fd;
  const char *path;
  int wake;  /* write end of the pipe the main thread polls */
};

static void *loop_wait_thread(void *arg) {
  struct loop_wait *w = arg;
  lock_fd(w->fd, w->path);
  char byte = 1;
  if (write(w->wake, &byte, 1) != 1) die("write", "wake pipe");
  return NULL;
}

/* Blocks until the lock on fd is held, waiting on a thread the way an event
   loop must: the main thread only learns of it from its poll. */
static void lock_fd_via_loop(int fd, const char *path) {
  int pipefd[2];
  if (pipe(pipefd) != 0) die("pipe", NULL);
  struct loop_wait w = {fd, path, pipefd[1]};
  pthread_t thread;
  if (pthread_create(&thread, NULL, loop_wait_thread, &w) != 0) die("pthread_create", NULL);
  struct pollfd pfd = {pipefd[0], POLLIN, 0};
  while (poll(&pfd, 1, -1) < 0) {
    if (errno != EINTR) die("poll", NULL);
  }
  char byte;
  if (read(pipefd[0], &byte, 1) != 1) die("read", "wake pipe");
  pthread_join(thread, NULL);
  close(pipefd[0]);
  close(pipefd[1]);
}

static int handoff(const char *path, int via_loop) {
  char line[64];
  int held = -1;
  say("ready\n");
  for (;;) {
    read_line(line, sizeof line);
    if (strcmp(line, "hold") == 0) {
      held = open_lock(path);
      lock_fd(held, path);
      say("held\n");
    } else if (strcmp(line, "wait") == 0) {
      say("waiting\n");
      struct usage used = usage_now();
      int fd = open_lock(path);
      if (via_loop) {
        lock_fd_via_loop(fd, path);
      } else {
        lock_fd(fd, path);
      }
      int64_t t1 = now_ns();
      unlock_fd(fd, path);
      close(fd);
      say_usage("acquired", t1, used);
    } else if (strncmp(line, "release ", 8) == 0) {
      long us = strtol(line + 8, NULL, 10);
      struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
      while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
      }
      struct usage used = usage_now();
      int64_t t0 = now_ns();
      unlock_fd(held, path);
      close(held);
      held = -1;
      say_usage("released", t0, used);
    } else if (strcmp(line, "quit") == 0) {
      say("result {}\n");
      return 0;
    } else {
      fprintf(stderr, "flock_cycle: unknown command '%s'\n", line);
      return 2;
    }
  }
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "uncontended") == 0) return uncontended(argv[2], atol(argv[3]));
  if (argc == 5 && strcmp(argv[1], "contended") == 0) return contended(argv[2], argv[3], atol(argv[4]));
  if (argc == 3 && strcmp(argv[1], "handoff") == 0) return handoff(argv[2], 0);
  if (argc == 3 && strcmp(argv[1], "handoff-loop") == 0) return handoff(argv[2], 1);
  fprintf(stderr,
          "usage: flock_cycle uncontended LOCK CYCLES\n"
          "       flock_cycle contended LOCK COUNTER CYCLES\n"
          "       flock_cycle handoff LOCK\n"
          "       flock_cycle handoff-loop LOCK\n");
  return 2;
}
