//! The loader: maps a driver image (`rxinject.sys`: PE32+, AMD64, subsystem NATIVE) into this
//! process as the Windows kernel's loader would, so the simulator runs the exact bytes we ship.
//!
//! What it does, in order, refusing the image at the first step that fails:
//!
//! 1. checks the headers: PE32+ for AMD64, subsystem NATIVE, sections aligned to pages, no
//!    TLS directory (kernel images cannot have one), no section both writable and executable;
//! 2. maps `SizeOfImage` bytes of anonymous memory and copies the headers and each section
//!    to its relative address (the part of a section beyond its raw data stays zero);
//! 3. applies the base relocations (`IMAGE_REL_BASED_DIR64`; any other kind is refused) for
//!    the address the mapping got;
//! 4. binds every import by module and name to a simulator function with the Windows x64
//!    calling convention ([`crate::exports`], plus the C memory functions `ntoskrnl.exe`
//!    exports); an import by ordinal or an unknown name refuses the image, listing all of
//!    them at once;
//! 5. scans the code for what needs more than this process can give (a privileged
//!    instruction, or a `gs:`/`fs:` access to the kernel's per-processor data), decoding
//!    from every function start in `.pdata`; any finding refuses the image, listing them;
//! 6. sets each section's protection from its characteristics (code read+execute, data
//!    read+write, the rest read-only; the headers read-only).
//!
//! The kernel environment the loaded driver gets is the simulator's: the NDIS and kernel
//! functions it imports (every rule checked, as for the driver compiled for this host),
//! memory from the simulator's pool, per-thread IRQL, and Linux threads with their stacks.
//! Nothing else: no KPCR or `KUSER_SHARED_DATA` (step 5 proves the image does not read
//! them), no exception dispatching (a fault in the driver kills the process, as a bug check
//! stops Windows), no security cookie (Rust emits no `/GS` checks).

use std::collections::BTreeSet;
use std::ffi::c_void;
use std::fmt;
use std::path::{Path, PathBuf};

use iced_x86::{Decoder, DecoderOptions, Instruction, OpKind, Register};
use ndis_sys::DriverInitialize;
use object::LittleEndian as LE;
use object::pe;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, Import, PeFile64};

const PAGE: usize = 4096;

/// Which build of a driver a simulation runs.
#[derive(Clone, Debug)]
pub enum Driver {
    /// Compiled for this host and linked into the process: its `DriverEntry`.
    Linked(DriverInitialize),
    /// A `.sys` file, mapped by [`Image::load`].
    Image(PathBuf),
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Driver::Linked(_) => f.write_str("compiled for this host"),
            Driver::Image(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Why an image was refused.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io(String, std::io::Error),
    /// Not an image this loader (or the Windows kernel) would load.
    Format(String),
    /// Sections both writable and executable.
    WritableExecutable(Vec<String>),
    /// Imports with no simulator function, as (module, name).
    MissingImports(Vec<(String, String)>),
    /// Code that needs the real kernel environment.
    Privileged(Vec<Finding>),
    /// mmap or mprotect failed.
    Map(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(path, e) => write!(f, "cannot read {path}: {e}"),
            LoadError::Format(m) => write!(f, "not a loadable driver image: {m}"),
            LoadError::WritableExecutable(s) => {
                write!(f, "sections both writable and executable: {}", s.join(", "))
            }
            LoadError::MissingImports(list) => {
                write!(f, "{} import(s) the simulator does not provide:", list.len())?;
                for (m, n) in list {
                    write!(f, " {m}!{n}")?;
                }
                Ok(())
            }
            LoadError::Privileged(found) => {
                write!(f, "{} instruction(s) need the kernel environment:", found.len())?;
                for x in found {
                    write!(f, "\n  {x}")?;
                }
                Ok(())
            }
            LoadError::Map(m) => write!(f, "cannot map the image: {m}"),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

/// An instruction the loader cannot let run in this process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Relative address in the image.
    pub rva: u32,
    /// The instruction, disassembled.
    pub text: String,
    /// Why it cannot run here.
    pub why: &'static str,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rva {:#x}: {} ({})", self.rva, self.text, self.why)
    }
}

/// A section's protection once mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    Read,
    ReadWrite,
    ReadExecute,
}

impl Protection {
    fn prot(self) -> libc::c_int {
        match self {
            Protection::Read => libc::PROT_READ,
            Protection::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
            Protection::ReadExecute => libc::PROT_READ | libc::PROT_EXEC,
        }
    }
}

/// A section as mapped.
#[derive(Clone, Debug)]
pub struct MappedSection {
    pub name: String,
    pub rva: u32,
    /// Bytes in memory (the virtual size).
    pub size: u32,
    pub protection: Protection,
}

/// An import as bound.
#[derive(Clone, Debug)]
pub struct BoundImport {
    pub module: String,
    pub name: String,
    /// The simulator function it calls.
    pub address: usize,
}

/// Anonymous memory holding the image; unmapped on drop.
struct Mapping {
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory; the driver code in it is run by whichever thread the
// simulator calls it on, as Windows runs a driver on any processor.
unsafe impl Send for Mapping {}
// SAFETY: as above; after loading, only the driver's own code writes to it (its data
// section), under its own synchronisation.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(len: usize) -> Result<Mapping, LoadError> {
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing; no
        // existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(LoadError::Map(format!(
                "mmap of {len} bytes: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(Mapping { base: p.cast(), len })
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `len` bytes, readable and writable until `protect` runs,
        // and borrowed mutably through `self`.
        unsafe { std::slice::from_raw_parts_mut(self.base, self.len) }
    }

    fn protect(&self, offset: usize, len: usize, prot: Protection) -> Result<(), LoadError> {
        debug_assert!(offset.is_multiple_of(PAGE) && offset + len <= self.len);
        // SAFETY: a page-aligned range inside our own mapping.
        let r = unsafe { libc::mprotect(self.base.add(offset).cast(), len, prot.prot()) };
        if r != 0 {
            return Err(LoadError::Map(format!(
                "mprotect({offset:#x}, {len:#x}, {prot:?}): {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping we made; nothing refers into it once the image is dropped
        // (the simulation that ran the driver has ended).
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// A driver image mapped into this process, ready to run.
pub struct Image {
    map: Mapping,
    /// The functions `.pdata` lists: (start, end) RVAs, sorted.
    functions: Vec<(u32, u32)>,
    name: String,
    entry_rva: u32,
    sections: Vec<MappedSection>,
    imports: Vec<BoundImport>,
    relocations: usize,
    image_base: u64,
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Image")
            .field("name", &self.name)
            .field("base", &format_args!("{:#x}", self.base()))
            .field("size", &self.map.len)
            .field("imports", &self.imports.len())
            .finish()
    }
}

/// The C memory functions `ntoskrnl.exe` exports, for images that import them (the Rust
/// compiler calls them for copies and fills).
mod crt {
    use std::ffi::c_void;

    /// `memcpy`.
    pub unsafe extern "win64" fn memcpy(dst: *mut c_void, src: *const c_void, n: usize) -> *mut c_void {
        // SAFETY: the caller's contract for memcpy: both ranges valid, not overlapping.
        unsafe { std::ptr::copy_nonoverlapping(src.cast::<u8>(), dst.cast::<u8>(), n) };
        dst
    }

    /// `memmove`.
    pub unsafe extern "win64" fn memmove(dst: *mut c_void, src: *const c_void, n: usize) -> *mut c_void {
        // SAFETY: the caller's contract for memmove: both ranges valid.
        unsafe { std::ptr::copy(src.cast::<u8>(), dst.cast::<u8>(), n) };
        dst
    }

    /// `memset`.
    pub unsafe extern "win64" fn memset(dst: *mut c_void, c: i32, n: usize) -> *mut c_void {
        // SAFETY: the caller's contract for memset: the range is valid for writes.
        unsafe { std::ptr::write_bytes(dst.cast::<u8>(), c as u8, n) };
        dst
    }

    /// `memcmp`.
    pub unsafe extern "win64" fn memcmp(a: *const c_void, b: *const c_void, n: usize) -> i32 {
        // SAFETY: the caller's contract for memcmp: both ranges valid for reads.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(a.cast::<u8>(), n),
                std::slice::from_raw_parts(b.cast::<u8>(), n),
            )
        };
        match a.iter().zip(b).find(|(x, y)| x != y) {
            Some((x, y)) => i32::from(*x) - i32::from(*y),
            None => 0,
        }
    }
}

/// Every function an image may import: the simulator's exports and the C memory functions.
pub fn loader_exports() -> Vec<(&'static str, &'static str, usize)> {
    let mut all = crate::exports::exports();
    type Crt3 = unsafe extern "win64" fn(*mut c_void, *const c_void, usize) -> *mut c_void;
    let memcpy: Crt3 = crt::memcpy;
    let memmove: Crt3 = crt::memmove;
    let memset: unsafe extern "win64" fn(*mut c_void, i32, usize) -> *mut c_void = crt::memset;
    let memcmp: unsafe extern "win64" fn(*const c_void, *const c_void, usize) -> i32 = crt::memcmp;
    all.extend([
        ("ntoskrnl.exe", "memcpy", memcpy as usize),
        ("ntoskrnl.exe", "memmove", memmove as usize),
        ("ntoskrnl.exe", "memset", memset as usize),
        ("ntoskrnl.exe", "memcmp", memcmp as usize),
    ]);
    all
}

fn format_err(what: &str) -> impl Fn(object::read::Error) -> LoadError + '_ {
    move |e| LoadError::Format(format!("{what}: {e}"))
}

fn section_name(s: &pe::ImageSectionHeader) -> String {
    String::from_utf8_lossy(s.raw_name())
        .trim_end_matches('\0')
        .to_string()
}

impl Image {
    /// Reads and maps the image at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Image, LoadError> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|e| LoadError::Io(path.display().to_string(), e))?;
        Image::from_bytes(&data, &path.display().to_string())
    }

    /// Maps an image from its file bytes; `name` is for messages.
    pub fn from_bytes(data: &[u8], name: &str) -> Result<Image, LoadError> {
        let file = PeFile64::parse(data).map_err(format_err("headers"))?;
        let nt = file.nt_headers();
        let opt = nt.optional_header();
        let machine = nt.file_header().machine.get(LE);
        if machine != pe::IMAGE_FILE_MACHINE_AMD64 {
            return Err(LoadError::Format(format!("machine {machine:#x}, not AMD64")));
        }
        if opt.subsystem() != pe::IMAGE_SUBSYSTEM_NATIVE {
            return Err(LoadError::Format(format!(
                "subsystem {}, not NATIVE (1): not a kernel driver",
                opt.subsystem()
            )));
        }
        let align = opt.section_alignment() as usize;
        if align < PAGE || !align.is_multiple_of(PAGE) {
            return Err(LoadError::Format(format!(
                "section alignment {align:#x} is not a multiple of the page size"
            )));
        }
        let size = (opt.size_of_image() as usize).div_ceil(PAGE) * PAGE;
        let headers = opt.size_of_headers() as usize;
        if size == 0 || headers > size || headers > data.len() {
            return Err(LoadError::Format(format!(
                "SizeOfImage {size:#x} / SizeOfHeaders {headers:#x} inconsistent"
            )));
        }
        let dirs = file.data_directories();
        if dirs
            .get(pe::IMAGE_DIRECTORY_ENTRY_TLS)
            .is_some_and(|d| d.size.get(LE) != 0)
        {
            return Err(LoadError::Format(
                "a TLS directory: kernel images cannot have thread-local storage".into(),
            ));
        }

        // Sections: layout and protections first, so a bad image is refused before mapping.
        let mut sections = Vec::new();
        let mut wx = Vec::new();
        for s in file.section_table().iter() {
            let name = section_name(s);
            let c = s.characteristics.get(LE);
            let rva = s.virtual_address.get(LE);
            let vsize = s.virtual_size.get(LE).max(s.size_of_raw_data.get(LE));
            if !(rva as usize).is_multiple_of(PAGE) || rva as usize + vsize as usize > size {
                return Err(LoadError::Format(format!(
                    "section {name} at {rva:#x}+{vsize:#x} outside the image or not page-aligned"
                )));
            }
            let (w, x) = (
                c & pe::IMAGE_SCN_MEM_WRITE != 0,
                c & pe::IMAGE_SCN_MEM_EXECUTE != 0,
            );
            if w && x {
                wx.push(name.clone());
            }
            let protection = match (w, x) {
                (_, true) => Protection::ReadExecute,
                (true, false) => Protection::ReadWrite,
                (false, false) => Protection::Read,
            };
            sections.push(MappedSection {
                name,
                rva,
                size: vsize,
                protection,
            });
        }
        if !wx.is_empty() {
            return Err(LoadError::WritableExecutable(wx));
        }

        let mut map = Mapping::new(size)?;
        let base = map.base as u64;
        {
            let mem = map.bytes_mut();
            mem[..headers].copy_from_slice(&data[..headers]);
            for s in file.section_table().iter() {
                let raw = s
                    .pe_data(data)
                    .map_err(format_err("section data outside the file"))?;
                let rva = s.virtual_address.get(LE) as usize;
                let vsize = s.virtual_size.get(LE) as usize;
                let n = if vsize == 0 {
                    raw.len()
                } else {
                    raw.len().min(vsize)
                };
                mem[rva..rva + n].copy_from_slice(&raw[..n]);
            }
        }

        // Relocations.
        let image_base = opt.image_base();
        let delta = base.wrapping_sub(image_base);
        let mut relocations = 0;
        if let Some(mut blocks) = dirs
            .relocation_blocks(data, &file.section_table())
            .map_err(format_err("base relocations"))?
        {
            let mem = map.bytes_mut();
            while let Some(block) = blocks.next().map_err(format_err("relocation block"))? {
                for r in block {
                    match r.typ {
                        pe::IMAGE_REL_BASED_ABSOLUTE => {}
                        pe::IMAGE_REL_BASED_DIR64 => {
                            let at = r.virtual_address as usize;
                            let slot = mem.get_mut(at..at + 8).ok_or_else(|| {
                                LoadError::Format(format!("relocation at {at:#x} outside the image"))
                            })?;
                            let v = u64::from_le_bytes(slot.try_into().unwrap_or([0; 8]));
                            slot.copy_from_slice(&v.wrapping_add(delta).to_le_bytes());
                            relocations += 1;
                        }
                        t => {
                            return Err(LoadError::Format(format!(
                                "relocation type {t} at {:#x} (only DIR64 is expected on AMD64)",
                                r.virtual_address
                            )));
                        }
                    }
                }
            }
        } else if delta != 0 && nt.file_header().characteristics.get(LE) & pe::IMAGE_FILE_RELOCS_STRIPPED != 0
        {
            // An image without a relocation directory that does not say its relocations
            // were stripped has none to apply (all its addressing is RIP-relative), as the
            // Windows loader sees it.
            return Err(LoadError::Format(
                "relocations stripped (IMAGE_FILE_RELOCS_STRIPPED), and the image cannot be mapped at its preferred base".into(),
            ));
        }

        // Imports.
        let table = loader_exports();
        let mut imports = Vec::new();
        let mut missing = Vec::new();
        if let Some(it) = file.import_table().map_err(format_err("import table"))? {
            let mut descs = it.descriptors().map_err(format_err("import descriptors"))?;
            while let Some(d) = descs.next().map_err(format_err("import descriptor"))? {
                let module =
                    String::from_utf8_lossy(it.name(d.name.get(LE)).map_err(format_err("module name"))?)
                        .into_owned();
                let lookup = match d.original_first_thunk.get(LE) {
                    0 => d.first_thunk.get(LE),
                    l => l,
                };
                let iat = d.first_thunk.get(LE) as usize;
                let mut thunks = it.thunks(lookup).map_err(format_err("import thunks"))?;
                let mut i = 0;
                while let Some(t) = thunks
                    .next::<pe::ImageNtHeaders64>()
                    .map_err(format_err("import thunk"))?
                {
                    let name = match it
                        .import::<pe::ImageNtHeaders64>(t)
                        .map_err(format_err("import"))?
                    {
                        Import::Name(_, n) => String::from_utf8_lossy(n).into_owned(),
                        Import::Ordinal(o) => format!("#{o}"),
                    };
                    let found = table
                        .iter()
                        .find(|(m, n, _)| m.eq_ignore_ascii_case(&module) && *n == name);
                    match found {
                        Some(&(_, _, address)) => {
                            let at = iat + 8 * i;
                            let slot = map.bytes_mut().get_mut(at..at + 8).ok_or_else(|| {
                                LoadError::Format(format!(
                                    "import address table at {at:#x} outside the image"
                                ))
                            })?;
                            slot.copy_from_slice(&(address as u64).to_le_bytes());
                            imports.push(BoundImport {
                                module: module.clone(),
                                name,
                                address,
                            });
                        }
                        None => missing.push((module.clone(), name)),
                    }
                    i += 1;
                }
            }
        }
        if !missing.is_empty() {
            return Err(LoadError::MissingImports(missing));
        }

        // The code, decoded from every function start.
        let mut starts = BTreeSet::new();
        let mut functions = Vec::new();
        if let Some(d) = dirs.get(pe::IMAGE_DIRECTORY_ENTRY_EXCEPTION) {
            let (rva, len) = (d.virtual_address.get(LE) as usize, d.size.get(LE) as usize);
            let mem = map.bytes_mut();
            if let Some(pdata) = mem.get(rva..rva + len) {
                for f in pdata.chunks_exact(12) {
                    let begin = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
                    let end = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
                    starts.insert(begin);
                    functions.push((begin, end));
                }
                functions.sort_unstable();
            }
        }
        let mut findings = Vec::new();
        for s in sections
            .iter()
            .filter(|s| s.protection == Protection::ReadExecute)
        {
            let mem = map.bytes_mut();
            let code = &mem[s.rva as usize..(s.rva + s.size) as usize];
            findings.extend(scan_code(
                code,
                s.rva,
                &functions,
                Some(opt.address_of_entry_point()),
            ));
        }
        if !findings.is_empty() {
            return Err(LoadError::Privileged(findings));
        }

        let entry_rva = opt.address_of_entry_point();
        if !sections
            .iter()
            .any(|s| s.protection == Protection::ReadExecute && (s.rva..s.rva + s.size).contains(&entry_rva))
        {
            return Err(LoadError::Format(format!(
                "entry point {entry_rva:#x} is not in a code section"
            )));
        }

        // Protections: headers and gaps read-only, then each section's own.
        map.protect(0, size, Protection::Read)?;
        for s in &sections {
            let len = (s.size as usize).div_ceil(PAGE) * PAGE;
            if len > 0 {
                map.protect(s.rva as usize, len, s.protection)?;
            }
        }

        Ok(Image {
            map,
            functions,
            name: name.to_string(),
            entry_rva,
            sections,
            imports,
            relocations,
            image_base,
        })
    }

    /// The function (`.pdata` entry: start and end RVA) containing `rva`.
    pub fn function_at(&self, rva: u32) -> Option<(u32, u32)> {
        let i = self.functions.partition_point(|f| f.0 <= rva);
        let f = *self.functions.get(i.checked_sub(1)?)?;
        (rva < f.1).then_some(f)
    }

    /// The driver's entry point (`DriverEntry`), to pass to [`crate::Sim::load`].
    pub fn entry(&self) -> DriverInitialize {
        let at = self.base() + self.entry_rva as usize;
        // SAFETY: the address is inside a mapped, executable section of this image (checked
        // at load), whose code follows the Windows x64 convention of `DriverInitialize`;
        // function pointers and data pointers have the same size on this target.
        unsafe { std::mem::transmute::<usize, DriverInitialize>(at) }
    }

    /// Where the image is mapped.
    pub fn base(&self) -> usize {
        self.map.base as usize
    }

    /// The mapped size (`SizeOfImage`, rounded up to pages).
    pub fn size(&self) -> usize {
        self.map.len
    }

    /// The base the image was linked for (relocations moved it to [`Image::base`]).
    pub fn preferred_base(&self) -> u64 {
        self.image_base
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn sections(&self) -> &[MappedSection] {
        &self.sections
    }

    pub fn imports(&self) -> &[BoundImport] {
        &self.imports
    }

    /// DIR64 relocations applied.
    pub fn relocations(&self) -> usize {
        self.relocations
    }

    /// Whether `addr` is inside the image.
    pub fn contains(&self, addr: usize) -> bool {
        (self.base()..self.base() + self.size()).contains(&addr)
    }
}

/// Instructions in `code` (a section at `rva`) that cannot run in a Linux process: privileged
/// ones (CPL 0 or IOPL) and accesses through `gs:`/`fs:` (the KPCR and TEB a kernel driver
/// would find there do not exist here).
///
/// With the `.pdata` ranges in `functions`, the code is followed as the processor would run
/// it: from each function start (and `entry`), along every direct branch and call, and to
/// every code address a `lea` takes (a callback handed to NDIS), stopping at returns,
/// unconditional and indirect jumps. Data the compiler put among the instructions (jump
/// tables) is never decoded; leaf functions, which need no `.pdata` entry, are reached
/// through their callers. Without `.pdata`, the section is decoded from its start, linearly.
pub fn scan_code(code: &[u8], rva: u32, functions: &[(u32, u32)], entry: Option<u32>) -> Vec<Finding> {
    use iced_x86::FlowControl;
    let end = rva + code.len() as u32;
    let inside = |a: u64| a >= u64::from(rva) && a < u64::from(end);
    let classify = |ins: &Instruction| {
        if ins.is_privileged() {
            Some("privileged: needs CPL 0")
        } else if has_memory_operand(ins) && matches!(ins.memory_segment(), Register::GS | Register::FS) {
            Some("reads per-processor or per-thread data through gs:/fs:")
        } else {
            None
        }
    };
    let mut found = Vec::new();
    if functions.is_empty() {
        let mut dec = Decoder::with_ip(64, code, u64::from(rva), DecoderOptions::NONE);
        let mut ins = Instruction::default();
        while dec.can_decode() {
            dec.decode_out(&mut ins);
            if let Some(why) = (!ins.is_invalid()).then(|| classify(&ins)).flatten() {
                found.push(Finding {
                    rva: ins.ip() as u32,
                    text: format!("{ins}"),
                    why,
                });
            }
        }
        return found;
    }
    // (address, certain): function starts, the entry and what certain code branches to are
    // code; an address only a `lea` names may be data (a jump table's base), so a run from
    // it counts only if it decodes to its end without an invalid instruction.
    let starts: BTreeSet<u64> = functions.iter().map(|f| u64::from(f.0)).collect();
    let mut work: Vec<(u64, bool)> = starts
        .iter()
        .copied()
        .chain(entry.map(u64::from))
        .filter(|a| inside(*a))
        .map(|a| (a, true))
        .collect();
    let mut visited = BTreeSet::new();
    let mut reported = BTreeSet::new();
    while let Some((start, certain)) = work.pop() {
        let mut ip = start;
        let mut run_findings = Vec::new();
        let mut run_targets = Vec::new();
        let mut run_visited = Vec::new();
        let mut ok = true;
        loop {
            if !inside(ip) || visited.contains(&ip) || run_visited.contains(&ip) {
                break;
            }
            run_visited.push(ip);
            let off = (ip - u64::from(rva)) as usize;
            let mut dec = Decoder::with_ip(64, &code[off..], ip, DecoderOptions::NONE);
            let ins = dec.decode();
            if ins.is_invalid() {
                ok = certain;
                break;
            }
            if let Some(why) = classify(&ins) {
                run_findings.push(Finding {
                    rva: ins.ip() as u32,
                    text: format!("{ins}"),
                    why,
                });
            }
            for i in 0..ins.op_count() {
                match ins.op_kind(i) {
                    OpKind::NearBranch64 => run_targets.push((ins.near_branch64(), certain)),
                    OpKind::Memory
                        if ins.is_ip_rel_memory_operand() && ins.mnemonic() == iced_x86::Mnemonic::Lea =>
                    {
                        let t = ins.ip_rel_memory_address();
                        run_targets.push((t, certain && starts.contains(&t)));
                    }
                    _ => {}
                }
            }
            match ins.flow_control() {
                FlowControl::Return
                | FlowControl::UnconditionalBranch
                | FlowControl::IndirectBranch
                | FlowControl::Interrupt => break,
                _ => ip = ins.next_ip(),
            }
        }
        if !ok {
            continue;
        }
        visited.extend(run_visited);
        work.extend(run_targets);
        for f in run_findings {
            if reported.insert(f.rva) {
                found.push(f);
            }
        }
    }
    found.sort_by_key(|f| f.rva);
    found
}

fn has_memory_operand(ins: &Instruction) -> bool {
    (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory)
}

/// The innermost return address into the image at `base` (`len` bytes) on this thread's
/// stack, as an RVA: where the driver called the simulator function running now. Found by
/// scanning the stack upward from here for values inside the image that follow a call
/// instruction (`call rel32`, or `call [rip+disp32]` through the import table).
pub(crate) fn caller_in(base: usize, len: usize) -> Option<u32> {
    let here = 0usize;
    let sp = std::ptr::addr_of!(here) as usize;
    let top = stack_top(sp)?.min(sp + (1 << 20));
    let mut p = (sp + 7) & !7;
    while p + 8 <= top {
        // SAFETY: [sp, top) is this thread's stack mapping (from /proc/self/maps), readable.
        let v = unsafe { std::ptr::read_volatile(p as *const usize) };
        if v >= base + 6 && v < base + len && follows_call(base, len, v) {
            return u32::try_from(v - base).ok();
        }
        p += 8;
    }
    None
}

/// Whether the bytes before `ret` (inside the image) are a call instruction.
fn follows_call(base: usize, len: usize, ret: usize) -> bool {
    let readable = |a: usize| a >= base && a < base + len;
    if !readable(ret - 6) {
        return false;
    }
    // SAFETY: inside the mapped image; its pages are readable (code and data sections, and
    // headers, are mapped at least read-only).
    let b = unsafe { std::slice::from_raw_parts((ret - 6) as *const u8, 6) };
    // call rel32 | call [rip+disp32] | call reg (FF D0+r, with or without a REX prefix)
    b[1] == 0xE8 || (b[0] == 0xFF && b[1] == 0x15) || (b[4] == 0xFF && (b[5] & 0xF8) == 0xD0)
}

/// The end of the stack mapping containing `sp`.
fn stack_top(sp: usize) -> Option<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|l| {
        let range = l.split_whitespace().next()?;
        let (a, b) = range.split_once('-')?;
        let (a, b) = (
            usize::from_str_radix(a, 16).ok()?,
            usize::from_str_radix(b, 16).ok()?,
        );
        (a <= sp && sp < b).then_some(b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memory functions against the obvious ones: every length to 100, every overlap of
    /// the two ranges within 40 bytes either way (memmove), every fill.
    #[test]
    fn the_memory_functions_copy_move_and_fill_like_the_c_library() {
        let pattern: Vec<u8> = (0..256u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..100usize {
            let mut dst = [0xAAu8; 160];
            // SAFETY: both ranges in their vectors, apart.
            let r = unsafe { crt::memcpy(dst[8..].as_mut_ptr().cast(), pattern.as_ptr().cast(), n) };
            assert_eq!(r, dst[8..].as_mut_ptr().cast(), "memcpy returns its destination");
            assert_eq!(&dst[8..8 + n], &pattern[..n], "memcpy {n}");
            assert!(
                dst[..8].iter().chain(&dst[8 + n..]).all(|&b| b == 0xAA),
                "memcpy {n} stays in range"
            );
            for shift in -40i64..=40 {
                let mut buf = pattern.clone();
                let (s, d) = (100usize, (100 + shift) as usize);
                let mut expect = pattern.clone();
                expect.copy_within(s..s + n, d);
                // SAFETY: both ranges inside `buf`.
                unsafe { crt::memmove(buf[d..].as_mut_ptr().cast(), buf[s..].as_ptr().cast(), n) };
                assert_eq!(buf, expect, "memmove {n} by {shift}");
            }
            let mut buf = [0x11u8; 160];
            // SAFETY: the range in the vector.
            unsafe { crt::memset(buf[3..].as_mut_ptr().cast(), 0x1C5, n) };
            assert!(buf[3..3 + n].iter().all(|&b| b == 0xC5), "memset {n}");
            assert!(
                buf[..3].iter().chain(&buf[3 + n..]).all(|&b| b == 0x11),
                "memset {n} stays in range"
            );
            // SAFETY: both ranges in their vectors.
            let same = unsafe { crt::memcmp(pattern.as_ptr().cast(), pattern.as_ptr().cast(), n) };
            assert_eq!(same, 0, "memcmp {n}");
        }
    }

    #[test]
    fn the_scan_finds_privileged_instructions_and_segment_accesses() {
        // mov rax, cr8 ; cli ; mov rax, gs:[0x188] ; nop ; ret ; in al, dx ; wrmsr
        let code = [
            0x44, 0x0F, 0x20, 0xC0, // mov rax, cr8
            0xFA, // cli
            0x65, 0x48, 0x8B, 0x04, 0x25, 0x88, 0x01, 0x00, 0x00, // mov rax, gs:[0x188]
            0x90, // nop
            0xC3, // ret
            0xEC, // in al, dx
            0x0F, 0x30, // wrmsr
        ];
        let found = scan_code(&code, 0x1000, &[], None);
        let rvas: Vec<u32> = found.iter().map(|f| f.rva).collect();
        assert_eq!(rvas, [0x1000, 0x1004, 0x1005, 0x1010, 0x1011], "{found:#?}");
        assert!(found[2].why.contains("gs:"));
        assert!(found[0].text.contains("cr8"), "{}", found[0].text);
    }

    #[test]
    fn ordinary_code_has_no_findings() {
        // push rbx ; mov eax, [rcx+8] ; add rax, rdx ; lock xadd [rcx], eax ; pop rbx ; ret ; int3
        let code = [
            0x53, 0x8B, 0x41, 0x08, 0x48, 0x01, 0xD0, 0xF0, 0x0F, 0xC1, 0x01, 0x5B, 0xC3, 0xCC,
        ];
        assert!(scan_code(&code, 0x1000, &[], None).is_empty());
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let e = Image::from_bytes(b"MZ not really", "garbage").unwrap_err();
        assert!(matches!(e, LoadError::Format(_)), "{e}");
    }

    #[test]
    fn code_is_followed_from_the_functions_not_swept_through_jump_tables() {
        // f (0x1000): call leaf ; lea rax, [rip+cb] ; ret ; then a jump table whose bytes
        // decode as cli; leaf (0x1010): cli ; ret ; cb (0x1012): sti ; ret.
        let mut code = vec![0xE8, 0x0B, 0x00, 0x00, 0x00]; // call 0x1010
        code.extend([0x48, 0x8D, 0x05, 0x06, 0x00, 0x00, 0x00]); // lea rax, [rip+6] -> 0x1012
        code.extend([0xC3]); // ret (0x100c)
        code.extend([0xFA, 0xFF, 0xFF]); // the table (0x100d..0x1010)
        code.extend([0xFA, 0xC3, 0xFB, 0xC3]); // leaf, cb
        let found = scan_code(&code, 0x1000, &[(0x1000, 0x1010)], None);
        assert_eq!(
            found.iter().map(|f| f.rva).collect::<Vec<_>>(),
            [0x1010, 0x1012],
            "{found:#?}"
        );
    }
}
