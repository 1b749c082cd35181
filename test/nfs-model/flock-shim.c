// A model of how Linux runs flock(2) on NFS (and SMB/CIFS): fs/nfs/file.c
// nfs_flock() turns it into a whole-file POSIX-style record lock owned by
// the open file description. Preloaded (LD_PRELOAD) into every process of a
// test, it makes flock() exactly that on a local file system: an OFD lock
// on the whole file, in the same lock space as any other record lock on the
// file, through the same descriptor.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>

int flock(int fd, int operation) {
  int kind = operation & (LOCK_SH | LOCK_EX | LOCK_UN);
  struct flock fl;
  memset(&fl, 0, sizeof(fl));
  fl.l_type = kind == LOCK_UN ? F_UNLCK : kind == LOCK_SH ? F_RDLCK : F_WRLCK;
  fl.l_whence = SEEK_SET;  // l_start 0, l_len 0: the whole file
  int cmd = (operation & LOCK_NB) || kind == LOCK_UN ? F_OFD_SETLK : F_OFD_SETLKW;
  if (fcntl(fd, cmd, &fl) == 0) return 0;
  // nfs_flock answers a conflict the way flock does.
  if (errno == EACCES || errno == EAGAIN) errno = EWOULDBLOCK;
  return -1;
}
