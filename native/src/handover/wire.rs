//! The hand-over wire format (native/README.md, "Hand-over intake"): one `SOCK_SEQPACKET`
//! message per request, its descriptors as one `SCM_RIGHTS` control message.
//!
//! Request payload (ASCII, at most [`MAX_PAYLOAD`] bytes, an optional trailing `\n`):
//! `HANDOVER/1 <owner> <kinds>` — `owner` 1..128 printable ASCII characters without
//! spaces (the API's owner rule), `kinds` one letter per descriptor in order: `e` an eventfd,
//! `v` a VFIO device descriptor. Reply: `OK <handle>...` (one `h-` + 32 hex digits per
//! descriptor, in order) or `ERR <CODE> <sentence>`.

/// Largest request payload; a longer one is refused (`TOO_LARGE`).
pub const MAX_PAYLOAD: usize = 4096;
/// Longest owner (the API's rule).
pub const MAX_OWNER: usize = 128;
/// The request's first word.
pub const MAGIC: &str = "HANDOVER/1";

/// What one descriptor of a request is said to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An eventfd (a source).
    Eventfd,
    /// A VFIO device descriptor.
    Vfio,
}

impl Kind {
    /// The ABI's number: 1 eventfd, 2 VFIO device.
    pub fn code(self) -> u64 {
        match self {
            Kind::Eventfd => 1,
            Kind::Vfio => 2,
        }
    }
}

/// A well-formed request.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// The owner the descriptors are handed over for.
    pub owner: String,
    /// One kind per descriptor.
    pub kinds: Vec<Kind>,
}

/// Why a request is refused; the reply's `CODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not `HANDOVER/1 <owner> <kinds>`, or not ASCII.
    Malformed,
    /// The owner is empty, too long or has a character outside printable ASCII.
    Owner,
    /// The payload was longer than [`MAX_PAYLOAD`] (`MSG_TRUNC`).
    TooLarge,
    /// More descriptors than the bound, or the control data was truncated (`MSG_CTRUNC`).
    TooManyFds,
    /// No descriptor, or not as many as `kinds` names.
    FdCount,
    /// A control message other than `SCM_RIGHTS`.
    Control,
    /// A descriptor named `e` is not an eventfd.
    NotEventfd,
    /// A descriptor named `v` is not a vfio-pci device.
    NotVfioDevice,
    /// The agent holds as many handles as it may (in total, or for this sender's uid).
    Limit,
    /// The sender cannot be identified (no pid in the agent's namespace, gone, the agent).
    Sender,
}

impl Refusal {
    /// The reply's code word.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Malformed => "MALFORMED",
            Refusal::Owner => "OWNER_INVALID",
            Refusal::TooLarge => "TOO_LARGE",
            Refusal::TooManyFds => "TOO_MANY_FDS",
            Refusal::FdCount => "FD_COUNT",
            Refusal::Control => "CONTROL_MESSAGE",
            Refusal::NotEventfd => "NOT_EVENTFD",
            Refusal::NotVfioDevice => "NOT_VFIO_DEVICE",
            Refusal::Limit => "LIMIT_REACHED",
            Refusal::Sender => "SENDER_UNKNOWN",
        }
    }

    /// The sentence of the reply.
    pub fn sentence(self) -> &'static str {
        match self {
            Refusal::Malformed => "expected HANDOVER/1 <owner> <kinds>",
            Refusal::Owner => "owner must be 1..128 printable ASCII characters",
            Refusal::TooLarge => "the request is longer than 4096 bytes",
            Refusal::TooManyFds => "at most 8 descriptors per message",
            Refusal::FdCount => "one kind letter per descriptor, at least one",
            Refusal::Control => "only SCM_RIGHTS control messages are accepted",
            Refusal::NotEventfd => "a descriptor marked e is not an eventfd",
            Refusal::NotVfioDevice => "a descriptor marked v is not a vfio-pci device",
            Refusal::Limit => "the agent holds the maximum number of unused handles",
            Refusal::Sender => "the sending process cannot be identified",
        }
    }

    /// From a reply's code word (the client).
    pub fn from_code(code: &str) -> Option<Refusal> {
        [
            Refusal::Malformed,
            Refusal::Owner,
            Refusal::TooLarge,
            Refusal::TooManyFds,
            Refusal::FdCount,
            Refusal::Control,
            Refusal::NotEventfd,
            Refusal::NotVfioDevice,
            Refusal::Limit,
            Refusal::Sender,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }
}

/// Whether `owner` passes the API's owner rule (1..128 printable ASCII, no space).
pub fn owner_ok(owner: &str) -> bool {
    !owner.is_empty()
        && owner.len() <= MAX_OWNER
        && owner.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Parses a request payload.
pub fn parse(payload: &[u8]) -> Result<Request, Refusal> {
    let text = std::str::from_utf8(payload).map_err(|_| Refusal::Malformed)?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let mut words = text.split(' ');
    if words.next() != Some(MAGIC) {
        return Err(Refusal::Malformed);
    }
    let owner = words.next().ok_or(Refusal::Malformed)?;
    if !owner_ok(owner) {
        return Err(Refusal::Owner);
    }
    let kinds = words.next().ok_or(Refusal::Malformed)?;
    if words.next().is_some() {
        return Err(Refusal::Malformed);
    }
    let kinds = kinds
        .bytes()
        .map(|b| match b {
            b'e' => Ok(Kind::Eventfd),
            b'v' => Ok(Kind::Vfio),
            _ => Err(Refusal::Malformed),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if kinds.is_empty() {
        return Err(Refusal::FdCount);
    }
    Ok(Request {
        owner: owner.to_string(),
        kinds,
    })
}

/// The request payload for `owner` and `kinds`.
pub fn request(owner: &str, kinds: &[Kind]) -> String {
    let k: String = kinds
        .iter()
        .map(|k| if *k == Kind::Eventfd { 'e' } else { 'v' })
        .collect();
    format!("{MAGIC} {owner} {k}")
}

/// The reply to an accepted request.
pub fn ok_reply(handles: &[String]) -> String {
    let mut s = String::from("OK");
    for h in handles {
        s.push(' ');
        s.push_str(h);
    }
    s
}

/// The reply to a refused request.
pub fn err_reply(r: Refusal) -> String {
    format!("ERR {} {}", r.code(), r.sentence())
}

/// Whether `h` has the form of a handle (`h-` + 32 lower-case hex digits).
pub fn handle_ok(h: &str) -> bool {
    h.len() == 34
        && h.starts_with("h-")
        && h[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let r = parse(b"HANDOVER/1 vm-a eev\n").unwrap();
        assert_eq!(r.owner, "vm-a");
        assert_eq!(r.kinds, vec![Kind::Eventfd, Kind::Eventfd, Kind::Vfio]);
        assert_eq!(parse(request("vm-a", &r.kinds).as_bytes()).unwrap(), r);
        assert_eq!(parse(b"HANDOVER/2 vm-a e"), Err(Refusal::Malformed));
        assert_eq!(parse(b"HANDOVER/1 vm-a"), Err(Refusal::Malformed));
        assert_eq!(parse(b"HANDOVER/1 vm-a ex"), Err(Refusal::Malformed));
        assert_eq!(parse(b"HANDOVER/1 vm-a e e"), Err(Refusal::Malformed));
        assert_eq!(parse(b"HANDOVER/1 vm-a "), Err(Refusal::FdCount));
        assert_eq!(parse(b"HANDOVER/1  e"), Err(Refusal::Owner));
        assert_eq!(parse(&[0xff, 0xfe]), Err(Refusal::Malformed));
        let long = format!("HANDOVER/1 {} e", "o".repeat(129));
        assert_eq!(parse(long.as_bytes()), Err(Refusal::Owner));
        for r in [Refusal::Malformed, Refusal::Limit, Refusal::Sender] {
            assert_eq!(Refusal::from_code(r.code()), Some(r));
        }
        assert!(handle_ok("h-0123456789abcdef0123456789abcdef"));
        assert!(!handle_ok("h-0123456789ABCDEF0123456789abcdef"));
        assert!(!handle_ok("h-1"));
    }
}
