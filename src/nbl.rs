//! NBL chains: walking, counting and splitting own from foreign NBLs in one pass.
//!
//! This is the ownership decision of the whole driver (rules R8, S3): a chain handed back by
//! NDIS may mix NBLs the filter allocated with NBLs of other drivers, from several
//! operations, in any order. Every NBL is classified by its own `SourceHandle`, never by the
//! first NBL of the chain (the seed's bug).

use core::ptr;

use ndis_sys::{NDIS_HANDLE, NDIS_STATUS, NET_BUFFER_LIST};

/// A singly linked chain of NBLs with O(1) append, built by the filter.
pub struct NblChain {
    head: *mut NET_BUFFER_LIST,
    tail: *mut NET_BUFFER_LIST,
    len: u32,
}

impl NblChain {
    /// An empty chain.
    pub const fn new() -> Self {
        NblChain {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            len: 0,
        }
    }

    /// Appends one NBL, terminating the chain after it.
    ///
    /// # Safety
    /// `nbl` is a valid NBL the caller owns and that is in no other chain being built.
    pub unsafe fn push_back(&mut self, nbl: *mut NET_BUFFER_LIST) {
        // SAFETY: the caller owns `nbl`; rewriting its link is what owning a chain means.
        unsafe { (*nbl).Next = ptr::null_mut() };
        if self.tail.is_null() {
            self.head = nbl;
        } else {
            // SAFETY: `tail` was appended earlier under the same contract.
            unsafe { (*self.tail).Next = nbl };
        }
        self.tail = nbl;
        self.len += 1;
    }

    /// The first NBL, or null.
    pub fn head(&self) -> *mut NET_BUFFER_LIST {
        self.head
    }

    /// Number of NBLs.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.head.is_null()
    }
}

impl Default for NblChain {
    fn default() -> Self {
        Self::new()
    }
}

/// Iterates over a chain by following `Next`; the next link is read before the current NBL
/// is yielded, so the caller may relink or release what it is given.
pub struct Iter {
    next: *mut NET_BUFFER_LIST,
}

impl Iterator for Iter {
    type Item = *mut NET_BUFFER_LIST;

    fn next(&mut self) -> Option<Self::Item> {
        let current = self.next;
        if current.is_null() {
            return None;
        }
        // SAFETY: `iter`'s contract: every NBL of the chain is valid when reached.
        self.next = unsafe { (*current).Next };
        Some(current)
    }
}

/// Iterates over the chain starting at `head`.
///
/// # Safety
/// Every NBL reachable from `head` stays valid while the iterator reaches it, and the chain
/// is terminated by a null `Next`.
pub unsafe fn iter(head: *mut NET_BUFFER_LIST) -> Iter {
    Iter { next: head }
}

/// Sets `NET_BUFFER_LIST_STATUS` on every NBL of a chain the caller owns (rule S6).
///
/// # Safety
/// As for [`iter`]; the caller owns every NBL of the chain.
pub unsafe fn set_status(head: *mut NET_BUFFER_LIST, status: NDIS_STATUS) {
    // SAFETY: the caller's contract covers the walk.
    for nbl in unsafe { iter(head) } {
        // SAFETY: owned NBL; writing its status is the owner's right.
        unsafe { (*nbl).Status = status };
    }
}

/// Own NBLs removed from a chain, and what is left of the chain for its owners.
pub struct Split {
    /// NBLs whose `SourceHandle` is the filter's handle, in chain order.
    pub own: NblChain,
    /// The remaining (foreign) NBLs, still linked in their original order; null if none.
    pub foreign: *mut NET_BUFFER_LIST,
    /// Number of foreign NBLs.
    pub foreign_len: u32,
}

/// Removes the NBLs whose `SourceHandle` equals `own_handle` from the chain at `head`, in one
/// pass. Foreign NBLs keep their order and their links, except where an own NBL is
/// unlinked from between two of them. When the chain holds no own NBL, nothing is written.
///
/// # Safety
/// As for [`iter`]; the caller holds every NBL of the chain (NDIS just handed it over).
pub unsafe fn split_own(head: *mut NET_BUFFER_LIST, own_handle: NDIS_HANDLE) -> Split {
    let mut own = NblChain::new();
    let push = |nbl| {
        // SAFETY: an own NBL of the caller's chain, unlinked from the foreign chain and in
        // no other.
        unsafe { own.push_back(nbl) }
    };
    // SAFETY: the caller's contract.
    let (foreign, foreign_len) = unsafe { split_own_with(head, own_handle, push) };
    Split {
        own,
        foreign,
        foreign_len,
    }
}

/// [`split_own`] handing each own NBL, unlinked from the chain, to `on_own` as it is found,
/// in chain order (a caller that takes them back at once walks the chain once, not twice).
/// Returns the foreign chain (null if none) and its length.
///
/// # Safety
/// As for [`split_own`]. `on_own` gets each own NBL after the walk has read its `Next`: it
/// may relink it.
#[inline(always)]
pub unsafe fn split_own_with(
    head: *mut NET_BUFFER_LIST,
    own_handle: NDIS_HANDLE,
    mut on_own: impl FnMut(*mut NET_BUFFER_LIST),
) -> (*mut NET_BUFFER_LIST, u32) {
    let (mut foreign, mut foreign_len) = (head, 0u32);
    let mut last_foreign: *mut NET_BUFFER_LIST = ptr::null_mut();
    // SAFETY: the caller's contract covers the walk; `iter` reads `Next` before yielding, so
    // relinking the yielded NBL is fine.
    for nbl in unsafe { iter(head) } {
        // Fields read through raw pointers: a reference to the whole NET_BUFFER_LIST would
        // cover info slots that an older NDIS may not have allocated.
        // SAFETY: `nbl` is valid (contract of `iter`): its fields.
        let source = unsafe { ptr::addr_of!((*nbl).SourceHandle) };
        // SAFETY: as above.
        let next = unsafe { ptr::addr_of!((*nbl).Next) };
        // SAFETY: as above.
        let source = unsafe { source.read() };
        // SAFETY: as above.
        let next = unsafe { next.read() };
        if source == own_handle {
            if last_foreign.is_null() {
                foreign = next;
            } else {
                // SAFETY: `last_foreign` is an earlier NBL of this chain, still valid.
                unsafe { (*last_foreign).Next = next };
            }
            on_own(nbl);
        } else {
            last_foreign = nbl;
            foreign_len += 1;
        }
    }
    (foreign, foreign_len)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::mem::MaybeUninit;
    use std::boxed::Box;
    use std::vec::Vec;

    const OWN: usize = 0x1000;

    /// NBLs in test memory (the walk only touches `Next` and `SourceHandle`). Boxed so each
    /// NBL keeps its address however the test moves the vector around.
    #[allow(clippy::vec_box)]
    fn nbls(sources: &[usize]) -> Vec<Box<NET_BUFFER_LIST>> {
        let mut v: Vec<Box<NET_BUFFER_LIST>> = sources
            .iter()
            .map(|&s| {
                // SAFETY: NET_BUFFER_LIST is plain data; all-zero is a valid value.
                let mut nbl: Box<NET_BUFFER_LIST> = unsafe { Box::new(MaybeUninit::zeroed().assume_init()) };
                nbl.SourceHandle = s as NDIS_HANDLE;
                nbl
            })
            .collect();
        for i in 0..v.len().saturating_sub(1) {
            let next: *mut NET_BUFFER_LIST = &mut *v[i + 1];
            v[i].Next = next;
        }
        v
    }

    fn walk(head: *mut NET_BUFFER_LIST) -> Vec<usize> {
        // SAFETY: test chains are built from live boxes.
        unsafe { iter(head) }
            // SAFETY: as above.
            .map(|n| unsafe { (*n).SourceHandle } as usize)
            .collect()
    }

    #[test]
    fn an_all_foreign_chain_is_returned_untouched() {
        let mut v = nbls(&[1, 2, 3]);
        let head: *mut _ = &mut *v[0];
        // SAFETY: live test chain.
        let s = unsafe { split_own(head, OWN as NDIS_HANDLE) };
        assert!(s.own.is_empty());
        assert_eq!(s.foreign, head);
        assert_eq!(s.foreign_len, 3);
        assert_eq!(walk(s.foreign), [1, 2, 3]);
    }

    #[test]
    fn mixed_chain_in_any_order_is_split_by_each_nbls_source() {
        // Own first (a first-NBL classifier would call the whole chain ours), own last,
        // own in the middle, adjacent owns.
        for sources in [
            std::vec![OWN, 1, 2],
            std::vec![1, 2, OWN],
            std::vec![1, OWN, 2, OWN, OWN, 3],
            std::vec![OWN, OWN],
            std::vec![2],
        ] {
            let mut v = nbls(&sources);
            let head: *mut _ = &mut *v[0];
            // SAFETY: live test chain.
            let s = unsafe { split_own(head, OWN as NDIS_HANDLE) };
            let expected_foreign: Vec<usize> = sources.iter().copied().filter(|&x| x != OWN).collect();
            assert_eq!(walk(s.foreign), expected_foreign, "{sources:?}");
            assert_eq!(s.foreign_len as usize, expected_foreign.len());
            assert_eq!(
                walk(s.own.head()),
                std::vec![OWN; sources.len() - expected_foreign.len()]
            );
            assert_eq!(s.own.len() as usize, sources.len() - expected_foreign.len());
        }
    }

    #[test]
    fn chain_builder_links_and_terminates() {
        let mut v = nbls(&[7, 8, 9]);
        let mut c = NblChain::new();
        for b in v.iter_mut().rev() {
            // SAFETY: live test NBLs, each pushed once.
            unsafe { c.push_back(&mut **b) };
        }
        assert_eq!(walk(c.head()), [9, 8, 7]);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn status_is_set_on_every_nbl() {
        let mut v = nbls(&[1, 2]);
        // SAFETY: live test chain.
        unsafe { set_status(&mut *v[0], ndis_sys::NDIS_STATUS_PAUSED) };
        assert!(v.iter().all(|n| n.Status == ndis_sys::NDIS_STATUS_PAUSED));
    }
}
