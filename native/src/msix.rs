//! The MSI-X table and pending-bit array (PBA) of a PCI device, read by the engine itself
//! from the device's config space, so that no registration can write into them whatever
//! the agent's own view of the device (`service/devices/msix.ts`) says.
//!
//! The config space is the device's sysfs `config` file beside its `resourceN` (or a VFIO
//! device's config region: `vfio::read_config`). The standard capability list is
//! walked from `0x34` (`0x14` for a CardBus bridge) as the agent does: never into the
//! header, never past the bytes read, no loops, at most [`MAX_CAPABILITIES`] entries. The
//! first capability with id `0x11` is MSI-X: Message Control (table size − 1 in bits
//! 0..10), Table and PBA registers (BAR indicator in bits 0..2, offset in the rest). The
//! table is 16 bytes per entry, the PBA one bit per entry in whole 64-bit words.
//!
//! The engine applies it at registration (`engine/msix_guard.rs`, which says why there).

use crate::sys::Errno;
use std::fmt;
use std::path::Path;

/// The MSI-X capability id.
pub const MSIX_CAPABILITY_ID: u8 = 0x11;
/// Bytes of the standard header (capabilities never start inside it).
pub const CONFIG_HEADER_SIZE: usize = 0x40;
/// Standard config space: capability pointers are bytes, so the list stays in it.
pub const CONFIG_STANDARD_SIZE: usize = 0x100;
/// Upper bound on a real capability list (as the agent's parser).
pub const MAX_CAPABILITIES: usize = 48;

const PCI_STATUS: usize = 0x06;
const PCI_STATUS_CAP_LIST: u16 = 0x10;
const PCI_HEADER_TYPE: usize = 0x0e;
const PCI_CAPABILITY_LIST: usize = 0x34;
const PCI_CB_CAPABILITY_LIST: usize = 0x14;
const MSIX_CAPABILITY_SIZE: usize = 12;
const TABLE_SIZE_MASK: u16 = 0x7ff;
const BIR_MASK: u32 = 0x7;
const LAST_BAR: u8 = 5;
const ENTRY_SIZE: u64 = 16;

/// Why a config space cannot say where the MSI-X structures are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// The config space cannot be read (its errno).
    Read(Errno),
    /// Fewer bytes than the header, or a capability beyond the bytes read (`EIO`).
    Truncated,
    /// A pointer into the header, a loop, too many capabilities, or a BAR indicator that is
    /// not a BAR (`EIO`).
    Malformed,
}

impl ConfigError {
    /// The errno the C ABI reports.
    pub fn errno(&self) -> Errno {
        match self {
            ConfigError::Read(e) => *e,
            ConfigError::Truncated | ConfigError::Malformed => Errno::EIO,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read(e) => write!(f, "cannot read the config space: {e}"),
            ConfigError::Truncated => f.write_str("the config space is truncated"),
            ConfigError::Malformed => {
                f.write_str("the config space's capability list is malformed")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Which MSI-X structure a write would overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsixStructure {
    /// The vector table.
    Table,
    /// The pending-bit array.
    Pba,
}

/// One MSI-X structure: `len` bytes at `offset` of BAR `bar`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsixRange {
    /// The BAR indicator (0..=5).
    pub bar: u8,
    /// Byte offset in the BAR.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl MsixRange {
    /// Whether `[offset, offset + width)` of BAR `bar` shares a byte with this range.
    pub fn overlaps(&self, bar: u8, offset: u64, width: u64) -> bool {
        let end = offset.saturating_add(width);
        bar == self.bar && offset < self.offset.saturating_add(self.len) && self.offset < end
    }
}

/// A write that would land in an MSI-X structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsixOverlap {
    /// The table or the PBA.
    pub structure: MsixStructure,
    /// Where that structure is.
    pub range: MsixRange,
}

impl fmt::Display for MsixOverlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.structure {
            MsixStructure::Table => "vector table",
            MsixStructure::Pba => "pending-bit array",
        };
        let r = self.range;
        write!(
            f,
            "the write overlaps the MSI-X {what} (BAR {} {:#x}..{:#x})",
            r.bar,
            r.offset,
            r.offset.saturating_add(r.len)
        )
    }
}

/// Where a device keeps its MSI-X vector table and PBA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsixLayout {
    /// Entries in the table (1..=2048).
    pub entries: u16,
    /// The vector table.
    pub table: MsixRange,
    /// The pending-bit array.
    pub pba: MsixRange,
}

impl MsixLayout {
    /// The structure `[offset, offset + width)` of BAR `bar` would overlap (the table
    /// first), or `Ok` when it overlaps neither.
    pub fn check(&self, bar: u8, offset: u64, width: u64) -> Result<(), MsixOverlap> {
        for (structure, range) in [
            (MsixStructure::Table, self.table),
            (MsixStructure::Pba, self.pba),
        ] {
            if range.overlaps(bar, offset, width) {
                return Err(MsixOverlap { structure, range });
            }
        }
        Ok(())
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The offsets of the standard capabilities, in list order.
pub fn capabilities(config: &[u8]) -> Result<Vec<(u8, usize)>, ConfigError> {
    if config.len() < CONFIG_HEADER_SIZE {
        return Err(ConfigError::Truncated);
    }
    let mut out = Vec::new();
    if u16_at(config, PCI_STATUS) & PCI_STATUS_CAP_LIST == 0 {
        return Ok(out);
    }
    let pointer_at = if config[PCI_HEADER_TYPE] & 0x7f == 2 {
        PCI_CB_CAPABILITY_LIST
    } else {
        PCI_CAPABILITY_LIST
    };
    let mut pointer = usize::from(config[pointer_at] & !3);
    while pointer != 0 {
        if pointer < CONFIG_HEADER_SIZE {
            return Err(ConfigError::Malformed);
        }
        if pointer + 2 > config.len() {
            return Err(ConfigError::Truncated);
        }
        if out.iter().any(|&(_, at)| at == pointer) || out.len() >= MAX_CAPABILITIES {
            return Err(ConfigError::Malformed);
        }
        out.push((config[pointer], pointer));
        pointer = usize::from(config[pointer + 1] & !3);
    }
    Ok(out)
}

/// The MSI-X layout of a config space image; `None` when the device has no MSI-X.
pub fn parse(config: &[u8]) -> Result<Option<MsixLayout>, ConfigError> {
    let Some(&(_, at)) = capabilities(config)?
        .iter()
        .find(|(id, _)| *id == MSIX_CAPABILITY_ID)
    else {
        return Ok(None);
    };
    if at + MSIX_CAPABILITY_SIZE > config.len() {
        return Err(ConfigError::Truncated);
    }
    let entries = (u16_at(config, at + 2) & TABLE_SIZE_MASK) + 1;
    let range = |register: u32, len: u64| -> Result<MsixRange, ConfigError> {
        // The mask keeps 3 bits: the value fits in a u8.
        let bar = u8::try_from(register & BIR_MASK).map_err(|_| ConfigError::Malformed)?;
        if bar > LAST_BAR {
            return Err(ConfigError::Malformed);
        }
        let offset = u64::from(register & !BIR_MASK);
        Ok(MsixRange { bar, offset, len })
    };
    let n = u64::from(entries);
    Ok(Some(MsixLayout {
        entries,
        table: range(u32_at(config, at + 4), n * ENTRY_SIZE)?,
        pba: range(u32_at(config, at + 8), n.div_ceil(64) * 8)?,
    }))
}

/// The BAR index of a sysfs BAR file name: `resource<N>` or `resource<N>_wc`, N in 0..=5.
pub fn sysfs_bar_index(file_name: &str) -> Option<u8> {
    let n = file_name.strip_prefix("resource")?;
    let n = n.strip_suffix("_wc").unwrap_or(n);
    match n.as_bytes() {
        [d @ b'0'..=b'5'] => Some(d - b'0'),
        _ => None,
    }
}

/// The MSI-X layout of the PCI device a sysfs BAR file belongs to, from the `config` file
/// beside it, with the file's BAR index. `Ok(None)`: not a PCI BAR file (its name is not
/// `resource0..5[_wc]`, or there is no `config` beside it: a regular file standing in for a
/// BAR), or a device without MSI-X.
pub fn for_bar_file(canonical: &Path) -> Result<Option<(u8, MsixLayout)>, ConfigError> {
    let Some(bar) = canonical
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(sysfs_bar_index)
    else {
        return Ok(None);
    };
    let Some(dir) = canonical.parent() else {
        return Ok(None);
    };
    // Only the standard 256 bytes (sysfs may give fewer).
    let mut config = Vec::with_capacity(CONFIG_STANDARD_SIZE);
    let read = std::fs::File::open(dir.join("config")).and_then(|f| {
        use std::io::Read;
        f.take(CONFIG_STANDARD_SIZE as u64).read_to_end(&mut config)
    });
    match read {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ConfigError::Read(Errno::from_io(&e))),
    }
    Ok(parse(&config)?.map(|m| (bar, m)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real device's config space, bytes 0..0xb0 (the rest is zero): virtio-net 1af4:1041
    /// of a VM, `/sys/bus/pci/devices/0000:00:03.0/config`. Vendor capabilities at 0x40,
    /// 0x50, 0x60, 0x70, 0x84, MSI-X at 0x98: 3 entries, table BAR0 0x8000, PBA BAR0
    /// 0x48000 (as `lspci -vv` decodes it).
    const VIRTIO_NET: [u8; 0xb0] = [
        0xf4, 0x1a, 0x41, 0x10, 0x06, 0x04, 0x10, 0x00, 0x01, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
        0x00, 0x04, 0x00, 0x10, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf4,
        0x1a, 0x41, 0x10, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x09, 0x50, 0x10, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x38, 0x00, 0x00, 0x00, 0x09, 0x60, 0x10, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20,
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x09, 0x70, 0x10, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x40, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x09, 0x84, 0x14, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x60, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x09, 0x98, 0x14,
        0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x11, 0x00, 0x02, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00, 0x80, 0x04, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    fn virtio_net() -> Vec<u8> {
        let mut c = VIRTIO_NET.to_vec();
        c.resize(CONFIG_STANDARD_SIZE, 0);
        c
    }

    #[test]
    fn a_real_devices_msix_layout_is_read_from_its_config_space() {
        let config = virtio_net();
        let at: Vec<usize> = capabilities(&config).unwrap().iter().map(|c| c.1).collect();
        assert_eq!(at, [0x40, 0x50, 0x60, 0x70, 0x84, 0x98]);
        let m = parse(&config).unwrap().unwrap();
        assert_eq!(m.entries, 3);
        let (bar, offset) = (0, 0x8000);
        assert_eq!(
            m.table,
            MsixRange {
                bar,
                offset,
                len: 48
            }
        );
        let offset = 0x48000;
        assert_eq!(
            m.pba,
            MsixRange {
                bar,
                offset,
                len: 8
            }
        );
    }

    #[test]
    fn writes_into_the_table_or_pba_are_refused_and_their_neighbours_accepted() {
        let m = parse(&virtio_net()).unwrap().unwrap();
        let table = |offset, width| m.check(0, offset, width).map_err(|e| e.structure);
        assert_eq!(table(0x8000, 4), Err(MsixStructure::Table));
        assert_eq!(
            table(0x802c, 4),
            Err(MsixStructure::Table),
            "last word of entry 2"
        );
        assert_eq!(
            table(0x7ffc, 8),
            Err(MsixStructure::Table),
            "straddles the start"
        );
        assert_eq!(table(0x48000, 8), Err(MsixStructure::Pba));
        assert_eq!(table(0x48004, 1), Err(MsixStructure::Pba));
        assert_eq!(table(0x7ffc, 4), Ok(()), "just before the table");
        assert_eq!(table(0x8030, 4), Ok(()), "just after the table");
        assert_eq!(table(0x47ff8, 8), Ok(()), "just before the PBA");
        assert_eq!(table(0x48008, 4), Ok(()), "just after the PBA");
        assert_eq!(m.check(1, 0x8000, 4), Ok(()), "another BAR");
        assert_eq!(table(u64::MAX - 7, 8), Ok(()), "no overflow at the top");
    }

    #[test]
    fn no_capability_list_means_no_msix() {
        // The host bridge of the same host (8086:0d57): status 0, no capabilities.
        let mut c = vec![0u8; CONFIG_STANDARD_SIZE];
        c[..4].copy_from_slice(&[0x86, 0x80, 0x57, 0x0d]);
        c[0x0b] = 0x06;
        assert_eq!(parse(&c), Ok(None));
        // A list without MSI-X.
        let mut c = virtio_net();
        c[0x85] = 0; // 0x84's next pointer ends the list before MSI-X.
        assert_eq!(parse(&c), Ok(None));
    }

    #[test]
    fn broken_config_spaces_are_refused_not_guessed() {
        assert_eq!(parse(&VIRTIO_NET[..0x3f]), Err(ConfigError::Truncated));
        // A non-root reader of sysfs gets 64 bytes: the list points beyond them.
        assert_eq!(parse(&VIRTIO_NET[..0x40]), Err(ConfigError::Truncated));
        // The MSI-X capability cut in the middle.
        assert_eq!(parse(&VIRTIO_NET[..0xa0]), Err(ConfigError::Truncated));
        let mut c = virtio_net();
        c[0x41] = 0x40; // loop
        assert_eq!(parse(&c), Err(ConfigError::Malformed));
        let mut c = virtio_net();
        c[0x34] = 0x20; // into the header
        assert_eq!(parse(&c), Err(ConfigError::Malformed));
        let mut c = virtio_net();
        c[0x9c] = 0x06; // table BIR 6
        assert_eq!(parse(&c), Err(ConfigError::Malformed));
        // The table size field is 11 bits: 2048 entries at most.
        let mut c = virtio_net();
        c[0x9a] = 0xff;
        c[0x9b] = 0xff;
        let m = parse(&c).unwrap().unwrap();
        assert_eq!((m.entries, m.table.len, m.pba.len), (2048, 32768, 256));
    }

    #[test]
    fn sysfs_bar_files_are_found_by_name_beside_their_config() {
        assert_eq!(sysfs_bar_index("resource0"), Some(0));
        assert_eq!(sysfs_bar_index("resource5_wc"), Some(5));
        for name in ["resource6", "resource", "bar0", "resource00"] {
            assert_eq!(sysfs_bar_index(name), None, "{name}");
        }
        let dir = std::env::temp_dir().join(format!("ioeventd-msix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bar = dir.join("resource0");
        assert_eq!(for_bar_file(&bar), Ok(None), "no config: not a PCI device");
        std::fs::write(dir.join("config"), virtio_net()).unwrap();
        let (index, m) = for_bar_file(&bar).unwrap().unwrap();
        assert_eq!((index, m.table.offset), (0, 0x8000));
        assert_eq!(for_bar_file(&dir.join("other")), Ok(None), "not a BAR file");
        std::fs::write(dir.join("config"), &VIRTIO_NET[..0x40]).unwrap();
        assert_eq!(for_bar_file(&bar), Err(ConfigError::Truncated));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
