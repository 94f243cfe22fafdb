//! Inspection of the built driver image: the properties a Windows kernel driver must have,
//! checked on the bytes we ship.

use std::collections::BTreeSet;

use object::LittleEndian as LE;
use object::pe;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, PeFile64};

use crate::{Error, Result};

/// Modules a kernel driver may import from (rxinject uses the first two).
pub const ALLOWED_MODULES: &[&str] = &["ntoskrnl.exe", "ndis.sys", "HAL.dll"];

/// What [`inspect`] found.
#[derive(Debug, Clone)]
pub struct Image {
    pub machine: u16,
    pub pe32_plus: bool,
    pub subsystem: u16,
    pub entry_rva: u32,
    pub dll_characteristics: u16,
    pub checksum: u32,
    pub computed_checksum: u32,
    /// (module, function)
    pub imports: Vec<(String, String)>,
    /// Sections both writable and executable.
    pub writable_executable: Vec<String>,
    /// `IMAGE_DLLCHARACTERISTICS_EX_CET_COMPAT` in the extended DLL characteristics debug
    /// entry (`/CETCOMPAT`: the image is compatible with CET shadow stacks).
    pub cet_compat: bool,
    /// Names the image exports (a DLL's export table).
    pub exports: Vec<String>,
    /// `IMAGE_FILE_DLL` in the file header.
    pub is_dll: bool,
}

/// `IMAGE_DEBUG_TYPE_EX_DLLCHARACTERISTICS` and its CET bit (winnt.h).
const IMAGE_DEBUG_TYPE_EX_DLLCHARACTERISTICS: u32 = 20;
const IMAGE_DLLCHARACTERISTICS_EX_CET_COMPAT: u32 = 0x01;

/// Whether the image's debug directory has the extended DLL characteristics entry with the
/// CET-compatible bit.
fn cet_compat(data: &[u8], file: &PeFile64<'_>) -> Result<bool> {
    let Some(dir) = file.data_directories().get(pe::IMAGE_DIRECTORY_ENTRY_DEBUG) else {
        return Ok(false);
    };
    let bytes = dir
        .data(data, &file.section_table())
        .map_err(|e| Error::with("bad debug directory", e))?;
    for entry in bytes.chunks_exact(28) {
        let u32_at = |o: usize| u32::from_le_bytes(entry[o..o + 4].try_into().expect("4 bytes"));
        if u32_at(12) != IMAGE_DEBUG_TYPE_EX_DLLCHARACTERISTICS {
            continue;
        }
        let (size, raw) = (u32_at(16) as usize, u32_at(24) as usize);
        let value = data
            .get(raw..raw + size.min(4))
            .filter(|v| v.len() == 4)
            .map(|v| u32::from_le_bytes(v.try_into().expect("4 bytes")));
        return Ok(value.is_some_and(|v| v & IMAGE_DLLCHARACTERISTICS_EX_CET_COMPAT != 0));
    }
    Ok(false)
}

/// The file offset of the optional header's `CheckSum` field.
fn checksum_offset(data: &[u8]) -> Result<usize> {
    let e_lfanew = data
        .get(0x3C..0x40)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize)
        .ok_or_else(|| Error::new("file too short for a DOS header"))?;
    // Signature (4) + IMAGE_FILE_HEADER (20) + CheckSum's offset in the optional header (64).
    let off = e_lfanew + 4 + 20 + 64;
    if off + 4 > data.len() {
        return Err(Error::new("file too short for an optional header"));
    }
    Ok(off)
}

/// The PE image checksum (the algorithm of `CheckSumMappedFile`): 16-bit one's-complement
/// style sum of the file with the checksum field taken as zero, plus the file length.
pub fn compute_checksum(data: &[u8]) -> Result<u32> {
    let skip = checksum_offset(data)?;
    let mut sum: u64 = 0;
    let mut i = 0;
    while i < data.len() {
        let word = if i + 1 < data.len() {
            u64::from(u16::from_le_bytes([data[i], data[i + 1]]))
        } else {
            u64::from(data[i])
        };
        if i != skip && i != skip + 2 {
            sum += word;
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        i += 2;
    }
    sum = (sum & 0xFFFF) + (sum >> 16);
    Ok((sum as u32).wrapping_add(data.len() as u32))
}

/// Writes the correct checksum into the image (lld-link ignores `/RELEASE`).
pub fn write_checksum(data: &mut [u8]) -> Result<u32> {
    let sum = compute_checksum(data)?;
    let off = checksum_offset(data)?;
    data[off..off + 4].copy_from_slice(&sum.to_le_bytes());
    Ok(sum)
}

/// Parses the image.
pub fn inspect(data: &[u8]) -> Result<Image> {
    let file = PeFile64::parse(data).map_err(|e| Error::with("not a PE32+ image", e))?;
    let nt = file.nt_headers();
    let opt = nt.optional_header();
    let mut imports = Vec::new();
    if let Some(table) = file
        .import_table()
        .map_err(|e| Error::with("bad import table", e))?
    {
        let mut descs = table
            .descriptors()
            .map_err(|e| Error::with("bad import descriptors", e))?;
        while let Some(d) = descs
            .next()
            .map_err(|e| Error::with("bad import descriptor", e))?
        {
            let module = table
                .name(d.name.get(LE))
                .map_err(|e| Error::with("bad module name", e))?;
            let module = String::from_utf8_lossy(module).into_owned();
            let first = d.original_first_thunk.get(LE);
            let first = if first != 0 { first } else { d.first_thunk.get(LE) };
            let mut thunks = table.thunks(first).map_err(|e| Error::with("bad thunks", e))?;
            while let Some(t) = thunks
                .next::<pe::ImageNtHeaders64>()
                .map_err(|e| Error::with("bad thunk", e))?
            {
                let import = table
                    .import::<pe::ImageNtHeaders64>(t)
                    .map_err(|e| Error::with("bad import", e))?;
                let name = match import {
                    object::read::pe::Import::Name(_, n) => String::from_utf8_lossy(n).into_owned(),
                    object::read::pe::Import::Ordinal(o) => format!("#{o}"),
                };
                imports.push((module.clone(), name));
            }
        }
    }
    let mut writable_executable = Vec::new();
    for s in file.section_table().iter() {
        let c = s.characteristics.get(LE);
        if c & pe::IMAGE_SCN_MEM_WRITE != 0 && c & pe::IMAGE_SCN_MEM_EXECUTE != 0 {
            writable_executable.push(
                String::from_utf8_lossy(s.raw_name())
                    .trim_end_matches('\0')
                    .to_string(),
            );
        }
    }
    Ok(Image {
        machine: nt.file_header().machine.get(LE),
        pe32_plus: opt.magic() == pe::IMAGE_NT_OPTIONAL_HDR64_MAGIC,
        subsystem: opt.subsystem(),
        entry_rva: opt.address_of_entry_point(),
        dll_characteristics: opt.dll_characteristics(),
        checksum: opt.check_sum(),
        computed_checksum: compute_checksum(data)?,
        imports,
        writable_executable,
        cet_compat: cet_compat(data, &file)?,
        exports: file
            .export_table()
            .map_err(|e| Error::with("bad export table", e))?
            .map(|t| {
                t.exports()
                    .map(|v| {
                        v.iter()
                            .filter_map(|e| e.name)
                            .map(|n| String::from_utf8_lossy(n).into_owned())
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default(),
        is_dll: nt.file_header().characteristics.get(LE) & pe::IMAGE_FILE_DLL != 0,
    })
}

/// What is wrong with a user-mode DLL: not AMD64 PE32+, not a DLL, imports beyond Windows
/// system DLLs, or missing exports of `expected`.
pub fn check_dll_image(img: &Image, expected: &[&str]) -> Vec<String> {
    let mut problems: Vec<String> = check_console_image(img)
        .into_iter()
        .filter(|p| !p.starts_with("subsystem"))
        .collect();
    if !img.is_dll {
        problems.push("not a DLL (IMAGE_FILE_DLL)".into());
    }
    for name in expected {
        if !img.exports.iter().any(|e| e == name) {
            problems.push(format!("{name} is not exported"));
        }
    }
    problems
}

/// The RVA of `symbol` according to an lld-link map file.
pub fn map_symbol_rva(map: &str, symbol: &str) -> Option<u32> {
    let base = map.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Preferred load address is ")
            .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
    })?;
    map.lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        if cols.len() >= 3 && cols[1] == symbol {
            let va = u64::from_str_radix(cols[2], 16).ok()?;
            u32::try_from(va.checked_sub(base)?).ok()
        } else {
            None
        }
    })
}

/// Every property the shipped `rxinject.sys` must have. Returns the list of problems.
pub fn check_driver_image(img: &Image, driver_entry_rva: Option<u32>) -> Vec<String> {
    let mut problems = Vec::new();
    if img.machine != pe::IMAGE_FILE_MACHINE_AMD64 {
        problems.push(format!("machine {:#06x} is not AMD64", img.machine));
    }
    if !img.pe32_plus {
        problems.push("not PE32+".into());
    }
    if img.subsystem != pe::IMAGE_SUBSYSTEM_NATIVE {
        problems.push(format!("subsystem {} is not NATIVE (1)", img.subsystem));
    }
    match driver_entry_rva {
        Some(rva) if rva == img.entry_rva => {}
        Some(rva) => problems.push(format!(
            "entry point {:#x} is not DriverEntry ({rva:#x})",
            img.entry_rva
        )),
        None => problems.push("DriverEntry not found in the map file".into()),
    }
    if img.checksum == 0 || img.checksum != img.computed_checksum {
        problems.push(format!(
            "image checksum {:#x} is wrong (computed {:#x}); Windows verifies it for drivers",
            img.checksum, img.computed_checksum
        ));
    }
    if img.dll_characteristics & pe::IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY == 0 {
        problems.push("FORCE_INTEGRITY (/INTEGRITYCHECK) is not set".into());
    }
    if img.dll_characteristics & pe::IMAGE_DLLCHARACTERISTICS_NX_COMPAT == 0 {
        problems.push("NX_COMPAT is not set".into());
    }
    if !img.cet_compat {
        problems.push(
            "not CET-compatible (/CETCOMPAT): kernel-mode hardware-enforced stack protection needs it".into(),
        );
    }
    let modules: BTreeSet<&str> = img.imports.iter().map(|(m, _)| m.as_str()).collect();
    for m in &modules {
        if !ALLOWED_MODULES.contains(m) {
            problems.push(format!(
                "imports from {m}, which a driver may not (only {ALLOWED_MODULES:?})"
            ));
        }
    }
    let declared: BTreeSet<(&str, &str)> = ndis_sys::IMPORTS.iter().copied().collect();
    for (m, f) in &img.imports {
        let runtime = m == "ntoskrnl.exe"
            && ["memcpy", "memmove", "memset", "memcmp", "__chkstk"].contains(&f.as_str());
        if !runtime && !declared.contains(&(m.as_str(), f.as_str())) {
            problems.push(format!("imports {m}!{f}, which ndis-sys does not declare"));
        }
    }
    if img.imports.is_empty() {
        problems.push("no imports at all (not a driver)".into());
    }
    for s in &img.writable_executable {
        problems.push(format!("section {s} is both writable and executable"));
    }
    problems
}

/// Checks the user-mode tool: a PE32+ console program for AMD64 that imports from Windows
/// user-mode DLLs only (nothing kernel-mode, nothing the user would have to install).
pub fn check_console_image(img: &Image) -> Vec<String> {
    let mut problems = Vec::new();
    if img.machine != pe::IMAGE_FILE_MACHINE_AMD64 {
        problems.push(format!("machine {:#06x} is not AMD64", img.machine));
    }
    if !img.pe32_plus {
        problems.push("not PE32+".into());
    }
    if img.subsystem != pe::IMAGE_SUBSYSTEM_WINDOWS_CUI {
        problems.push(format!("subsystem {} is not CONSOLE (3)", img.subsystem));
    }
    for m in img
        .imports
        .iter()
        .map(|(m, _)| m.to_ascii_lowercase())
        .collect::<BTreeSet<_>>()
    {
        let system = m.ends_with(".dll")
            && (m.starts_with("api-ms-win-")
                || [
                    "kernel32.dll",
                    "ntdll.dll",
                    "advapi32.dll",
                    "bcryptprimitives.dll",
                    "userenv.dll",
                    "ws2_32.dll",
                    "msvcrt.dll",
                    "ucrtbase.dll",
                    "shell32.dll",
                    "ole32.dll",
                    "iphlpapi.dll",
                ]
                .contains(&m.as_str()));
        if !system {
            problems.push(format!("imports from {m}, which is not a Windows system DLL"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_buffer() {
        // A 0x100-byte "image" whose e_lfanew is 0x40: the checksum field is at 0x40+88.
        let mut data = vec![0u8; 0x100];
        data[0x3C] = 0x40;
        data[0x80] = 0x34;
        data[0x81] = 0x12;
        // Words: 0x0040 at 0x3C, 0x1234 at 0x80 -> 0x1274, plus the length 0x100.
        assert_eq!(compute_checksum(&data).unwrap(), 0x1274 + 0x100);
        // The checksum field itself never counts.
        let off = 0x40 + 88;
        data[off] = 0xFF;
        data[off + 2] = 0xFF;
        assert_eq!(compute_checksum(&data).unwrap(), 0x1274 + 0x100);
        assert_eq!(write_checksum(&mut data).unwrap(), 0x1374);
        assert_eq!(&data[off..off + 4], &0x1374u32.to_le_bytes());
    }

    #[test]
    fn checksum_folds_carries() {
        let mut data = vec![0xFFu8; 0x80];
        data[0x3C..0x40].copy_from_slice(&0x10u32.to_le_bytes());
        let sum = compute_checksum(&data).unwrap();
        assert!(
            sum <= 0xFFFF + 0x80,
            "folded to 16 bits before adding the length: {sum:#x}"
        );
    }

    #[test]
    fn map_lookup_subtracts_the_base() {
        let map = " Preferred load address is 0000000180000000\n\n 0001:00000000       DriverEntry                0000000180001000     x.o\n";
        assert_eq!(map_symbol_rva(map, "DriverEntry"), Some(0x1000));
        assert_eq!(map_symbol_rva(map, "Nope"), None);
    }
}
