#!/usr/bin/env bash
# Builds a small bootable BIOS disk for the boot test and benchmark:
#   MBR (SYSLINUX boot code) | part1 FAT16: SYSLINUX, a Debian kernel, a busybox
#   initramfs | part2 ext4: marker.txt
# The initramfs loads the virtio and ext4 modules, mounts /dev/vda2 read-only,
# prints marker.txt and "BLOCKVAULT-BOOT-DONE" to the serial console, powers off.
# Usage: scripts/boot-fixture.sh <out.raw> <marker text> [agent]
# With "agent" the guest instead mounts /dev/vda2 read-write, runs the QEMU
# guest agent (qemu-ga, from Debian's qemu-guest-agent package, fetched like
# the kernel) on its virtio-serial port, prints BLOCKVAULT-AGENT-READY and
# stays up until the agent is told to shut it down (guest-shutdown).
# Needs (scripts/setup.sh installs them): syslinux syslinux-common busybox-static
# kmod cpio dosfstools mtools e2fsprogs fdisk; the kernel package is fetched with
# apt-get download (Debian's registry) and cached in $BLOCKVAULT_FIXTURE_CACHE.
set -euo pipefail
out=$1
marker=$2
agent=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cache=${BLOCKVAULT_FIXTURE_CACHE:-/var/cache/blockvault}
mkdir -p "$cache"

kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[[ -n $kpkg ]] || { apt-get update -qq >/dev/null; kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); }
kver=${kpkg#linux-image-}
deb=$(ls "$cache/${kpkg}"_*.deb 2>/dev/null | head -1 || true)
if [[ -z $deb ]]; then
  (cd "$cache" && apt-get download -qq "$kpkg" 2>/dev/null)
  deb=$(ls "$cache/${kpkg}"_*.deb | head -1)
fi
dpkg-deb -x "$deb" "$work/k"
depmod -b "$work/k" "$kver"

# initramfs: busybox + the modules for virtio-blk and ext4, in load order
i=$work/i
mkdir -p "$i"/{bin,proc,sys,dev,mnt,modules}
cp "$(command -v busybox)" "$i/bin/busybox"
for a in sh mount insmod cat sleep mkdir poweroff echo seq; do ln -s busybox "$i/bin/$a"; done
mods="virtio_pci virtio_blk ext4"
[[ -n $agent ]] && mods="$mods virtio_console"
for m in $mods; do modprobe -d "$work/k" -S "$kver" --show-depends "$m"; done \
  | awk '$1 == "insmod" {print $2}' | awk '!seen[$0]++' > "$work/order"
while read -r ko; do cp "$ko" "$i/modules/"; basename "$ko" >> "$i/modules/order"; done < "$work/order"
cat > "$i/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do insmod /modules/$m 2>/dev/null; done
for n in $(seq 1 100); do [ -b /dev/vda2 ] && break; sleep 0.1; done
mount -t ext4 -o ro /dev/vda2 /mnt && cat /mnt/marker.txt
echo BLOCKVAULT-BOOT-DONE
poweroff -f
INIT
if [[ -n $agent ]]; then
  gpkg=qemu-guest-agent
  gdeb=$(ls "$cache/${gpkg}"_*.deb 2>/dev/null | head -1 || true)
  if [[ -z $gdeb ]]; then (cd "$cache" && apt-get download -qq "$gpkg" 2>/dev/null); gdeb=$(ls "$cache/${gpkg}"_*.deb | head -1); fi
  dpkg-deb -x "$gdeb" "$work/g"
  mkdir -p "$i/sbin" "$i/tmp"
  cp "$work/g/usr/sbin/qemu-ga" "$i/sbin/qemu-ga"
  # Its shared libraries, from this host (the same Debian release): the guest has no others.
  ldd "$work/g/usr/sbin/qemu-ga" | awk '/=> \//{print $3} /^[ \t]*\/lib64/{print $1}' | while read -r lib; do
    mkdir -p "$i$(dirname "$lib")"; cp -L "$lib" "$i$lib"
  done
  # guest-shutdown runs /sbin/shutdown; busybox has poweroff.
  printf '#!/bin/sh\npoweroff -f\n' > "$i/sbin/shutdown"; chmod +x "$i/sbin/shutdown"
  ln -s busybox "$i/bin/ls"
  cat > "$i/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do insmod /modules/$m 2>/dev/null; done
# Any virtio disk may be this one (a VM may list blank disks first): the first vdX2 that mounts.
for n in $(seq 1 1200); do ls /dev/vd?2 >/dev/null 2>&1 && break; sleep 0.1; done
for d in /dev/vd?2; do mount -t ext4 "$d" /mnt 2>/dev/null && cat /mnt/marker.txt && break; done
# The agent's port appears when virtio_console has probed it: slow under TCG on a
# busy host, so wait for it (up to ~2 min), and say READY only once qemu-ga runs.
port=
for n in $(seq 1 1200); do
  for p in /sys/class/virtio-ports/*; do [ "$(cat $p/name 2>/dev/null)" = org.qemu.guest_agent.0 ] && port=/dev/${p##*/}; done
  [ -n "$port" ] && [ -c "$port" ] && break; sleep 0.1
done
[ -c "$port" ] || echo "BLOCKVAULT-AGENT-FAILED: no virtio port org.qemu.guest_agent.0"
/sbin/qemu-ga -m virtio-serial -p "$port" -t /tmp -f /tmp/qga.pid &
ga=$!
sleep 1
if kill -0 $ga 2>/dev/null; then echo BLOCKVAULT-AGENT-READY; else echo "BLOCKVAULT-AGENT-FAILED: qemu-ga exited at start on $port"; fi
# Should qemu-ga ever exit, say so on the console (the tests print it) and start it again.
while :; do
  sleep 1
  if ! kill -0 $ga 2>/dev/null; then
    wait $ga; echo "BLOCKVAULT-AGENT-EXITED: qemu-ga exit $?; starting it again"
    /sbin/qemu-ga -m virtio-serial -p "$port" -t /tmp -f /tmp/qga.pid &
    ga=$!
  fi
done
INIT
fi
chmod +x "$i/init"
(cd "$i" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

# part1: FAT16 with SYSLINUX, kernel and initramfs
cat > "$work/syslinux.cfg" <<'CFG'
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 1
LABEL linux
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0 quiet panic=-1
CFG
# UEFI firmware (OVMF) finds no \EFI\BOOT loader here and falls back to its
# shell, which runs startup.nsh: the kernel's EFI stub with the same line.
printf 'fs0:\r\nvmlinuz.efi initrd=\\initrd.gz console=ttyS0 quiet panic=-1\r\n' > "$work/startup.nsh"
mkfs.vfat -C -n BOOT "$work/fat.img" 32768 >/dev/null
mcopy -i "$work/fat.img" "$work/k/boot/vmlinuz-$kver" ::/vmlinuz
mcopy -i "$work/fat.img" "$work/k/boot/vmlinuz-$kver" ::/vmlinuz.efi
mcopy -i "$work/fat.img" "$work/initrd.gz" "$work/syslinux.cfg" "$work/startup.nsh" ::/
syslinux --install "$work/fat.img"

# the disk: MBR + partitions
rm -f "$out"
truncate -s 96M "$out"
printf 'label: dos\n,32M,e,*\n,,83\n' | sfdisk -q "$out"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$out" bs=440 count=1 conv=notrunc status=none
dd if="$work/fat.img" of="$out" bs=512 seek=2048 conv=notrunc,sparse status=none
start2=$(sfdisk -J "$out" | awk -F'[:,]' '/"start"/{s=$2} END{print s+0}')
size2=$(sfdisk -J "$out" | awk -F'[:,]' '/"size"/{s=$2} END{print s+0}')
mkdir -p "$work/root"
printf '%s\n' "$marker" > "$work/root/marker.txt"
mkfs.ext4 -F -q -E offset=$((start2 * 512)) -d "$work/root" "$out" $((size2 / 2))k
