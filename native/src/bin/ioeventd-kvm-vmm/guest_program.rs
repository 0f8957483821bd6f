//! The guest programs, as 16-bit real-mode machine code: `stores`, `latency` and
//! `datamatch`, assembled by a tiny assembler of exactly the instructions they use.

use crate::guest_layout::{
    doorbell_of_width, reg_disp, DM_A, DM_B, DOORBELLS, FINAL, PROGRESS, QWORD, STOP, TSC_END,
    TSC_START,
};

/// A guest program (see `main.rs`'s documentation for what each does).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Program {
    Stores,
    Latency,
    Datamatch,
}

impl Program {
    pub(crate) fn parse(s: &str) -> Result<Program, String> {
        Ok(match s {
            "stores" => Program::Stores,
            "latency" => Program::Latency,
            "datamatch" => Program::Datamatch,
            _ => {
                return Err(format!(
                    "unknown program {s:?} (stores, latency, datamatch)"
                ))
            }
        })
    }
    pub(crate) fn name(self) -> &'static str {
        match self {
            Program::Stores => "stores",
            Program::Latency => "latency",
            Program::Datamatch => "datamatch",
        }
    }
}

/// A tiny 16-bit real-mode assembler: exactly the instructions the programs use.
#[derive(Default)]
struct Asm {
    code: Vec<u8>,
}

const ES: u8 = 0x26;
const FS: u8 = 0x64;
const GS: u8 = 0x65;
const OP32: u8 = 0x66;

impl Asm {
    fn emit(&mut self, bytes: &[u8]) -> &mut Self {
        self.code.extend_from_slice(bytes);
        self
    }
    fn here(&self) -> usize {
        self.code.len()
    }
    fn disp(&mut self, d: u16) -> &mut Self {
        self.emit(&d.to_le_bytes())
    }
    fn imm(&mut self, width: u32, v: u64) -> &mut Self {
        let b = v.to_le_bytes();
        self.emit(&b[..width as usize])
    }
    /// `mov ecx, n`.
    fn mov_ecx(&mut self, n: u32) -> &mut Self {
        self.emit(&[OP32, 0xb9]).imm(4, u64::from(n))
    }
    /// `mov <width> [seg:]disp16, imm` (width 1, 2, 4); `seg` 0 = DS.
    fn store_imm(&mut self, seg: u8, disp: u16, width: u32, v: u64) -> &mut Self {
        if seg != 0 {
            self.emit(&[seg]);
        }
        match width {
            1 => self.emit(&[0xc6, 0x06]).disp(disp).imm(1, v),
            2 => self.emit(&[0xc7, 0x06]).disp(disp).imm(2, v),
            _ => self.emit(&[OP32, 0xc7, 0x06]).disp(disp).imm(4, v),
        }
    }
    /// The doorbell store: `width` bytes of `v` at DS:disp. Width 8: `movq [disp], mm0`, mm0
    /// loaded with `v` from FS:QWORD beforehand (see `load_mm0`).
    fn doorbell(&mut self, disp: u16, width: u32, v: u64) -> &mut Self {
        if width == 8 {
            self.emit(&[0x0f, 0x7f, 0x06]).disp(disp)
        } else {
            self.store_imm(0, disp, width, v)
        }
    }
    /// `movq mm0, fs:[QWORD]`.
    fn load_mm0(&mut self) -> &mut Self {
        self.emit(&[FS, 0x0f, 0x6f, 0x06]).disp(QWORD)
    }
    /// Clears the register (`width` bytes) at ES:disp (width 8 as two dword stores: this is
    /// the register in the BAR slot, not a doorbell).
    fn clear(&mut self, disp: u16, width: u32) -> &mut Self {
        if width == 8 {
            self.store_imm(ES, disp, 4, 0).store_imm(ES, disp + 4, 4, 0)
        } else {
            self.store_imm(ES, disp, width, 0)
        }
    }
    /// `cmp <width> es:[disp], imm` (1, 2, 4).
    fn cmp_es(&mut self, disp: u16, width: u32, v: u64) -> &mut Self {
        match width {
            1 => self.emit(&[ES, 0x80, 0x3e]).disp(disp).imm(1, v),
            2 => self.emit(&[ES, 0x81, 0x3e]).disp(disp).imm(2, v),
            _ => self.emit(&[ES, OP32, 0x81, 0x3e]).disp(disp).imm(4, v),
        }
    }
    /// `jne rel8` back to `target`.
    fn jne_back(&mut self, target: usize) -> &mut Self {
        let rel = target as isize - (self.here() as isize + 2);
        assert!((-128..0).contains(&rel), "short jump out of range");
        self.emit(&[0x75, rel as i8 as u8])
    }
    /// `jne rel16` back to `target`.
    fn jne_near_back(&mut self, target: usize) -> &mut Self {
        let rel = target as isize - (self.here() as isize + 4);
        self.emit(&[0x0f, 0x85]).emit(&(rel as i16).to_le_bytes())
    }
    /// Polls ES:disp until it holds `v` (`width` bytes; 8 as two dword compares).
    fn poll(&mut self, disp: u16, width: u32, v: u64) -> &mut Self {
        let top = self.here();
        if width == 8 {
            self.cmp_es(disp, 4, v & 0xffff_ffff).jne_back(top);
            self.cmp_es(disp + 4, 4, v >> 32).jne_back(top)
        } else {
            self.cmp_es(disp, width, v).jne_back(top)
        }
    }
    /// `rdtsc`.
    fn rdtsc(&mut self) -> &mut Self {
        self.emit(&[0x0f, 0x31])
    }
    /// `mov fs:[at], eax` and `mov fs:[at+4], edx` (after `rdtsc`).
    fn save_tsc(&mut self, at: u16) -> &mut Self {
        self.emit(&[FS, OP32, 0xa3]).disp(at);
        self.emit(&[FS, OP32, 0x89, 0x16]).disp(at + 4)
    }
    /// `inc dword fs:[PROGRESS]`.
    fn progress(&mut self) -> &mut Self {
        self.emit(&[FS, OP32, 0xff, 0x06]).disp(PROGRESS)
    }
    /// `dec ecx; jnz rel16 target`.
    fn loop_back(&mut self, target: usize) -> &mut Self {
        self.emit(&[OP32, 0x49]).jne_near_back(target)
    }
    fn hlt(&mut self) -> &mut Self {
        self.emit(&[0xf4])
    }
}

/// The guest code of `program` for `width` and `count`.
pub(crate) fn assemble(program: Program, width: u32, count: u32) -> Result<Vec<u8>, String> {
    let mut a = Asm::default();
    let fin = &DOORBELLS[FINAL];
    a.emit(&[0x31, 0xff]); // xor di, di
    a.rdtsc().save_tsc(TSC_START);
    match program {
        Program::Stores | Program::Latency => {
            let i = doorbell_of_width(width).ok_or("width must be 1, 2, 4 or 8")?;
            let d = &DOORBELLS[i];
            if width == 8 {
                a.load_mm0();
            }
            a.mov_ecx(count);
            let top = a.here();
            if program == Program::Stores {
                a.doorbell(d.offset, width, d.value);
            } else {
                a.clear(reg_disp(d), width);
                a.rdtsc();
                a.emit(&[OP32, 0x89, 0xc3]); // mov ebx, eax
                a.doorbell(d.offset, width, d.value);
                a.poll(reg_disp(d), width, d.value);
                a.rdtsc();
                a.emit(&[OP32, 0x29, 0xd8]); // sub eax, ebx
                a.emit(&[GS, OP32, 0x89, 0x05]); // mov gs:[di], eax
                a.emit(&[0x83, 0xc7, 0x04]); // add di, 4 (wraps: a ring)
                a.progress();
            }
            a.loop_back(top);
            a.doorbell(fin.offset, fin.width, fin.value);
            if program == Program::Latency {
                a.poll(reg_disp(fin), fin.width, fin.value);
            }
        }
        Program::Datamatch => {
            let (da, db) = (&DOORBELLS[DM_A], &DOORBELLS[DM_B]);
            a.mov_ecx(count);
            let top = a.here();
            a.doorbell(da.offset, 4, da.value)
                .poll(reg_disp(da), 4, da.value)
                .progress();
            a.doorbell(db.offset, 4, db.value)
                .poll(reg_disp(db), 4, db.value)
                .progress();
            // cmp dword fs:[STOP], 0 ; jne +6 (over the loop_back's 6 bytes)
            a.emit(&[FS, OP32, 0x83, 0x3e]).disp(STOP).emit(&[0x00]);
            a.emit(&[0x75, 0x06]);
            a.loop_back(top);
            a.doorbell(fin.offset, fin.width, fin.value);
            a.poll(reg_disp(fin), fin.width, fin.value);
        }
    }
    a.rdtsc().save_tsc(TSC_END);
    a.hlt();
    Ok(a.code)
}
