#!/usr/bin/env bash
# Builds the VM tier's guest (test/vm/README.md), cached under .cache/vm/ (gitignored).
# Usage: build_guest.sh [stable|newer]
#   stable  Debian's linux-image-amd64 from this machine's own apt sources (bookworm: 6.1)
#   newer   linux-image-amd64 from trixie-backports (a kernel >= 6.14), through a private
#           apt configuration under .cache/vm/apt-newer/ (the system's sources are untouched)
# Cache:
#   kernel-<flavor>/   vmlinuz + the VFIO modules, unpacked with dpkg-deb -x (never
#                      installed); made once, kept until the directory is removed
#   target/            cargo's output for the static guest driver (incremental)
#   initramfs-<flavor>.cpio  busybox + modules + init + driver, rebuilt on every run (~1 s)
# Prints the paths as KEY=VALUE lines on stdout; progress goes to stderr.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${IOEVENTD_VM_CACHE:-$root/.cache/vm}"
flavor="${1:-stable}"
mkdir -p "$cache"
apt_opts=(-q -o APT::Sandbox::User=root)
case "$flavor" in
  stable) ;;
  newer)
    a="$cache/apt-newer"
    mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main" >"$a/sources.list"
    apt_opts+=(-o "Dir::Etc::SourceList=$a/sources.list" -o Dir::Etc::SourceParts=/nonexistent
      -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache")
    ;;
  *) echo "build_guest: unknown flavor $flavor (stable|newer)" >&2; exit 2 ;;
esac

for tool in qemu-system-x86_64 busybox cpio dpkg-deb apt-get cargo; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build_guest: missing $tool (run test/setup.sh)" >&2; exit 1; }
done

# Modules the guest loads, in order (each one's own dependencies are added before it);
# vfio_virqfd is a module of its own only on older kernels.
wanted=(irqbypass vfio vfio_iommu_type1 vfio_virqfd? vfio-pci-core vfio-pci)

kdir="$cache/kernel-$flavor"
if [ ! -s "$kdir/vmlinuz" ] || [ ! -s "$kdir/modules/order" ]; then
  echo "build_guest: fetching the kernel (linux-image-amd64, unpacked, not installed)" >&2
  tmp="$(mktemp -d "$cache/kernel-build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"
  (
    cd "$tmp"
    if [ "$flavor" = newer ]; then apt-get "${apt_opts[@]}" update >/dev/null; fi
    # A machine whose package lists were never fetched knows no kernel yet: fetch them once.
    apt-get download "${apt_opts[@]}" linux-image-amd64 >/dev/null 2>&1 ||
      { apt-get "${apt_opts[@]}" update >/dev/null && apt-get download "${apt_opts[@]}" linux-image-amd64 >/dev/null; }
    # The metapackage depends on the versioned image package, which on newer kernels is
    # itself split (linux-binary-*: vmlinuz, linux-modules-*: modules): follow the
    # versioned linux-{image,binary,modules}-<version> names, unpack them all.
    todo=(linux-image-amd64)
    seen_pkgs=" "
    while [ ${#todo[@]} -gt 0 ]; do
      pkg="${todo[0]}"
      todo=("${todo[@]:1}")
      deb="$(ls "$pkg"_*.deb 2>/dev/null | head -1 || true)"
      if [ -z "$deb" ]; then
        apt-get download "${apt_opts[@]}" "$pkg" >/dev/null
        deb="$(ls "$pkg"_*.deb | head -1)"
      fi
      dpkg-deb -x "$deb" unpacked
      for dep in $(dpkg-deb -f "$deb" Depends | tr ',|' '\n\n' |
        sed -n 's/^ *\(linux-\(image\|binary\|modules\)-[0-9][^ ]*\).*/\1/p'); do
        case "$seen_pkgs" in *" $dep "*) ;; *) seen_pkgs+="$dep "; todo+=("$dep") ;; esac
      done
    done
  )
  vmlinuz="$(ls "$tmp"/unpacked/boot/vmlinuz-* "$tmp"/unpacked/usr/lib/modules/*/vmlinuz 2>/dev/null | head -1 || true)"
  [ -n "$vmlinuz" ] || { echo "build_guest: no vmlinuz in the kernel packages" >&2; exit 1; }
  moddir="$(ls -d "$tmp"/unpacked/lib/modules/*/kernel "$tmp"/unpacked/usr/lib/modules/*/kernel 2>/dev/null | head -1 || true)"
  moddir="${moddir%/kernel}"
  release="${moddir##*/}"
  rm -rf "$kdir.new"
  mkdir -p "$kdir.new/modules"
  cp "$vmlinuz" "$kdir.new/vmlinuz"
  echo "$release" >"$kdir.new/release"
  declare -A seen=()
  order=()
  find_module() { # name with - or _ → path of its .ko / .ko.xz
    local n="${1//_/[-_]}"
    find "$moddir" -regextype posix-extended -regex ".*/${n}\.ko(\.xz|\.zst)?" | head -1
  }
  add_module() {
    local want="${1%\?}" name path deps dep
    name="${want//-/_}"
    [ -n "${seen[$name]:-}" ] && return 0
    seen[$name]=1
    path="$(find_module "$want")"
    if [ -z "$path" ]; then
      [ "$want" != "$1" ] && return 0 # optional
      # Built into the kernel: nothing to load.
      grep -q "/${want//[-_]/[-_]}\.ko" "$moddir/modules.builtin" 2>/dev/null && return 0
      echo "build_guest: module $want not in $release" >&2
      exit 1
    fi
    case "$path" in
      *.xz) xz -dc "$path" >"$kdir.new/modules/$name.ko" ;;
      *.zst) zstd -qdc "$path" >"$kdir.new/modules/$name.ko" ;;
      *) cp "$path" "$kdir.new/modules/$name.ko" ;;
    esac
    deps="$(tr '\0' '\n' <"$kdir.new/modules/$name.ko" | sed -n 's/^depends=//p' | head -1)"
    for dep in ${deps//,/ }; do add_module "$dep"; done
    order+=("$name")
  }
  for m in "${wanted[@]}"; do add_module "$m"; done
  printf '%s\n' "${order[@]}" >"$kdir.new/modules/order"
  rm -rf "$kdir"
  mv "$kdir.new" "$kdir"
  rm -rf "$tmp"
  trap - EXIT
fi

echo "build_guest: building the guest driver (static)" >&2
CARGO_TARGET_DIR="$cache/target" RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --quiet --release --target x86_64-unknown-linux-gnu \
  --manifest-path "$root/native/Cargo.toml" --bin ioeventd-vm-driver 2>&1 |
  grep -v -e "dropping unsupported crate type" -e "generated 1 warning" -e '^$' >&2 || true
driver="$cache/target/x86_64-unknown-linux-gnu/release/ioeventd-vm-driver"
[ -x "$driver" ] || { echo "build_guest: driver build failed" >&2; exit 1; }

busybox_bin="$(command -v busybox)"
if ! file -L "$busybox_bin" 2>/dev/null | grep -q "statically linked"; then
  [ -x /bin/busybox ] && busybox_bin=/bin/busybox
fi

stage="$cache/initramfs-root-$flavor"
rm -rf "$stage"
mkdir -p "$stage"/{bin,dev,proc,sys,modules}
cp "$busybox_bin" "$stage/bin/busybox"
cp "$kdir"/modules/* "$stage/modules/"
cp "$root/test/vm/init.sh" "$stage/init"
cp "$driver" "$stage/ioeventd-vm-driver"
chmod 755 "$stage/init" "$stage/ioeventd-vm-driver" "$stage/bin/busybox"
initrd="$cache/initramfs-$flavor.cpio"
(cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet >"$initrd.new")
mv "$initrd.new" "$initrd"

echo "KERNEL=$kdir/vmlinuz"
echo "INITRD=$initrd"
echo "RELEASE=$(cat "$kdir/release")"
