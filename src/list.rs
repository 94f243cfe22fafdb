//! An intrusive singly linked list of the driver's objects (the attached filter modules, a
//! module's captures): each item carries its own link, so listing and unlinking allocate
//! nothing and cannot fail.
//!
//! The list is not synchronised. Its owner keeps it under a spin lock, and an item stays alive
//! while it is listed: it is unlinked, under that lock, before it is freed. Every method runs
//! at any IRQL the lock allows.

use core::marker::PhantomData;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

/// An item of a [`List`]: it holds the link to the next item.
pub trait Linked: Sized {
    fn link(&self) -> &AtomicPtr<Self>;
}

/// A list of `T`, newest first.
pub struct List<T: Linked> {
    head: *mut T,
    len: usize,
    _items: PhantomData<T>,
}

// SAFETY: the pointers are followed only by the lock holder, and the items are shared between
// threads anyway (they are Sync).
unsafe impl<T: Linked + Sync> Send for List<T> {}

impl<T: Linked> List<T> {
    pub const fn new() -> Self {
        List {
            head: ptr::null_mut(),
            len: 0,
            _items: PhantomData,
        }
    }

    /// Links `item` at the front. It must not be listed already, and must stay alive until it
    /// is removed.
    pub fn push(&mut self, item: &T) {
        item.link().store(self.head, Ordering::Relaxed);
        self.head = ptr::from_ref(item).cast_mut();
        self.len += 1;
    }

    /// Unlinks `item`; false if it was not listed.
    pub fn remove(&mut self, item: &T) -> bool {
        let target = ptr::from_ref(item).cast_mut();
        let mut link: *const AtomicPtr<T> = ptr::null();
        let mut cur = self.head;
        while !cur.is_null() {
            // SAFETY: listed items are alive (module contract).
            let next = unsafe { (*cur).link().load(Ordering::Relaxed) };
            if cur == target {
                if link.is_null() {
                    self.head = next;
                } else {
                    // SAFETY: `link` is the link of a listed, live item before `cur`.
                    unsafe { (*link).store(next, Ordering::Relaxed) };
                }
                self.len -= 1;
                return true;
            }
            // SAFETY: as above.
            link = unsafe { (*cur).link() };
            cur = next;
        }
        false
    }

    /// The items, newest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        let mut cur = self.head;
        core::iter::from_fn(move || {
            // SAFETY: listed items are alive while the list is borrowed (module contract).
            let item = unsafe { cur.as_ref() }?;
            cur = item.link().load(Ordering::Relaxed);
            Some(item)
        })
    }

    /// The newest item.
    pub fn first(&self) -> Option<&T> {
        // SAFETY: as in `iter`.
        unsafe { self.head.as_ref() }
    }

    pub fn contains(&self, item: &T) -> bool {
        self.iter().any(|x| ptr::eq(x, item))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T: Linked> Default for List<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Item {
        id: u32,
        next: AtomicPtr<Item>,
    }

    impl Linked for Item {
        fn link(&self) -> &AtomicPtr<Self> {
            &self.next
        }
    }

    fn item(id: u32) -> Item {
        Item {
            id,
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }

    fn ids(l: &List<Item>) -> [u32; 4] {
        let mut out = [0; 4];
        for (o, i) in out.iter_mut().zip(l.iter()) {
            *o = i.id;
        }
        out
    }

    #[test]
    fn push_iterate_and_remove_from_the_front_middle_and_back() {
        let (a, b, c, d) = (item(1), item(2), item(3), item(4));
        let mut l = List::new();
        assert!(l.is_empty() && l.first().is_none());
        for i in [&a, &b, &c, &d] {
            l.push(i);
        }
        assert_eq!((ids(&l), l.len()), ([4, 3, 2, 1], 4));
        assert!(l.remove(&c), "middle");
        assert_eq!(ids(&l), [4, 2, 1, 0]);
        assert!(l.remove(&d), "front");
        assert_eq!(ids(&l), [2, 1, 0, 0]);
        assert!(l.remove(&a), "back");
        assert_eq!((ids(&l), l.len()), ([2, 0, 0, 0], 1));
        assert!(!l.remove(&a), "not listed any more");
        assert!(l.contains(&b) && !l.contains(&c));
        assert_eq!(l.first().map(|i| i.id), Some(2));
        assert!(l.remove(&b));
        assert!(l.is_empty() && l.first().is_none());
        l.push(&c);
        assert_eq!(ids(&l), [3, 0, 0, 0], "a removed item can be listed again");
    }
}
