//! Frame data: the bytes of a `NET_BUFFER`, read through its MDL chain, and a view of a frame
//! as it is on the wire (with its 802.1Q tag back in the header when NDIS carries the tag out
//! of band). Capture copies frames and runs BPF over them through this view.

use core::ptr;

use ndis_sys::*;

/// The system address of an MDL's data: its mapping if it has one, otherwise a new mapping
/// (`MmGetSystemAddressForMdlSafe`). Null if the pages cannot be mapped now. IRQL <=
/// DISPATCH_LEVEL.
///
/// # Safety
/// `mdl` is a valid, locked MDL of a buffer the caller may use (an NBL it holds, or the MDL
/// of a direct-I/O request not yet completed).
pub(crate) unsafe fn mdl_address(mdl: *mut MDL) -> *const u8 {
    // SAFETY: caller's contract.
    let m = unsafe { &*mdl };
    if m.MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0 {
        return m.MappedSystemVa.cast();
    }
    // SAFETY: a locked MDL (NDIS buffers and direct-I/O requests' always are); kernel mode mapping without execute
    // rights, no bug check on failure (a null return means "not now").
    unsafe {
        MmMapLockedPagesSpecifyCache(
            mdl,
            KernelMode,
            MmCached,
            ptr::null_mut(),
            0,
            NormalPagePriority | MdlMappingNoExecute,
        )
        .cast()
    }
}

/// Copies `out.len()` bytes of `nb`'s data, starting `offset` bytes into it. Returns false if
/// the range is not inside the data, or a page cannot be mapped. IRQL <= DISPATCH_LEVEL.
///
/// # Safety
/// `nb` is a valid NET_BUFFER the caller holds (its MDLs and data are live).
pub unsafe fn nb_read(nb: *const NET_BUFFER, offset: usize, out: &mut [u8]) -> bool {
    // SAFETY: caller's contract.
    let n = unsafe { &*nb };
    let len = n.DataLength.get() as usize;
    if offset.checked_add(out.len()).is_none_or(|end| end > len) {
        return false;
    }
    let mut mdl = n.CurrentMdl;
    let mut skip = n.CurrentMdlOffset as usize + offset;
    let mut done = 0;
    // Bounded: an MDL chain longer than this is corrupt.
    for _ in 0..1024 {
        if done == out.len() {
            return true;
        }
        if mdl.is_null() {
            return false;
        }
        // SAFETY: an MDL of the NB's chain (caller's contract).
        let m = unsafe { &*mdl };
        let (count, next) = (m.ByteCount as usize, m.Next);
        if skip >= count {
            skip -= count;
            mdl = next;
            continue;
        }
        // SAFETY: as above.
        let base = unsafe { mdl_address(mdl) };
        if base.is_null() {
            return false;
        }
        let take = (count - skip).min(out.len() - done);
        let dst = &mut out[done..done + take];
        // SAFETY: the MDL describes `count` readable bytes at `base` and `skip + take <=
        // count`; `dst` is ours and does not overlap NDIS's buffer.
        let src = unsafe { core::slice::from_raw_parts(base.wrapping_add(skip), take) };
        copy_bytes(dst, src);
        done += take;
        skip = 0;
        mdl = next;
    }
    done == out.len()
}

/// `dst.copy_from_slice(src)`, with the sizes BPF loads use (1, 2, 4 bytes) copied inline: a
/// call to `memcpy` for one byte costs more than the load.
#[inline]
fn copy_bytes(dst: &mut [u8], src: &[u8]) {
    match (dst.len(), src.len()) {
        (1, 1) => dst[0] = src[0],
        (2, 2) => dst[..2].copy_from_slice(&src[..2]),
        (4, 4) => dst[..4].copy_from_slice(&src[..4]),
        _ => dst.copy_from_slice(src),
    }
}

/// A frame as it is on the wire: a NET_BUFFER's data, with the 802.1Q tag inserted after the
/// MAC addresses when the NBL carries it out of band.
pub struct FrameView {
    nb: *const NET_BUFFER,
    data_len: usize,
    /// The NBL's `Ieee8021QNetBufferListInfo` when the view puts its tag back, else 0.
    tag_info: usize,
    /// The data in the NET_BUFFER's current MDL (see `Packet::head`), found once.
    head: *const u8,
    head_len: usize,
}

/// Bytes before an 802.1Q tag: destination and source MAC addresses.
const TAG_AT: usize = 12;

impl FrameView {
    /// The view of `nb`, with the tag of `ieee8021q_info` (the NBL's
    /// `Ieee8021QNetBufferListInfo`; 0 when there is none).
    ///
    /// # Safety
    /// `nb` is a valid NET_BUFFER the caller holds for as long as the view is used.
    pub unsafe fn new(nb: *const NET_BUFFER, ieee8021q_info: usize) -> Self {
        // SAFETY: caller's contract.
        let data_len = unsafe { (*nb).DataLength.get() } as usize;
        let tag_info = if data_len >= TAG_AT { ieee8021q_info } else { 0 };
        let (head, head_len) = if tag_info != 0 {
            (core::ptr::null(), 0)
        } else {
            // SAFETY: the caller's contract.
            unsafe { first_segment(nb, data_len) }
        };
        FrameView {
            nb,
            data_len,
            tag_info,
            head,
            head_len,
        }
    }

    /// Whether the view re-inserted an out-of-band tag.
    #[inline(always)]
    pub fn tag_restored(&self) -> bool {
        self.tag_info != 0
    }

    /// The 802.1Q tag the view puts back, as on the wire.
    fn tag(&self) -> [u8; 4] {
        let tci = tci_from_ieee8021q_info(self.tag_info).to_be_bytes();
        [0x81, 0x00, tci[0], tci[1]]
    }

    fn read_data(&self, offset: usize, out: &mut [u8]) -> bool {
        // SAFETY: the constructor's contract keeps `nb` valid while the view is used.
        unsafe { nb_read(self.nb, offset, out) }
    }
}

/// The data of `nb` in its current MDL: its start and length (at most `data_len`), or null
/// when the MDL is missing, unmapped or empty there.
///
/// # Safety
/// `nb` is a valid NET_BUFFER.
#[inline(always)]
unsafe fn first_segment(nb: *const NET_BUFFER, data_len: usize) -> (*const u8, usize) {
    // SAFETY: the caller's contract.
    let n = unsafe { &*nb };
    let mdl = n.CurrentMdl;
    if mdl.is_null() {
        return (core::ptr::null(), 0);
    }
    // SAFETY: the NB's current MDL, valid with it.
    let count = unsafe { (*mdl).ByteCount } as usize;
    let off = n.CurrentMdlOffset as usize;
    if off >= count {
        return (core::ptr::null(), 0);
    }
    // SAFETY: as above.
    let base = unsafe { mdl_address(mdl) };
    if base.is_null() {
        return (core::ptr::null(), 0);
    }
    // The MDL describes `count` readable bytes at `base`, and `off < count`.
    (base.wrapping_add(off), (count - off).min(data_len))
}

impl rxinject_bpf::Packet for FrameView {
    fn len(&self) -> usize {
        self.data_len + if self.tag_restored() { 4 } else { 0 }
    }

    /// The data in the NET_BUFFER's current MDL (a NIC's receive buffer usually holds the
    /// whole frame): BPF loads inside it read there, without walking the chain or copying.
    /// None for a frame whose tag the view re-inserts (its bytes are not contiguous).
    #[inline(always)]
    fn head(&self) -> &[u8] {
        if self.head.is_null() {
            return &[];
        }
        // SAFETY: `first_segment` found `head_len` readable bytes at `head`, valid (and
        // unwritten by us) while the NET_BUFFER is, which the constructor's contract keeps
        // for as long as the view is used.
        unsafe { core::slice::from_raw_parts(self.head, self.head_len) }
    }

    fn read(&self, offset: usize, out: &mut [u8]) -> bool {
        if !self.tag_restored() {
            return self.read_data(offset, out);
        }
        let tag = self.tag();
        let Some(end) = offset.checked_add(out.len()).filter(|&e| e <= self.len()) else {
            return false;
        };
        // Three regions: MAC addresses (data 0..12), the tag (4 bytes), the rest (data 12..).
        let mut at = offset;
        let mut ok = true;
        while at < end && ok {
            let dst = &mut out[at - offset..];
            let n;
            if at < TAG_AT {
                n = (TAG_AT - at).min(end - at);
                ok = self.read_data(at, &mut dst[..n]);
            } else if at < TAG_AT + 4 {
                n = (TAG_AT + 4 - at).min(end - at);
                dst[..n].copy_from_slice(&tag[at - TAG_AT..at - TAG_AT + n]);
            } else {
                n = end - at;
                ok = self.read_data(at - 4, &mut dst[..n]);
            }
            at += n;
        }
        ok
    }
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use super::*;
    use core::mem::MaybeUninit;
    use rxinject_bpf::Packet;
    use std::boxed::Box;
    use std::vec::Vec;

    /// A NET_BUFFER over `pieces` (each its own mapped MDL), its data starting `offset` bytes
    /// into the first.
    #[allow(clippy::vec_box)] // boxed so each MDL keeps its address when the vector grows
    pub(crate) struct TestNb {
        pub(crate) nb: Box<NET_BUFFER>,
        _mdls: Vec<Box<MDL>>,
        _data: Vec<Vec<u8>>,
    }

    pub(crate) fn test_nb(pieces: &[&[u8]], offset: usize) -> TestNb {
        let data: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
        let mut mdls: Vec<Box<MDL>> = data
            .iter()
            .map(|d| {
                // SAFETY: MDL is plain data; all-zero is a valid value.
                let mut m: Box<MDL> = unsafe { Box::new(MaybeUninit::zeroed().assume_init()) };
                m.MdlFlags = MDL_SOURCE_IS_NONPAGED_POOL | MDL_MAPPED_TO_SYSTEM_VA;
                m.MappedSystemVa = d.as_ptr().cast_mut().cast();
                m.ByteCount = d.len() as u32;
                m
            })
            .collect();
        for i in 0..mdls.len().saturating_sub(1) {
            let next: *mut MDL = &mut *mdls[i + 1];
            mdls[i].Next = next;
        }
        // SAFETY: NET_BUFFER is plain data; all-zero is a valid value.
        let mut nb: Box<NET_BUFFER> = unsafe { Box::new(MaybeUninit::zeroed().assume_init()) };
        nb.CurrentMdl = &mut *mdls[0];
        nb.MdlChain = nb.CurrentMdl;
        nb.CurrentMdlOffset = offset as u32;
        nb.DataOffset = offset as u32;
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        nb.DataLength.set((total - offset) as u32);
        TestNb {
            nb,
            _mdls: mdls,
            _data: data,
        }
    }

    fn frame() -> Vec<u8> {
        (0u8..40).collect()
    }

    #[test]
    fn reads_cross_mdl_boundaries_and_respect_the_data_start() {
        let f = frame();
        // 5 bytes of headroom, then the frame in pieces of 10, 3 and 27 bytes.
        let mut first = std::vec![0xEE; 5];
        first.extend_from_slice(&f[..10]);
        let t = test_nb(&[&first, &f[10..13], &f[13..]], 5);
        let mut all = std::vec![0u8; 40];
        // SAFETY: a live test NB.
        assert!(unsafe { nb_read(&*t.nb, 0, &mut all) });
        assert_eq!(all, f);
        for (offset, len) in [(0, 1), (9, 2), (10, 3), (12, 5), (39, 1), (0, 40)] {
            let mut out = std::vec![0u8; len];
            // SAFETY: as above.
            assert!(unsafe { nb_read(&*t.nb, offset, &mut out) });
            assert_eq!(out, f[offset..offset + len]);
        }
        let mut out = [0u8; 2];
        // SAFETY: as above.
        assert!(!unsafe { nb_read(&*t.nb, 39, &mut out) }, "past the end");
        // SAFETY: as above.
        let overflowing = unsafe { nb_read(&*t.nb, usize::MAX, &mut out) };
        assert!(!overflowing, "overflowing offset");
    }

    #[test]
    fn the_view_puts_an_out_of_band_tag_back() {
        let f = frame();
        let t = test_nb(&[&f[..7], &f[7..]], 0);
        let info = ieee8021q_info_from_tci(0xA064);
        // SAFETY: a live test NB.
        let view = unsafe { FrameView::new(&*t.nb, info) };
        assert!(view.tag_restored());
        assert_eq!(view.len(), 44);
        let mut out = std::vec![0u8; 44];
        assert!(view.read(0, &mut out));
        let mut expected = f[..12].to_vec();
        expected.extend_from_slice(&[0x81, 0x00, 0xA0, 0x64]);
        expected.extend_from_slice(&f[12..]);
        assert_eq!(out, expected);
        // Every sub-range agrees with the whole.
        for offset in 0..44 {
            for len in 0..=(44 - offset).min(6) {
                let mut part = std::vec![0u8; len];
                assert!(view.read(offset, &mut part), "{offset}+{len}");
                assert_eq!(part, expected[offset..offset + len]);
            }
        }
        let mut one = [0u8; 1];
        assert!(!view.read(44, &mut one));
        // Without a tag the view is the data.
        // SAFETY: as above.
        let plain = unsafe { FrameView::new(&*t.nb, 0) };
        assert_eq!(plain.len(), 40);
        let mut out = std::vec![0u8; 40];
        assert!(plain.read(0, &mut out));
        assert_eq!(out, f);
    }
}
