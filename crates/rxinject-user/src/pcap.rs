//! Capture files: pcap and pcapng read (checked views: every length is checked against what
//! is there, and a bad file is an error naming the offset, never a panic), pcapng and pcap
//! written.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u16 = 1;

/// Nanoseconds between 1601-01-01 and 1970-01-01, in 100 ns units (FILETIME to Unix).
pub const FILETIME_UNIX_EPOCH: i64 = 116_444_736_000_000_000;

/// The file formats this module reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pcap,
    PcapNg,
}

/// One packet of a capture file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// When it was captured, in nanoseconds since 1970-01-01 UTC.
    pub timestamp_ns: i128,
    /// The captured bytes.
    pub data: Vec<u8>,
    /// Its length on the wire.
    pub orig_len: u32,
    /// The link type of the interface it was captured on.
    pub link_type: u16,
    /// The packet's offset in the file (for messages).
    pub offset: usize,
    /// pcapng `epb_flags` (bits 0-1: 1 inbound, 2 outbound), if present.
    pub flags: Option<u32>,
    /// pcapng `opt_comment`, if present.
    pub comment: Option<String>,
}

impl Packet {
    /// The direction `epb_flags` records, if any.
    pub fn direction(&self) -> Option<Direction> {
        match self.flags? & 3 {
            1 => Some(Direction::Inbound),
            2 => Some(Direction::Outbound),
            _ => None,
        }
    }
}

/// A capture file, read whole.
#[derive(Clone, Debug)]
pub struct CaptureFile {
    pub path: PathBuf,
    pub format: Format,
    pub packets: Vec<Packet>,
}

/// What is wrong with a capture file.
#[derive(Debug)]
pub enum FileError {
    Io {
        path: PathBuf,
        error: io::Error,
    },
    /// Not a pcap or pcapng file.
    NotACapture {
        path: PathBuf,
        magic: [u8; 4],
    },
    /// Malformed or truncated at `offset`.
    Malformed {
        path: PathBuf,
        offset: usize,
        what: String,
    },
    /// A link type other than Ethernet.
    LinkType {
        path: PathBuf,
        link_type: u16,
        offset: usize,
    },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Io { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            FileError::NotACapture { path, magic } => write!(
                f,
                "{} is not a pcap or pcapng file (it starts with {:02x}{:02x}{:02x}{:02x})",
                path.display(),
                magic[0],
                magic[1],
                magic[2],
                magic[3]
            ),
            FileError::Malformed { path, offset, what } => {
                write!(
                    f,
                    "{} is malformed at byte offset {offset}: {what}",
                    path.display()
                )
            }
            FileError::LinkType {
                path,
                link_type,
                offset,
            } => write!(
                f,
                "{}: link type {link_type} ({}) at byte offset {offset}: only Ethernet (link type 1) frames can be injected",
                path.display(),
                link_type_name(*link_type)
            ),
        }
    }
}

impl std::error::Error for FileError {}

/// The name tcpdump uses for a link type.
pub fn link_type_name(lt: u16) -> &'static str {
    match lt {
        0 => "NULL (BSD loopback)",
        1 => "EN10MB (Ethernet)",
        9 => "PPP",
        101 => "RAW (raw IP)",
        105 => "IEEE802_11 (802.11 Wi-Fi)",
        108 => "LOOP (OpenBSD loopback)",
        113 => "LINUX_SLL (Linux cooked)",
        127 => "IEEE802_11_RADIO (radiotap)",
        147..=162 => "USER (private use)",
        192 => "PPI",
        195 => "IEEE802_15_4",
        220 => "USB_LINUX_MMAPPED",
        228 => "IPV4",
        229 => "IPV6",
        249 => "USBPCAP",
        276 => "LINUX_SLL2 (Linux cooked v2)",
        _ => "unknown",
    }
}

/// A cursor over the file with endianness.
struct Cursor<'a> {
    data: &'a [u8],
    big: bool,
}

impl Cursor<'_> {
    fn u16(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.data.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
}

/// Reads a pcap or pcapng file. Packets of every link type are returned (check with
/// [`CaptureFile::require_ethernet`]).
pub fn read(path: &Path) -> Result<CaptureFile, FileError> {
    let data = std::fs::read(path).map_err(|error| FileError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    parse(path, &data)
}

/// Parses the bytes of a capture file.
pub fn parse(path: &Path, data: &[u8]) -> Result<CaptureFile, FileError> {
    let mut magic = [0u8; 4];
    let n = data.len().min(4);
    magic[..n].copy_from_slice(&data[..n]);
    let m = u32::from_le_bytes(magic);
    let (format, packets) = match m {
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => (Format::Pcap, parse_pcap(path, data)?),
        0x0a0d_0d0a => (Format::PcapNg, parse_pcapng(path, data)?),
        _ => {
            return Err(FileError::NotACapture {
                path: path.to_path_buf(),
                magic,
            });
        }
    };
    Ok(CaptureFile {
        path: path.to_path_buf(),
        format,
        packets,
    })
}

fn malformed(path: &Path, offset: usize, what: impl Into<String>) -> FileError {
    FileError::Malformed {
        path: path.to_path_buf(),
        offset,
        what: what.into(),
    }
}

/// The largest packet this reader accepts (libpcap's limit for Ethernet captures).
const MAX_PACKET: usize = 262_144;

fn parse_pcap(path: &Path, data: &[u8]) -> Result<Vec<Packet>, FileError> {
    if data.len() < 24 {
        return Err(malformed(
            path,
            data.len(),
            "the file ends inside its 24-byte header",
        ));
    }
    let magic = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let big = matches!(magic, 0xd4c3_b2a1 | 0x4d3c_b2a1);
    let nanos = matches!(magic, 0xa1b2_3c4d | 0x4d3c_b2a1);
    let c = Cursor { data, big };
    let link_type = (c.u32(20).unwrap_or(0) & 0xFFFF) as u16;
    let mut packets = Vec::new();
    let mut at = 24;
    while at < data.len() {
        let (Some(sec), Some(frac), Some(incl), Some(orig)) =
            (c.u32(at), c.u32(at + 4), c.u32(at + 8), c.u32(at + 12))
        else {
            return Err(malformed(
                path,
                at,
                format!(
                    "record {} is truncated: its 16-byte header is cut off ({} bytes left)",
                    packets.len() + 1,
                    data.len() - at
                ),
            ));
        };
        let incl = incl as usize;
        if incl > MAX_PACKET {
            return Err(malformed(
                path,
                at,
                format!(
                    "record {} claims {incl} bytes (at most {MAX_PACKET})",
                    packets.len() + 1
                ),
            ));
        }
        let start = at + 16;
        let Some(bytes) = data.get(start..start + incl) else {
            return Err(malformed(
                path,
                at,
                format!(
                    "record {} is truncated: it claims {incl} bytes, the file has {} left",
                    packets.len() + 1,
                    data.len() - start
                ),
            ));
        };
        let frac_ns = if nanos {
            i128::from(frac)
        } else {
            i128::from(frac) * 1000
        };
        packets.push(Packet {
            timestamp_ns: i128::from(sec) * 1_000_000_000 + frac_ns,
            data: bytes.to_vec(),
            orig_len: orig,
            link_type,
            offset: at,
            flags: None,
            comment: None,
        });
        at = start + incl;
    }
    Ok(packets)
}

struct Interface {
    link_type: u16,
    /// Timestamp units per second.
    units_per_sec: u128,
    snaplen: u32,
}

fn parse_pcapng(path: &Path, data: &[u8]) -> Result<Vec<Packet>, FileError> {
    let mut packets = Vec::new();
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut at = 0usize;
    let mut big = false;
    while at < data.len() {
        if data.len() - at < 12 {
            return Err(malformed(
                path,
                at,
                "a block is cut off (less than 12 bytes left)",
            ));
        }
        let block_type = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        if block_type == 0x0a0d_0d0a {
            // Section header: the byte-order magic decides the endianness of the section.
            let bom = &data[at + 8..at + 12];
            big = match bom {
                [0x1a, 0x2b, 0x3c, 0x4d] => true,
                [0x4d, 0x3c, 0x2b, 0x1a] => false,
                _ => {
                    return Err(malformed(
                        path,
                        at + 8,
                        "a section header with a bad byte-order magic",
                    ));
                }
            };
            interfaces.clear();
        }
        let c = Cursor { data, big };
        let len = c.u32(at + 4).unwrap_or(0) as usize;
        if len < 12 || !len.is_multiple_of(4) {
            return Err(malformed(
                path,
                at,
                format!("block length {len} (at least 12, a multiple of 4)"),
            ));
        }
        let Some(block) = data.get(at..at + len) else {
            return Err(malformed(
                path,
                at,
                format!(
                    "a block of {len} bytes is cut off ({} bytes left)",
                    data.len() - at
                ),
            ));
        };
        if c.u32(at + len - 4) != Some(len as u32) {
            return Err(malformed(
                path,
                at + len - 4,
                "a block's trailing length differs from its leading length",
            ));
        }
        let body = Cursor {
            data: &block[8..len - 4],
            big,
        };
        let body_len = len - 12;
        let block_type = c.u32(at).unwrap_or(0);
        match block_type {
            // Interface description: link type, snap length, options (if_tsresol).
            0x0000_0001 => {
                let (Some(lt), Some(snap)) = (body.u16(0), body.u32(4)) else {
                    return Err(malformed(path, at, "an interface block shorter than 8 bytes"));
                };
                let mut units_per_sec: u128 = 1_000_000;
                let mut o = 8;
                while o + 4 <= body_len {
                    let (code, olen) = (
                        body.u16(o).unwrap_or(0),
                        usize::from(body.u16(o + 2).unwrap_or(0)),
                    );
                    if code == 0 {
                        break;
                    }
                    if o + 4 + olen > body_len {
                        return Err(malformed(path, at + 8 + o, "an option runs past its block"));
                    }
                    if code == 9 && olen >= 1 {
                        let r = body.data[o + 4];
                        let exp = u32::from(r & 0x7f);
                        units_per_sec = if r & 0x80 == 0 {
                            10u128.checked_pow(exp).unwrap_or(0)
                        } else {
                            1u128.checked_shl(exp).unwrap_or(0)
                        };
                        if units_per_sec == 0 || exp > 30 {
                            return Err(malformed(
                                path,
                                at + 8 + o,
                                format!("timestamp resolution {r:#x}"),
                            ));
                        }
                    }
                    o += 4 + olen.next_multiple_of(4);
                }
                interfaces.push(Interface {
                    link_type: lt,
                    units_per_sec,
                    snaplen: snap,
                });
            }
            // Enhanced packet (6) and the obsolete packet block (2).
            0x0000_0006 | 0x0000_0002 => {
                let obsolete = block_type == 2;
                let (iface, ts_at) = if obsolete {
                    (body.u16(0).map(u32::from), 4)
                } else {
                    (body.u32(0), 4)
                };
                let (Some(iface), Some(hi), Some(lo), Some(cap), Some(orig)) = (
                    iface,
                    body.u32(ts_at),
                    body.u32(ts_at + 4),
                    body.u32(ts_at + 8),
                    body.u32(ts_at + 12),
                ) else {
                    return Err(malformed(
                        path,
                        at,
                        "a packet block shorter than its fixed fields",
                    ));
                };
                let Some(i) = interfaces.get(iface as usize) else {
                    return Err(malformed(
                        path,
                        at,
                        format!("a packet of interface {iface}, which was not described"),
                    ));
                };
                let cap = cap as usize;
                let start = ts_at + 16;
                if cap > MAX_PACKET || start + cap > body_len {
                    return Err(malformed(
                        path,
                        at,
                        format!("a packet of {cap} bytes does not fit its block of {len} bytes"),
                    ));
                }
                let ts = (u64::from(hi) << 32) | u64::from(lo);
                // Options after the (padded) data: epb_flags (2) and opt_comment (1).
                let (mut flags, mut comment) = (None, None);
                let mut o = start + cap.next_multiple_of(4);
                while !obsolete && o + 4 <= body_len {
                    let (code, olen) = (
                        body.u16(o).unwrap_or(0),
                        usize::from(body.u16(o + 2).unwrap_or(0)),
                    );
                    if code == 0 || o + 4 + olen > body_len {
                        break;
                    }
                    let value = &body.data[o + 4..o + 4 + olen];
                    match code {
                        2 if olen == 4 => flags = body.u32(o + 4),
                        1 => comment = Some(String::from_utf8_lossy(value).into_owned()),
                        _ => {}
                    }
                    o += 4 + olen.next_multiple_of(4);
                }
                packets.push(Packet {
                    timestamp_ns: (i128::from(ts) * 1_000_000_000 / i.units_per_sec as i128),
                    data: body.data[start..start + cap].to_vec(),
                    orig_len: orig,
                    link_type: i.link_type,
                    offset: at,
                    flags,
                    comment,
                });
            }
            // Simple packet: interface 0, no timestamp.
            0x0000_0003 => {
                let Some(orig) = body.u32(0) else {
                    return Err(malformed(path, at, "a simple packet block without its length"));
                };
                let Some(i) = interfaces.first() else {
                    return Err(malformed(path, at, "a simple packet block before any interface"));
                };
                let mut cap = (orig as usize).min(body_len - 4);
                if i.snaplen != 0 {
                    cap = cap.min(i.snaplen as usize);
                }
                packets.push(Packet {
                    timestamp_ns: 0,
                    data: body.data[4..4 + cap].to_vec(),
                    orig_len: orig,
                    link_type: i.link_type,
                    offset: at,
                    flags: None,
                    comment: None,
                });
            }
            _ => {} // section header (handled above), statistics, name resolution, custom...
        }
        at += len;
    }
    if at == 0 {
        return Err(malformed(path, 0, "an empty file"));
    }
    Ok(packets)
}

impl CaptureFile {
    /// Checks that every packet is Ethernet.
    pub fn require_ethernet(&self) -> Result<(), FileError> {
        match self.packets.iter().find(|p| p.link_type != LINKTYPE_ETHERNET) {
            Some(p) => Err(FileError::LinkType {
                path: self.path.clone(),
                link_type: p.link_type,
                offset: p.offset,
            }),
            None => Ok(()),
        }
    }
}

// ---- writing ----------------------------------------------------------------------------------

/// A pcapng writer: one section, interfaces added as they appear, enhanced packet blocks with
/// 100 ns timestamps, the direction in `epb_flags` and a comment on injected frames.
pub struct PcapNgWriter<W: Write> {
    out: W,
    interfaces: Vec<u32>,
}

/// The `opt_comment` on frames rxinject injected (Wireshark shows it as the frame comment).
pub const INJECTED_COMMENT: &str = "injected by rxinject";

fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
}

fn block(out: &mut impl Write, block_type: u32, body: &[u8]) -> io::Result<()> {
    let len = (12 + body.len().next_multiple_of(4)) as u32;
    let mut b = Vec::with_capacity(len as usize);
    b.extend_from_slice(&block_type.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(body);
    b.resize(b.len().next_multiple_of(4), 0);
    b.extend_from_slice(&len.to_le_bytes());
    out.write_all(&b)
}

/// Direction of a packet written to pcapng.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl<W: Write> PcapNgWriter<W> {
    /// Writes the section header.
    pub fn new(mut out: W, application: &str) -> io::Result<Self> {
        let mut body = Vec::new();
        body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        option(&mut body, 4, application.as_bytes()); // shb_userappl
        option(&mut body, 0, &[]);
        block(&mut out, 0x0a0d_0d0a, &body)?;
        Ok(PcapNgWriter {
            out,
            interfaces: Vec::new(),
        })
    }

    /// The interface id of adapter `if_index`, describing it first if it is new.
    pub fn interface(
        &mut self,
        if_index: u32,
        name: &str,
        description: &str,
        snaplen: u32,
    ) -> io::Result<u32> {
        if let Some(i) = self.interfaces.iter().position(|&x| x == if_index) {
            return Ok(i as u32);
        }
        let mut body = Vec::new();
        body.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&snaplen.to_le_bytes());
        option(&mut body, 2, name.as_bytes()); // if_name
        option(&mut body, 3, description.as_bytes()); // if_description
        option(&mut body, 9, &[7]); // if_tsresol: 10^-7 s (FILETIME units)
        option(&mut body, 0, &[]);
        block(&mut self.out, 1, &body)?;
        self.interfaces.push(if_index);
        Ok(self.interfaces.len() as u32 - 1)
    }

    /// Writes one packet; `timestamp` in 100 ns units since 1970-01-01 UTC.
    pub fn packet(
        &mut self,
        interface: u32,
        timestamp: u64,
        data: &[u8],
        orig_len: u32,
        direction: Direction,
        injected: bool,
    ) -> io::Result<()> {
        let mut body = Vec::with_capacity(32 + data.len());
        body.extend_from_slice(&interface.to_le_bytes());
        body.extend_from_slice(&((timestamp >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(timestamp as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&orig_len.to_le_bytes());
        body.extend_from_slice(data);
        body.resize(body.len().next_multiple_of(4), 0);
        // epb_flags: bits 0-1 are the direction (01 inbound, 10 outbound).
        let flags: u32 = match direction {
            Direction::Inbound => 1,
            Direction::Outbound => 2,
        };
        option(&mut body, 2, &flags.to_le_bytes());
        if injected {
            option(&mut body, 1, INJECTED_COMMENT.as_bytes()); // opt_comment
        }
        option(&mut body, 0, &[]);
        block(&mut self.out, 6, &body)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes a classic pcap file (microseconds, Ethernet).
pub fn write_pcap(path: &Path, packets: &[(i128, &[u8])]) -> io::Result<()> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(MAX_PACKET as u32).to_le_bytes());
    out.extend_from_slice(&u32::from(LINKTYPE_ETHERNET).to_le_bytes());
    for (ts_ns, data) in packets {
        let sec = ts_ns.div_euclid(1_000_000_000) as u32;
        let usec = (ts_ns.rem_euclid(1_000_000_000) / 1000) as u32;
        out.extend_from_slice(&sec.to_le_bytes());
        out.extend_from_slice(&usec.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    std::fs::write(path, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Vec<Vec<u8>> {
        (0..5u8)
            .map(|i| (0..60 + usize::from(i) * 7).map(|b| b as u8 ^ i).collect())
            .collect()
    }

    #[test]
    fn pcap_round_trip_and_timestamps() {
        let f = frames();
        let dir = std::env::temp_dir().join(format!("rxu-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.pcap");
        let list: Vec<(i128, &[u8])> = f
            .iter()
            .enumerate()
            .map(|(i, d)| (1_700_000_000_123_456_000 + i as i128 * 1000, d.as_slice()))
            .collect();
        write_pcap(&p, &list).unwrap();
        let c = read(&p).unwrap();
        assert_eq!(c.format, Format::Pcap);
        assert_eq!(c.packets.iter().map(|x| x.data.clone()).collect::<Vec<_>>(), f);
        assert_eq!(c.packets[1].timestamp_ns, 1_700_000_000_123_457_000);
        c.require_ethernet().unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn pcapng_round_trip_with_directions_and_two_interfaces() {
        let f = frames();
        let mut buf = Vec::new();
        {
            let mut w = PcapNgWriter::new(&mut buf, "test").unwrap();
            let a = w.interface(10, "a", "adapter a", 65535).unwrap();
            let b = w.interface(11, "b", "adapter b", 65535).unwrap();
            assert_eq!(w.interface(10, "a", "adapter a", 65535).unwrap(), a);
            for (i, d) in f.iter().enumerate() {
                let iface = if i % 2 == 0 { a } else { b };
                let dir = if i % 3 == 0 {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                };
                w.packet(
                    iface,
                    17_000_000_000_000_000 + i as u64,
                    d,
                    d.len() as u32 + 3,
                    dir,
                    i == 2,
                )
                .unwrap();
            }
        }
        let c = parse(Path::new("mem.pcapng"), &buf).unwrap();
        assert_eq!(c.format, Format::PcapNg);
        assert_eq!(c.packets.iter().map(|x| x.data.clone()).collect::<Vec<_>>(), f);
        assert_eq!(c.packets[0].orig_len, f[0].len() as u32 + 3);
        // 100 ns units -> ns.
        assert_eq!(c.packets[1].timestamp_ns, (17_000_000_000_000_000i128 + 1) * 100);
        // Directions and the injected comment read back.
        assert_eq!(c.packets[0].direction(), Some(Direction::Inbound));
        assert_eq!(c.packets[1].direction(), Some(Direction::Outbound));
        assert_eq!(c.packets[2].comment.as_deref(), Some(INJECTED_COMMENT));
        assert_eq!(c.packets[3].comment, None);
    }

    #[test]
    fn malformed_files_say_where() {
        let f = frames();
        let dir = std::env::temp_dir().join(format!("rxu-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.pcap");
        let list: Vec<(i128, &[u8])> = f.iter().map(|d| (0, d.as_slice())).collect();
        write_pcap(&p, &list).unwrap();
        let good = std::fs::read(&p).unwrap();
        // Truncated in the middle of the third record's data.
        let cut = 24 + (16 + f[0].len()) + (16 + f[1].len()) + 16 + 10;
        let e = parse(&p, &good[..cut]).unwrap_err().to_string();
        assert!(
            e.contains("record 3 is truncated") && e.contains(&format!("offset {}", cut - 26)),
            "{e}"
        );
        // Cut inside a record header.
        let e = parse(&p, &good[..24 + 8]).unwrap_err().to_string();
        assert!(e.contains("16-byte header is cut off"), "{e}");
        // Not a capture.
        let e = parse(&p, b"GIF89a...").unwrap_err().to_string();
        assert!(e.contains("not a pcap or pcapng"), "{e}");
        // A raw-IP capture.
        let mut raw = good.clone();
        raw[20] = 101;
        let c = parse(&p, &raw).unwrap();
        let e = c.require_ethernet().unwrap_err().to_string();
        assert!(e.contains("link type 101 (RAW"), "{e}");
        // pcapng: a block length that runs past the end, and a bad trailer.
        let mut ng = Vec::new();
        {
            let mut w = PcapNgWriter::new(&mut ng, "t").unwrap();
            let i = w.interface(1, "x", "x", 0).unwrap();
            w.packet(i, 0, &f[0], 60, Direction::Inbound, false).unwrap();
        }
        let e = parse(&p, &ng[..ng.len() - 8]).unwrap_err().to_string();
        assert!(e.contains("cut off"), "{e}");
        let mut bad = ng.clone();
        let n = bad.len();
        bad[n - 1] ^= 0x40;
        let e = parse(&p, &bad).unwrap_err().to_string();
        assert!(e.contains("trailing length"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_reader_never_panics_on_garbage() {
        let mut ng = Vec::new();
        {
            let mut w = PcapNgWriter::new(&mut ng, "t").unwrap();
            let i = w.interface(1, "x", "x", 0).unwrap();
            for f in frames() {
                w.packet(i, 5, &f, f.len() as u32, Direction::Outbound, true)
                    .unwrap();
            }
        }
        let mut x: u64 = 0x9e37_79b9;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..5000 {
            let mut b = ng.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % b.len() as u64) as usize;
                b[at] = next() as u8;
            }
            if next() % 3 == 0 {
                b.truncate((next() % b.len() as u64) as usize);
            }
            let _ = parse(Path::new("fuzz"), &b);
        }
    }
}
