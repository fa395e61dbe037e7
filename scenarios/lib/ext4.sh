#!/usr/bin/env bash
# ext4 on an NBD export without the kernel nbd module: nbdfuse exposes the export as a file, a
# loop device makes it a block device. Used by scenarios/lose-unflushed.yaml.
#
#   ext4.sh write URI DIR     mkfs, mount, write files; fsync some (their sha256 to DIR/synced),
#                             leave others unflushed in the page cache and the disk's cache
#   ext4.sh detach DIR        after the array died: take the mount, loop and FUSE mount away
#   ext4.sh recover URI DIR   mount again (ext4 replays its journal), check every fsynced file,
#                             unmount cleanly
#
# Exits 0 with "skipped: ..." where FUSE, loop devices or root are missing (the scenario's fs
# check then says skipped too); 1 when a fsynced file is missing or differs.
set -euo pipefail
cmd="$1"
work="${3:-$2}"
mnt="$work/mnt"
fuse="$work/fuse"

unavailable() {
  [ "$(id -u)" -eq 0 ] || { echo "root needed"; return; }
  [ -e /dev/fuse ] || { echo "no /dev/fuse"; return; }
  [ -e /dev/loop-control ] || { echo "no loop devices"; return; }
  for t in nbdfuse losetup mkfs.ext4 e2fsck fusermount3 mount umount; do command -v "$t" >/dev/null || { echo "no $t"; return; }; done
}
why="$(unavailable)"
if [ -n "$why" ]; then echo "skipped: $why"; exit 0; fi

attach() { # URI: nbdfuse + loop; prints the loop device
  mkdir -p "$fuse" "$mnt"
  # (its output must not hold the caller's $(...) open)
  nbdfuse "$fuse" "$1" </dev/null >"$work/nbdfuse.log" 2>&1 &
  for _ in $(seq 100); do [ -e "$fuse/nbd" ] && break; sleep 0.1; done
  [ -e "$fuse/nbd" ] || { echo "nbdfuse did not come up" >&2; exit 1; }
  losetup -f --show "$fuse/nbd" > "$work/loop"
  cat "$work/loop"
}

detach() {
  umount -l "$mnt" 2>/dev/null || true
  [ -f "$work/loop" ] && losetup -d "$(cat "$work/loop")" 2>/dev/null || true
  fusermount3 -u -z "$fuse" 2>/dev/null || true
  rm -f "$work/loop"
}

case "$cmd" in
  write)
    uri="$2"
    mkdir -p "$work"
    loop="$(attach "$uri")"
    mkfs.ext4 -q -F "$loop"
    mount -o data=ordered "$loop" "$mnt"
    : > "$work/synced"
    for i in $(seq 1 20); do
      head -c $((64 * 1024 + i * 512)) /dev/urandom > "$mnt/synced-$i"
      sync -f "$mnt/synced-$i" && sync "$mnt/synced-$i"
      (cd "$mnt" && sha256sum "synced-$i") >> "$work/synced"
    done
    sync -f "$mnt"
    # Written but never fsynced: in the page cache, perhaps in the disk's volatile cache.
    for i in $(seq 1 20); do head -c $((128 * 1024)) /dev/urandom > "$mnt/unsynced-$i"; done
    mkdir -p "$mnt/dir-unsynced" && touch "$mnt/dir-unsynced/a" "$mnt/dir-unsynced/b"
    echo "wrote 20 fsynced files and 20 unsynced ones on $loop"
    ;;
  detach)
    detach
    echo "detached"
    ;;
  recover)
    uri="$2"
    loop="$(attach "$uri")"
    mount "$loop" "$mnt"            # ext4 replays its journal here
    (cd "$mnt" && sha256sum -c --quiet "$work/synced")
    ls "$mnt" | grep -c unsynced- | sed 's/^/unsynced files that survived: /' || true
    umount "$mnt"
    losetup -d "$loop"
    fusermount3 -u "$fuse"
    rm -f "$work/loop"
    echo "every fsynced file is intact; the file system was unmounted cleanly"
    ;;
  *)
    echo "usage: ext4.sh write|detach|recover ..." >&2
    exit 2
    ;;
esac
