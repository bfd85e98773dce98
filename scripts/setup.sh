#!/usr/bin/env bash
# Sets up a fresh machine for blockvault, idempotently, then builds it:
#   system packages (Debian, via apt-get as root) -> npm install -> native addon -> TypeScript.
# Usage: scripts/setup.sh [--tests | --bench]
#   (none)    what blockvault itself uses (the demo needs no more)
#   --tests   also the boot test's VM fixture: SYSLINUX, busybox, and Debian's kernel package (~68 MB),
#             libvirt (libvirt-daemon-system, libvirt-clients) for the --libvirt backup test,
#             and OVMF (ovmf) for the UEFI boot test
#   --bench   the tests' needs plus the peers the benchmarks compare against (restic, borg)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
case $mode in ''|--tests|--bench) ;; *) echo "setup: unknown option $mode (use --tests or --bench)" >&2; exit 1 ;; esac

packages=(e2fsprogs fdisk dosfstools mtools qemu-utils libnbd-bin fuse libfuse2 qemu-system-x86)
fixture=false
if [[ $mode == --tests || $mode == --bench ]]; then packages+=(syslinux syslinux-common busybox-static kmod cpio xz-utils libvirt-daemon-system libvirt-clients ovmf); fixture=true; fi
if [[ $mode == --bench ]]; then packages+=(restic borgbackup time); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: these Debian packages are needed: ${missing[*]}" >&2
    echo "setup: run as root, or install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The boot test's VM fixture boots Debian's kernel: fetch its package once
# (unpacked into the fixture, never installed on this machine).
fixture_cache=${BLOCKVAULT_FIXTURE_CACHE:-/var/cache/blockvault}
if $fixture && [[ $(id -u) -eq 0 ]] && ! ls "$fixture_cache"/linux-image-*.deb >/dev/null 2>&1; then
  mkdir -p "$fixture_cache"
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  if [[ -z $kpkg ]]; then apt-get update -qq >/dev/null; kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); fi
  echo "setup: fetching $kpkg for the boot test fixture" >&2
  (cd "$fixture_cache" && apt-get download -qq "$kpkg" 2>/dev/null) || echo "setup: could not fetch $kpkg; the boot test will try again" >&2
fi
# The agent fixture's qemu-ga (the running-VM tests with --guest-agent / --quiesce), fetched the same way.
if $fixture && [[ $(id -u) -eq 0 ]] && ! ls "$fixture_cache"/qemu-guest-agent_*.deb >/dev/null 2>&1; then
  mkdir -p "$fixture_cache"
  echo "setup: fetching qemu-guest-agent for the agent test fixture" >&2
  (cd "$fixture_cache" && apt-get download -qq qemu-guest-agent 2>/dev/null) || echo "setup: could not fetch qemu-guest-agent; the agent tests will try again" >&2
fi

# npm dependencies at the lock file's versions; only when the lock changed since the last install.
# (Not `npm ci`: the registry we can reach lacks some other platforms' optional
# packages, which npm ci's strict lock check then reports as missing.)
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: npm install (locked versions)" >&2
  npm install --no-save --no-audit --no-fund --loglevel=error
fi

# Native addon (std-only Rust; no crates are downloaded). Optional at run time.
native=native/blockvault-native.linux-x64-gnu.node
if [[ ! -f $native || -n $(find native/src native/Cargo.toml -newer "$native" 2>/dev/null) ]]; then
  if command -v cargo >/dev/null; then
    echo "setup: building native addon" >&2
    (cd native && ../node_modules/.bin/napi build --platform --release >build.log 2>&1) \
      || echo "setup: native addon failed to build (see native/build.log); blockvault will read sparse images in full" >&2
  else
    echo "setup: no Rust toolchain (cargo); blockvault will read sparse images in full" >&2
  fi
fi

echo "setup: building TypeScript" >&2
npm run --silent build
if ! command -v blockvault >/dev/null; then
  echo "setup: done. Run blockvault as: npx blockvault ... (from this directory), or put it on your PATH with: npm link" >&2
fi
