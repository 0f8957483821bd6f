//! The C ABI v2, called directly as the TypeScript binding would.

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
mod common;

use common::{eventually, TempBar};
use ioeventd_native::*;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::ptr;

const EBADF: i64 = -9;
const ENOENT: i64 = -2;
const EINVAL: i64 = -22;
const EFAULT: i64 = -14;
const ERANGE: i64 = -34;

fn cpath(bar: &TempBar) -> CString {
    CString::new(bar.path().as_os_str().as_bytes()).unwrap()
}

#[test]
fn version_and_bounds() {
    assert_eq!(ioeventd_abi_version(), 3);
    assert_eq!(ioeventd_histogram_bounds(ptr::null_mut(), 0), 19);
    assert_eq!(ioeventd_histogram_bounds(ptr::null_mut(), 3), EFAULT);
    let mut b = [0u64; 25];
    assert_eq!(ioeventd_histogram_bounds(b.as_mut_ptr(), 25), 19);
    assert_eq!(b[0], 100);
    assert_eq!(b[18], 100_000_000);
    assert_eq!(b[19], 0);
    let mut small = [0u64; 2];
    assert_eq!(ioeventd_histogram_bounds(small.as_mut_ptr(), 2), 19);
    assert_eq!(small, [100, 200]);
}

#[test]
fn bad_handles_are_ebadf() {
    let mut buf = [0u64; 64];
    for h in [0u64, 999_999, u64::MAX] {
        assert_eq!(ioeventd_engine_close(h), EBADF as i32);
        assert_eq!(ioeventd_unregister(h, 1, ptr::null_mut()), EBADF as i32);
        assert_eq!(ioeventd_stats_registrations(h, buf.as_mut_ptr(), 16), EBADF);
        assert_eq!(ioeventd_stats_workers(h, buf.as_mut_ptr(), 64), EBADF);
        assert_eq!(ioeventd_engine_info(h, buf.as_mut_ptr(), 7), EBADF);
        assert_eq!(ioeventd_events_wait(h, buf.as_mut_ptr(), 16, 0), EBADF);
        let p = CString::new("/nonexistent").unwrap();
        assert_eq!(
            ioeventd_register(h, p.as_ptr().cast(), 0, 4, 1, 0, 0, 0),
            EBADF
        );
    }
    assert_eq!(ioeventd_engine_open(1, 0, 3, 0, 0, ptr::null(), 0), EINVAL);
    assert_eq!(ioeventd_eventfd_signal(-1, 1), EBADF as i32);
    assert_eq!(ioeventd_source_close(-1), EBADF as i32);
}

#[test]
fn full_cycle_through_the_abi() {
    let h = ioeventd_engine_open(0, 1000, 0, 0, 0, ptr::null(), 0);
    assert!(h > 0, "{h}");
    let h = h as u64;
    let mut info = [0u64; 7];
    assert_eq!(ioeventd_engine_info(h, info.as_mut_ptr(), 7), 7);
    assert_eq!(info, [1, 0, 0, 0, 0, 1000, 1]);
    let mut two = [0u64; 2];
    assert_eq!(ioeventd_engine_info(h, two.as_mut_ptr(), 2), 2);

    let bar = TempBar::new("abi", 4096);
    let path = cpath(&bar);
    let efd = ioeventd_eventfd_create(0);
    assert!(efd >= 0);
    assert_eq!(
        ioeventd_register(h, ptr::null(), 0, 4, 1, efd, 0, 0),
        EFAULT
    );
    assert_eq!(
        ioeventd_register(h, path.as_ptr().cast(), 2, 4, 1, efd, 0, 0),
        EINVAL
    );
    assert_eq!(
        ioeventd_register(h, path.as_ptr().cast(), 4096, 4, 1, efd, 0, 0),
        ERANGE
    );
    assert_eq!(
        ioeventd_register(h, path.as_ptr().cast(), 0, 5, 1, efd, 0, 0),
        EINVAL
    );
    let id = ioeventd_register(h, path.as_ptr().cast(), 0x40, 4, 0xDEAD_BEEF, efd, 0, 0);
    assert!(id > 0, "{id}");
    assert_eq!(ioeventd_eventfd_signal(efd, 2), 0);
    assert!(bar.wait_for(0x40, &0xDEAD_BEEFu32.to_le_bytes()));

    // Registrations: count first, then records.
    assert!(eventually(|| {
        let mut recs = [0u64; 8];
        ioeventd_stats_registrations(h, recs.as_mut_ptr(), 2) == 1
            && recs[0] == id as u64
            && recs[1] == 1
            && recs[2] == 2
            && recs[3] > 0
            && recs[4..] == [0; 4]
    }));
    assert_eq!(ioeventd_stats_registrations(h, ptr::null_mut(), 0), 1);

    // Workers: nothing written when too small.
    let mut ws = vec![7u64; 45];
    assert_eq!(ioeventd_stats_workers(h, ws.as_mut_ptr(), 10), 45);
    assert!(ws.iter().all(|&v| v == 7));
    assert_eq!(ioeventd_stats_workers(h, ws.as_mut_ptr(), 45), 45);
    assert!(ws[0] >= 1);
    assert_eq!(ws[1], 1);

    let mut ev = [0u64; 8];
    assert_eq!(ioeventd_events_wait(h, ev.as_mut_ptr(), 2, 0), 0);

    // The final counters, read after the barrier: one write serving two signals.
    let mut last = [9u64; 3];
    assert_eq!(ioeventd_unregister(h, id as u64, last.as_mut_ptr()), 0);
    assert_eq!(last[..2], [1, 2]);
    assert!(last[2] > 0, "last trigger time");
    assert_eq!(
        ioeventd_unregister(h, id as u64, last.as_mut_ptr()),
        ENOENT as i32
    );
    assert_eq!(ioeventd_engine_info(h, info.as_mut_ptr(), 7), 7);
    assert_eq!(info[1..3], [0, 0]);

    // source_acquire from this very process, then close the copy.
    let mine = ioeventd_eventfd_create(0);
    let mut out = [0u64; 3];
    let me = std::process::id() as i32;
    let local = ioeventd_source_acquire(me, mine, 0, 0, out.as_mut_ptr());
    assert!(local >= 0, "{local}");
    assert!(out[0] > 0 && out[1] > 0);
    assert_eq!(
        ioeventd_source_acquire(me, mine, 0, out[1] + 1000, out.as_mut_ptr()),
        -116
    );
    assert_eq!(
        ioeventd_source_acquire(me, mine, 0, 0, ptr::null_mut()),
        EFAULT
    );
    assert_eq!(ioeventd_source_close(local as i32), 0);
    assert_eq!(ioeventd_source_close(mine), 0);

    assert_eq!(ioeventd_engine_close(h), 0);
    assert_eq!(ioeventd_engine_close(h), EBADF as i32);
    assert_eq!(ioeventd_events_wait(h, ev.as_mut_ptr(), 2, 0), EBADF);
    assert_eq!(ioeventd_engine_info(h, info.as_mut_ptr(), 7), EBADF);
}

#[test]
fn events_wait_returns_ebadf_when_closed_concurrently() {
    let h = ioeventd_engine_open(1, 0, 0, 0, 0, ptr::null(), 0) as u64;
    let waiter = std::thread::spawn(move || {
        let mut ev = [0u64; 4];
        ioeventd_events_wait(h, ev.as_mut_ptr(), 1, 10_000)
    });
    std::thread::sleep(std::time::Duration::from_millis(30));
    let t0 = std::time::Instant::now();
    assert_eq!(ioeventd_engine_close(h), 0);
    assert_eq!(waiter.join().unwrap(), EBADF);
    assert!(t0.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn vfio_additions_on_a_host_without_the_device() {
    const ENODEV: i64 = -19;
    const EMEDIUMTYPE: i32 = -124;
    const ENOTTY: i32 = -25;
    let h = ioeventd_engine_open(1, 0, 0, 0, 0, ptr::null(), 0);
    assert!(h > 0);
    let h = h as u64;
    let bar = TempBar::new("backend", 4096);
    let path = cpath(&bar);
    let efd = ioeventd_eventfd_create(0);
    let id = ioeventd_register(h, path.as_ptr().cast(), 8, 8, 7, efd, 0, 0);
    assert!(id > 0, "{id}");
    assert_eq!(ioeventd_registration_backend(h, id as u64), 1);
    assert_eq!(ioeventd_registration_backend(h, 999), ENOENT as i32);
    assert_eq!(ioeventd_registration_backend(999, 1), EBADF as i32);

    // Not a VFIO device: every VFIO entry point says so, and nothing is taken over.
    let other = ioeventd_eventfd_create(0);
    let file = std::fs::File::open(bar.path()).unwrap();
    let not_vfio = std::os::fd::AsRawFd::as_raw_fd(&file);
    for mode in [0u32, 2, 3] {
        assert_eq!(
            ioeventd_register_vfio(h, not_vfio, 2, 0, 4, 1, other, 0, 0, mode),
            ENODEV
        );
    }
    assert_eq!(
        ioeventd_register_vfio(h, not_vfio, 2, 0, 4, 1, other, 0, 0, 1),
        EINVAL
    );
    assert_eq!(
        ioeventd_register_vfio(h, not_vfio, 2, 2, 4, 1, other, 0, 0, 0),
        EINVAL
    );
    assert_eq!(ioeventd_eventfd_signal(other, 1), 0, "still the caller's");
    let mut out = [0u64; 3];
    assert_eq!(
        ioeventd_vfio_region_info(not_vfio, 0, out.as_mut_ptr()),
        EMEDIUMTYPE
    );
    assert_eq!(
        ioeventd_vfio_region_info(not_vfio, 0, ptr::null_mut()),
        EFAULT as i32
    );
    assert_eq!(ioeventd_kernel_ioeventfd(not_vfio, 0, 0, 4, 1, -1), ENOTTY);
    assert_eq!(
        ioeventd_vfio_acquire(std::process::id() as i32, not_vfio),
        EMEDIUMTYPE
    );
    assert_eq!(ioeventd_vfio_open(ptr::null()), EFAULT as i32);
    let missing = CString::new("ffff:ff:1f.7").unwrap();
    assert_eq!(ioeventd_vfio_open(missing.as_ptr().cast()), ENOENT as i32);
    assert!(ioeventd_vfio_probe() <= 3);

    assert_eq!(ioeventd_source_close(other), 0);
    assert_eq!(ioeventd_engine_close(h), 0);
}

#[test]
fn open_shard_pinning_and_the_full_info() {
    let cpus = [0u32];
    let h = ioeventd_engine_open(2, 0, 0, 0, 1, cpus.as_ptr(), 1);
    assert!(h > 0, "{h}");
    let h = h as u64;
    let mut info = [9u64; 16];
    assert_eq!(ioeventd_engine_info(h, info.as_mut_ptr(), 16), 11);
    assert_eq!(info[..11], [2, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0]);
    assert_eq!(info[11], 9, "nothing written past the fields");
    assert_eq!(ioeventd_engine_close(h), 0);
    // Unpinned, round-robin.
    let h = ioeventd_engine_open(1, 0, 2, 10, 0, ptr::null(), 0) as u64;
    assert_eq!(ioeventd_engine_info(h, info.as_mut_ptr(), 16), 11);
    assert_eq!(info[..11], [1, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0]);
    assert_eq!(ioeventd_engine_close(h), 0);
    assert_eq!(
        ioeventd_engine_open(1, 0, 0, 0, 2, ptr::null(), 0),
        EINVAL,
        "shard"
    );
    assert_eq!(
        ioeventd_engine_open(1, 0, 3, 0, 0, ptr::null(), 0),
        EINVAL,
        "poll"
    );
    assert_eq!(ioeventd_engine_open(1, 0, 0, 0, 0, ptr::null(), 1), EFAULT);
    let huge = [4096u32];
    assert_eq!(
        ioeventd_engine_open(1, 0, 0, 0, 0, huge.as_ptr(), 1),
        EINVAL
    );
    assert_eq!(
        ioeventd_engine_open(1, 0, 0, 0, 0, huge.as_ptr(), 4096),
        EINVAL
    );
}

/// One `ioeventd_register_batch` record (13 u64, README.md).
fn file_record(path_at: u64, offset: u64, width: u64, data: u64, efd: i32) -> [u64; 13] {
    let mut r = [0u64; 13];
    r[0] = 1;
    r[1] = path_at;
    r[3] = offset;
    r[4] = width;
    r[5] = data;
    r[6] = efd as i64 as u64;
    r
}

#[test]
fn register_and_unregister_batch_through_the_abi() {
    const EEXIST: u64 = -17i64 as u64;
    const EMEDIUMTYPE: u64 = -124i64 as u64;
    let h = ioeventd_engine_open(2, 0, 0, 0, 0, ptr::null(), 0) as u64;
    let bar = TempBar::new("abi-batch", 4096);
    let other = TempBar::new("abi-batch2", 4096);
    // Two NUL-terminated paths in one buffer.
    let mut strings = bar.path().as_os_str().as_bytes().to_vec();
    strings.push(0);
    let second = strings.len() as u64;
    strings.extend_from_slice(other.path().as_os_str().as_bytes());
    strings.push(0);
    let a = ioeventd_eventfd_create(0);
    let a_dup = {
        let mut out = [0u64; 3];
        ioeventd_source_acquire(std::process::id() as i32, a, 0, 0, out.as_mut_ptr()) as i32
    };
    let b = ioeventd_eventfd_create(0);
    let spare = ioeventd_eventfd_create(0);
    let (pr, _pw) = ioeventd_native::sys::pipe().unwrap();
    use std::os::fd::AsRawFd;
    let mut recs: Vec<u64> = [
        file_record(0, 0x10, 4, 0xAAAA_0001, a),
        file_record(second, 0x20, 8, 0xBBBB_0002, b),
        file_record(0, 0x30, 4, 0xAAAA_0003, a_dup), // a's eventfd again: joins it
        file_record(0, 0x40, 4, 1, a),               // the same local fd twice
        file_record(0, 0x50, 3, 1, b),               // width
        file_record(strings.len() as u64, 0x60, 4, 1, b), // path outside the buffer
        file_record(0, 0x70, 4, 1, pr.as_raw_fd()),  // not an eventfd
        {
            let mut r = file_record(0, 0, 4, 1, b);
            r[0] = 7; // unknown kind
            r
        },
        {
            let mut r = file_record(0, 0x80, 4, 1, b);
            r[6] = 1 << 40; // not an i32: never truncated into a valid fd
            r
        },
        {
            // A VFIO record whose "device" is not a VFIO device.
            let mut r = file_record(0, 0x90, 4, 1, spare);
            r[0] = 2;
            r[1] = pr.as_raw_fd() as u64;
            r
        },
    ]
    .concat();
    let n = (recs.len() / 13) as u64;
    let ok = ioeventd_register_batch(
        h,
        recs.as_mut_ptr(),
        n,
        strings.as_ptr(),
        strings.len() as u64,
    );
    assert_eq!(ok, 3);
    let rec = |i: usize| &recs[i * 13..(i + 1) * 13];
    let ids: Vec<u64> = (0..3).map(|i| rec(i)[10]).collect();
    assert!(ids.iter().all(|&id| id > 0 && id < 1 << 62), "{ids:?}");
    for i in 0..3 {
        assert_eq!(rec(i)[11], 1, "backend user-mmap");
        assert!(rec(i)[12] < 2, "worker index");
        assert_eq!(
            ioeventd_registration_worker(h, rec(i)[10]) as u64,
            rec(i)[12]
        );
    }
    assert_eq!(rec(0)[12], rec(2)[12], "one eventfd, one worker");
    assert_eq!(rec(3)[10], EEXIST);
    assert_eq!(rec(4)[10], EINVAL as u64);
    assert_eq!(rec(5)[10], EFAULT as u64);
    assert_eq!(rec(6)[10], EMEDIUMTYPE);
    assert_eq!(rec(7)[10], EINVAL as u64);
    assert_eq!(rec(8)[10], EINVAL as u64);
    assert_eq!(rec(9)[10], -19i64 as u64, "ENODEV");
    for i in 3..10 {
        assert_eq!((rec(i)[11], rec(i)[12]), (0, u64::MAX));
    }
    assert_eq!(ioeventd_registration_worker(h, 999), ENOENT as i32);
    assert_eq!(ioeventd_eventfd_signal(a, 1), 0);
    assert_eq!(ioeventd_eventfd_signal(b, 1), 0);
    assert!(bar.wait_for(0x10, &0xAAAA_0001u32.to_le_bytes()));
    assert!(bar.wait_for(0x30, &0xAAAA_0003u32.to_le_bytes()));
    assert!(other.wait_for(0x20, &0xBBBB_0002u64.to_le_bytes()));
    let mut info = [0u64; 11];
    ioeventd_engine_info(h, info.as_mut_ptr(), 11);
    assert_eq!((info[1], info[2], info[9]), (3, 2, 2));

    use ioeventd_native::abi_layout::unregister as u;
    let mut un = vec![7u64; 4 * u::LEN];
    for (i, id) in [ids[0], 12345, ids[1], ids[2]].into_iter().enumerate() {
        un[i * u::LEN + u::ID] = id;
    }
    assert_eq!(ioeventd_unregister_batch(h, un.as_mut_ptr(), 4), 3);
    let out = |i: usize| &un[i * u::LEN..(i + 1) * u::LEN];
    assert_eq!(
        [0, 1, 2, 3].map(|i| out(i)[u::RESULT]),
        [0, ENOENT as u64, 0, 0]
    );
    // Final counters per id: a's eventfd and b were signalled once each (one write each).
    for i in [0, 2, 3] {
        assert_eq!(out(i)[u::TRIGGERS..u::LAST_TRIGGER_UNIX_NS], [1, 1], "{i}");
        assert!(out(i)[u::LAST_TRIGGER_UNIX_NS] > 0);
    }
    assert_eq!(
        out(1)[u::TRIGGERS..],
        [0, 0, 0],
        "nothing for an unknown id"
    );
    ioeventd_engine_info(h, info.as_mut_ptr(), 11);
    assert_eq!((info[1], info[2], info[9]), (0, 0, 0));
    // Empty batches and bad pointers.
    assert_eq!(
        ioeventd_register_batch(h, ptr::null_mut(), 0, ptr::null(), 0),
        0
    );
    assert_eq!(
        ioeventd_register_batch(h, ptr::null_mut(), 1, ptr::null(), 0),
        EFAULT
    );
    assert_eq!(ioeventd_unregister_batch(h, ptr::null_mut(), 1), EFAULT);
    assert_eq!(
        ioeventd_register_batch(h, ptr::null_mut(), 1 << 20, ptr::null(), 0),
        EINVAL
    );
    assert_eq!(ioeventd_engine_close(h), 0);
    assert_eq!(
        ioeventd_register_batch(h, ptr::null_mut(), 0, ptr::null(), 0),
        EBADF
    );
    assert_eq!(ioeventd_unregister_batch(h, ptr::null_mut(), 0), EBADF);
    assert_eq!(ioeventd_registration_worker(h, 1), EBADF as i32);
    // `a`, `a_dup` and `b` were taken over and closed by the engine; `spare` never was.
    assert_eq!(ioeventd_source_close(spare), 0);
}

#[test]
fn abi_layout_table_is_complete_and_sized() {
    let need = ioeventd_abi_layout(ptr::null_mut(), 0);
    assert!(need > 0);
    assert_eq!(ioeventd_abi_layout(ptr::null_mut(), need as u64), EFAULT);
    let mut small = [0u8; 4];
    assert_eq!(ioeventd_abi_layout(small.as_mut_ptr(), 4), need);
    assert_eq!(small, [0; 4], "nothing written when it does not fit");
    let mut buf = vec![0u8; need as usize];
    assert_eq!(ioeventd_abi_layout(buf.as_mut_ptr(), need as u64), need);
    let text = String::from_utf8(buf).unwrap();
    for line in [
        "register.result=10",
        "register.len=13",
        "unregister.len=5",
        "counters.len=3",
        "stats.len=4",
        "info.len=11",
        "event.len=4",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}

#[test]
fn process_start_time_of_self_and_of_nobody() {
    let own = ioeventd_process_start_time(std::process::id() as i32);
    assert!(own > 0, "own start time {own}");
    assert_eq!(
        ioeventd_process_start_time(i32::MAX),
        -3,
        "ESRCH for a pid that cannot exist"
    );
}
