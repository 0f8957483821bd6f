//! The hand-over intake: a local `SOCK_SEQPACKET` socket where a process (a VMM, an
//! orchestrator's node helper) sends its eventfds, and optionally its VFIO device
//! descriptor, with `SCM_RIGHTS`, and gets back one handle per descriptor. The agent then
//! arms by handle (`IoeventfdSpec.source.handle`) instead of taking descriptors out of
//! another process with `pidfd_getfd`, so this path needs no `CAP_SYS_PTRACE` and no view
//! of the sender's pid namespace beyond its `SO_PEERCRED`.
//!
//! Each handle records the sender (pid, uid from `SO_PEERCRED` at connect time, and the
//! process start time read right after, with a pidfd held so a reused pid is not taken for
//! it), the owner the message named, the descriptor's kind and, for an eventfd, the
//! kernel's eventfd id. Bounds: [`wire::MAX_PAYLOAD`] bytes and [`sys::MAX_FDS`]
//! descriptors per message, `max_handles` unused handles in all and `max_per_uid` per
//! sender uid, [`MAX_CONNECTIONS`] connections. Every refused message has all of its
//! descriptors closed (they are owned from the moment `recvmsg` returns). Unused handles
//! expire after `ttl`; [`Server::take`] hands a duplicate out and [`Server::consume`]
//! closes the table's copy once the registration is committed.
//!
//! Every accepted descriptor is also queued as a [`Received`] record, which the agent reads
//! ([`Server::drain_received`]) to re-arm registrations waiting for their source after a
//! restart (a VMM re-sending its eventfds when it reconnects).

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

pub mod client;
pub mod process;
mod table;
pub mod wire;

pub use table::{Counters, HandleInfo, HandoverError, Limits, Received, Sender};
use table::{Entry, Table};

use crate::source;
use crate::sys::{self, Errno, PeerCred};
use std::collections::{HashMap, VecDeque};

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wire::{Kind, Refusal};

/// Most connections open at once; more are accepted and closed at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// Most [`Received`] records queued for the agent (the oldest go first past it).
pub const MAX_RECEIVED: usize = 65536;

/// An open intake: its socket, its table and the thread that serves it.
pub struct Server {
    table: Mutex<Table>,
    limits: Limits,
    stop: OwnedFd,
    thread: Mutex<Option<JoinHandle<()>>>,
    path: std::path::PathBuf,
    /// The listening socket's inode: `path` is removed at close only while it is still ours.
    ino: u64,
    /// The intake's counters.
    pub counters: Counters,
}

struct Conn {
    fd: OwnedFd,
    sender: Option<Sender>,
    /// Held so that the sender's pid cannot be reused unnoticed while it is connected.
    _pidfd: Option<OwnedFd>,
}

const LISTENER: u64 = 0;
const STOP: u64 = 1;

fn random_handle() -> Result<String, Errno> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Errno::from_io(&e))?;
    let mut s = String::with_capacity(34);
    s.push_str("h-");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    Ok(s)
}

impl Server {
    /// Listens at `path` (a socket there is replaced by a rename, so a successor agent's
    /// intake takes over without a refused connection; any other file is refused with
    /// `EEXIST`), with file mode `mode`, and serves it on a thread of its own.
    pub fn open(path: &str, mode: u32, limits: Limits) -> Result<Arc<Server>, Errno> {
        let (listener, ino) = crate::succession::bind_renamed(path, mode, 128)?;
        let stop = sys::eventfd(0, sys::EFD_CLOEXEC | sys::EFD_NONBLOCK)?;
        let server = Arc::new(Server {
            table: Mutex::new(Table {
                handles: HashMap::new(),
                per_uid: HashMap::new(),
                received: VecDeque::new(),
                batch: 0,
            }),
            limits,
            stop,
            thread: Mutex::new(None),
            path: path.into(),
            ino,
            counters: Counters::default(),
        });
        let s = server.clone();
        let thread = std::thread::Builder::new()
            .name("ioeventd-handover".into())
            .spawn(move || s.serve(listener))
            .map_err(|e| Errno::from_io(&e))?;
        *server.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
        Ok(server)
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops serving, removes the socket and closes every unused handle's descriptor.
    pub fn close(&self) {
        let _ = sys::write_u64(self.stop.as_raw_fd(), 1);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
        if let Some(path) = self.path.to_str() {
            crate::succession::unlink_if_own(path, self.ino);
        }
        let mut t = self.table();
        t.handles.clear();
        t.per_uid.clear();
        t.received.clear();
    }

    /// Unused handles now held.
    pub fn len(&self) -> usize {
        self.table().handles.len()
    }

    /// Whether no handle is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A duplicate (close-on-exec) of `handle`'s descriptor, if it was handed over for
    /// `owner` and is of `kind`; the handle stays until [`Server::consume`] or its expiry.
    pub fn take(
        &self,
        handle: &str,
        owner: &str,
        kind: Kind,
    ) -> Result<(OwnedFd, HandleInfo), HandoverError> {
        let mut t = self.table();
        self.expire(&mut t, Instant::now());
        let e = t.handles.get(handle).ok_or(HandoverError::UnknownHandle)?;
        if e.info.owner != owner {
            return Err(HandoverError::OtherOwner);
        }
        if e.info.kind != kind {
            return Err(HandoverError::WrongKind);
        }
        let fd = sys::dup(e.fd.as_raw_fd()).map_err(HandoverError::Sys)?;
        Ok((fd, e.info.clone()))
    }

    /// Closes the table's copy of `handle` (it was used, or is not wanted).
    pub fn consume(&self, handle: &str) -> Result<(), HandoverError> {
        self.table()
            .remove(handle)
            .map(drop)
            .ok_or(HandoverError::UnknownHandle)
    }

    /// Up to `max` records of descriptors received since the last call, oldest first.
    pub fn drain_received(&self, max: usize) -> Vec<Received> {
        let mut t = self.table();
        let n = max.min(t.received.len());
        t.received.drain(..n).collect()
    }

    /// Puts records back at the front (they did not fit the caller's buffer).
    pub fn requeue(&self, records: Vec<Received>) {
        let mut t = self.table();
        for r in records.into_iter().rev() {
            t.received.push_front(r);
        }
    }

    fn expire(&self, t: &mut Table, now: Instant) {
        let gone: Vec<String> = t
            .handles
            .iter()
            .filter(|(_, e)| e.expires <= now)
            .map(|(h, _)| h.clone())
            .collect();
        for h in gone {
            t.remove(&h);
            self.counters.expired.fetch_add(1, Ordering::Relaxed);
            self.counters.closed_fds.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn serve(self: Arc<Self>, listener: OwnedFd) {
        let Ok(ep) = sys::epoll_create() else { return };
        let epfd = ep.as_raw_fd();
        if sys::epoll_add(epfd, listener.as_raw_fd(), sys::EPOLLIN, LISTENER).is_err()
            || sys::epoll_add(epfd, self.stop.as_raw_fd(), sys::EPOLLIN, STOP).is_err()
        {
            return;
        }
        let mut conns: HashMap<u64, Conn> = HashMap::new();
        let mut next_token = 2u64;
        let mut events = [sys::EpollEvent::default(); 64];
        let mut last_expiry = Instant::now();
        loop {
            let n = match sys::epoll_wait(epfd, &mut events, 1000) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            };
            let now = Instant::now();
            if now.duration_since(last_expiry) >= Duration::from_millis(500) {
                let mut t = self.table();
                self.expire(&mut t, now);
                last_expiry = now;
            }
            for ev in &events[..n] {
                match ev.token() {
                    STOP => return,
                    LISTENER => {
                        while let Ok(c) = sys::accept(listener.as_raw_fd()) {
                            if conns.len() >= MAX_CONNECTIONS {
                                continue; // dropped: closed at once
                            }
                            let token = next_token;
                            next_token += 1;
                            if sys::epoll_add(epfd, c.as_raw_fd(), sys::EPOLLIN, token).is_ok() {
                                let (sender, pidfd) = identify(c.as_raw_fd());
                                conns.insert(
                                    token,
                                    Conn {
                                        fd: c,
                                        sender,
                                        _pidfd: pidfd,
                                    },
                                );
                            }
                        }
                    }
                    token => {
                        let keep = match conns.get(&token) {
                            Some(c) => self.serve_conn(c),
                            None => false,
                        };
                        if !keep {
                            if let Some(c) = conns.remove(&token) {
                                let _ = sys::epoll_del(epfd, c.fd.as_raw_fd());
                            }
                        }
                    }
                }
            }
        }
    }

    /// Reads every pending message of a connection; false when it is to be closed.
    fn serve_conn(&self, c: &Conn) -> bool {
        let mut buf = vec![0u8; wire::MAX_PAYLOAD + 1];
        loop {
            let r = match sys::recv_with_fds(c.fd.as_raw_fd(), &mut buf) {
                Ok(Some(r)) => r,
                Ok(None) => return false,
                Err(Errno::EAGAIN | Errno::EINTR) => return true,
                Err(_) => return false,
            };
            let nfds = r.fds.len();
            let reply = match self.accept_message(c.sender, &buf[..r.len.min(buf.len())], r) {
                Ok(handles) => {
                    self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    wire::ok_reply(&handles)
                }
                Err(refusal) => {
                    // The message's descriptors were dropped (closed) inside accept_message.
                    self.counters.refused.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .closed_fds
                        .fetch_add(nfds as u64, Ordering::Relaxed);
                    wire::err_reply(refusal)
                }
            };
            if sys::send_message(c.fd.as_raw_fd(), reply.as_bytes()).is_err() {
                return false;
            }
        }
    }

    /// Judges one message; on success its descriptors are in the table.
    fn accept_message(
        &self,
        sender: Option<Sender>,
        payload: &[u8],
        r: sys::Received,
    ) -> Result<Vec<String>, Refusal> {
        let fds = r.fds; // owned: every early return below closes them
        if r.flags & sys::MSG_CTRUNC != 0 || fds.len() > sys::MAX_FDS {
            return Err(Refusal::TooManyFds);
        }
        if r.flags & sys::MSG_TRUNC != 0 || r.len > wire::MAX_PAYLOAD {
            return Err(Refusal::TooLarge);
        }
        if r.foreign_control {
            return Err(Refusal::Control);
        }
        let sender = sender.ok_or(Refusal::Sender)?;
        let req = wire::parse(payload)?;
        if req.kinds.len() != fds.len() {
            return Err(Refusal::FdCount);
        }
        let mut ids = Vec::with_capacity(fds.len());
        for (fd, kind) in fds.iter().zip(&req.kinds) {
            let raw = fd.as_raw_fd();
            match kind {
                Kind::Eventfd => {
                    let Some(id) = source::eventfd_fdinfo(raw) else {
                        return Err(Refusal::NotEventfd);
                    };
                    let ino = sys::fstat(raw).map(|s| s.ino).unwrap_or(0);
                    ids.push(id.map(|id| id + 1).unwrap_or(ino));
                }
                Kind::Vfio => {
                    if crate::vfio::check_device(raw).is_err() {
                        return Err(Refusal::NotVfioDevice);
                    }
                    ids.push(0);
                }
            }
        }
        let mut t = self.table();
        self.expire(&mut t, Instant::now());
        let held_by_uid = t.per_uid.get(&sender.uid).copied().unwrap_or(0);
        if t.handles.len() + fds.len() > self.limits.max_handles
            || held_by_uid + fds.len() > self.limits.max_per_uid
        {
            return Err(Refusal::Limit);
        }
        t.batch += 1;
        let batch = t.batch;
        let expires = Instant::now() + self.limits.ttl;
        let mut handles = Vec::with_capacity(fds.len());
        for ((fd, kind), eventfd_id) in fds.into_iter().zip(req.kinds).zip(ids) {
            let handle = random_handle().map_err(|_| Refusal::Sender)?;
            let info = HandleInfo {
                handle: handle.clone(),
                owner: req.owner.clone(),
                kind,
                sender,
                eventfd_id,
                batch,
            };
            if t.received.len() >= MAX_RECEIVED {
                t.received.pop_front();
            }
            t.received.push_back(info.clone());
            t.handles
                .insert(handle.clone(), Entry { fd, info, expires });
            *t.per_uid.entry(sender.uid).or_insert(0) += 1;
            handles.push(handle);
        }
        Ok(handles)
    }
}

/// The sender of a new connection: `SO_PEERCRED`, then its start time with a pidfd held
/// around the read (a pid that exited before is refused as unknown). None: unknown (no pid
/// in this namespace, gone, or this very process).
fn identify(fd: RawFd) -> (Option<Sender>, Option<OwnedFd>) {
    let Ok(PeerCred { pid, uid, .. }) = sys::peer_cred(fd) else {
        return (None, None);
    };
    if pid <= 0 || pid == std::process::id() as i32 {
        return (None, None);
    }
    let Ok(pidfd) = sys::pidfd_open(pid) else {
        return (None, None);
    };
    let Ok(start) = source::process_start(pid) else {
        return (None, None);
    };
    if sys::poll_readable(pidfd.as_raw_fd(), 0).unwrap_or(true) {
        return (None, None); // exited: the start time may be another process's
    }
    (Some(Sender { pid, uid, start }), Some(pidfd))
}

/// Open intakes; handle = index + 1, never reused.
static SERVERS: Mutex<Vec<Option<Arc<Server>>>> = Mutex::new(Vec::new());

fn servers() -> MutexGuard<'static, Vec<Option<Arc<Server>>>> {
    SERVERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Adds an intake to the table; returns its handle.
pub(crate) fn insert(s: Arc<Server>) -> u64 {
    let mut t = servers();
    t.push(Some(s));
    t.len() as u64
}

/// The intake of `handle`.
pub(crate) fn get(handle: u64) -> Result<Arc<Server>, HandoverError> {
    usize::try_from(handle)
        .ok()
        .and_then(|h| h.checked_sub(1))
        .and_then(|i| servers().get(i).and_then(Clone::clone))
        .ok_or(HandoverError::Closed)
}

/// Takes the intake of `handle` out of the table.
pub(crate) fn remove(handle: u64) -> Option<Arc<Server>> {
    usize::try_from(handle)
        .ok()
        .and_then(|h| h.checked_sub(1))
        .and_then(|i| servers().get_mut(i).and_then(Option::take))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            ttl: Duration::from_secs(60),
            max_handles: 16,
            max_per_uid: 16,
        }
    }

    #[test]
    fn hands_over_in_one_process_is_refused_as_unknown_sender() {
        // The intake refuses its own process as a sender (the agent never takes its fds).
        let dir = std::env::temp_dir().join(format!("ioeventd-ho-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("h.sock");
        let s = Server::open(path.to_str().unwrap(), 0o600, limits()).unwrap();
        let e = sys::eventfd(0, sys::EFD_CLOEXEC).unwrap();
        let mut out = String::new();
        let r = client::send(
            path.to_str().unwrap(),
            "vm-a",
            &[(e.as_raw_fd(), Kind::Eventfd)],
            &mut out,
        );
        assert_eq!(r, Err(client::ClientError::Refused(Refusal::Sender)));
        assert!(s.is_empty());
        s.close();
        assert!(!path.exists());
        let _ = std::fs::remove_dir(&dir);
    }
}
