#!/bin/busybox sh
# PID 1 of the VM tier's guest: mount, load the VFIO modules, run the driver, power off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do
  insmod "/modules/$m.ko" || echo "IOEVENTD-VM-INIT insmod $m failed"
done
echo "IOEVENTD-VM-BOOTED $(uname -r) $(cut -d' ' -f1 /proc/uptime)s"
/ioeventd-vm-driver
rc=$?
if [ "$rc" -ne 0 ] || ! [ -e /sys/kernel/iommu_groups/0 ]; then
  dmesg | grep -i -E "vfio|dmar|iommu|ivshmem" | tail -n 30 | sed 's/^/IOEVENTD-VM-DMESG /'
fi
echo "IOEVENTD-VM-END rc=$rc"
sync
poweroff -f
