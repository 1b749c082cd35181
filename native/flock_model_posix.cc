// Linux emulates flock with record locks on NFS (fs/nfs/file.c nfs_flock),
// SMB/CIFS, 9p, AFS and FUSE file systems that take locks themselves: there
// flock and record locks share one lock space. Rather than list those (and
// miss one), this lists the local file systems whose flock is the VFS's own,
// kept apart from record locks; anything else counts as emulated.
#include "flock_model.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/vfs.h>
#endif

namespace nfl {

namespace {

// 1 native, -1 emulated, 0 detect.
const int kForced = [] {
  const char* model = std::getenv("NATIVE_FILE_LOCK_TEST_FLOCK");
  if (model == nullptr) return 0;
  return std::strcmp(model, "native") == 0 ? 1 : std::strcmp(model, "emulated") == 0 ? -1 : 0;
}();

#if defined(__linux__)
bool detect(int fd) {
  struct statfs st;
  if (fstatfs(fd, &st) != 0) return false;
  switch (static_cast<uint32_t>(st.f_type)) {  // <linux/magic.h>
    case 0xEF53:      // ext2, ext3, ext4
    case 0x58465342:  // xfs
    case 0x9123683E:  // btrfs
    case 0x01021994:  // tmpfs
    case 0x858458F6:  // ramfs
    case 0x794C7630:  // overlayfs
    case 0xF2F52010:  // f2fs
    case 0x2FC12FC1:  // zfs
    case 0xCA451A4E:  // bcachefs
    case 0x52654973:  // reiserfs
    case 0x3153464A:  // jfs
    case 0x4D44:      // vfat
    case 0x2011BAB0:  // exfat
    case 0x5346544E:  // ntfs3
      return true;
    default:  // NFS 0x6969, SMB2 0xFE534D42, CIFS 0xFF534D42, FUSE 0x65735546, ...
      return false;
  }
}
#else
// Only Linux has OFD locks to queue on.
bool detect(int) { return false; }
#endif

}  // namespace

bool flock_apart_from_record_locks(int fd) { return kForced != 0 ? kForced > 0 : detect(fd); }

}  // namespace nfl
