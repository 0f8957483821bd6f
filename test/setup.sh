#!/usr/bin/env bash
# Installs the Debian packages the tests use, once (they are real tools, not mocks):
# pciutils (lspci, to check the sysfs inventory against), prometheus (metrics end to end),
# protobuf-compiler (protoc checks the API contract and feeds the independent client),
# systemd (systemd-analyze verifies deploy/systemd/ioeventd.service), qemu-system-x86,
# busybox-static and cpio (the VM tier, test/vm/), openssl (test/security/ makes its test
# CAs and certificates at run time).
set -euo pipefail
need=()
command -v lspci >/dev/null 2>&1 || need+=(pciutils)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# The VM tier (test/vm/): QEMU, a static busybox and cpio for the guest's initramfs.
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v cpio >/dev/null 2>&1 || need+=(cpio)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test/setup.sh: need root to install: ${need[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
