//! The VMM's side of the hand-over: connect to the agent's intake, send descriptors with
//! `SCM_RIGHTS`, read the handles. `ioeventd_handover_send` exports it for C callers and
//! `ioeventd-handover-client` uses it.

use super::wire::{self, Kind, Refusal};
use crate::sys::{self, Errno};
use std::fmt;
use std::os::fd::{AsRawFd, RawFd};

/// How long a send waits for the agent's reply.
pub const REPLY_TIMEOUT_MS: u32 = 5000;

/// Why a hand-over did not give handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientError {
    /// The agent refused the message (its reply's code).
    Refused(Refusal),
    /// Bad arguments (no descriptor, more than the bound, an invalid owner) (`EINVAL`).
    Invalid,
    /// The reply was not one of the wire format's (`EIO`).
    BadReply,
    /// A system call failed (connect, send, receive; `EAGAIN` past the timeout).
    Sys(Errno),
}

impl ClientError {
    /// The errno the C ABI reports: a refusal by what it means for the caller.
    pub fn errno(&self) -> Errno {
        match self {
            ClientError::Refused(Refusal::NotEventfd | Refusal::NotVfioDevice) => {
                Errno::EMEDIUMTYPE
            }
            ClientError::Refused(Refusal::Limit) => Errno::ENOSPC,
            ClientError::Refused(Refusal::Sender) => Errno::EPERM,
            ClientError::Refused(_) | ClientError::Invalid => Errno::EINVAL,
            ClientError::BadReply => Errno::EIO,
            ClientError::Sys(e) => *e,
        }
    }
}

impl From<ClientError> for Errno {
    fn from(e: ClientError) -> Errno {
        e.errno()
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Refused(r) => write!(f, "refused: {} ({})", r.code(), r.sentence()),
            ClientError::Invalid => f.write_str("invalid arguments"),
            ClientError::BadReply => f.write_str("the agent's reply is not understood"),
            ClientError::Sys(e) => write!(f, "system call failed: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Sends `payload` with `fds` on a connected intake socket and reads the reply text.
pub fn exchange(
    sock: RawFd,
    payload: &[u8],
    fds: &[RawFd],
    reply: &mut String,
) -> Result<(), ClientError> {
    sys::send_with_fds(sock, payload, fds).map_err(ClientError::Sys)?;
    let mut buf = vec![0u8; wire::MAX_PAYLOAD];
    let n = sys::recv_message(sock, &mut buf, REPLY_TIMEOUT_MS as i32).map_err(ClientError::Sys)?;
    if n == 0 {
        return Err(ClientError::BadReply);
    }
    *reply = String::from_utf8_lossy(&buf[..n]).into_owned();
    Ok(())
}

/// The handles of an `OK` reply, or the refusal of an `ERR` one.
pub fn parse_reply(reply: &str, expected: usize) -> Result<Vec<String>, ClientError> {
    let mut words = reply.split(' ');
    match words.next() {
        Some("OK") => {
            let handles: Vec<String> = words.map(str::to_string).collect();
            if handles.len() != expected || !handles.iter().all(|h| wire::handle_ok(h)) {
                return Err(ClientError::BadReply);
            }
            Ok(handles)
        }
        Some("ERR") => Err(words
            .next()
            .and_then(Refusal::from_code)
            .map_or(ClientError::BadReply, ClientError::Refused)),
        _ => Err(ClientError::BadReply),
    }
}

/// Hands `fds` (each with its kind) over for `owner` on a new connection to `path`;
/// `reply` gets the agent's reply text. One handle per descriptor, in order.
pub fn send(
    path: &str,
    owner: &str,
    fds: &[(RawFd, Kind)],
    reply: &mut String,
) -> Result<Vec<String>, ClientError> {
    if fds.is_empty() || fds.len() > sys::MAX_FDS || !wire::owner_ok(owner) {
        return Err(ClientError::Invalid);
    }
    let sock =
        sys::seqpacket_connect(path.as_bytes(), REPLY_TIMEOUT_MS).map_err(ClientError::Sys)?;
    let kinds: Vec<Kind> = fds.iter().map(|(_, k)| *k).collect();
    let raw: Vec<RawFd> = fds.iter().map(|(f, _)| *f).collect();
    exchange(
        sock.as_raw_fd(),
        wire::request(owner, &kinds).as_bytes(),
        &raw,
        reply,
    )?;
    parse_reply(reply, fds.len())
}
