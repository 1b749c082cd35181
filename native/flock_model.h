// Whether flock(2) and record locks are separate lock spaces on a file's
// file system: POSIX only, used by lock_posix.cc to decide on queue tickets.
#pragma once

namespace nfl {

// True where a record lock on the lock file is invisible to flock (local
// Linux file systems known to implement flock themselves); false where flock
// is, or may be, emulated with record locks, and wherever it is unknown.
// NATIVE_FILE_LOCK_TEST_FLOCK=emulated|native (read once at load) overrides
// the answer, for the test model of NFS (test/nfs-model/), which statfs
// cannot see through.
bool flock_apart_from_record_locks(int fd);

}  // namespace nfl
