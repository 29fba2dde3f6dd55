//! Where a thread's cache lies in memory, chosen once, when it is installed.
//!
//! A hit stores to two places the crate allocates, the cache's hot line and the magazine slot of
//! the object, and loads from three it does not choose: the thread's index cell (in its TLS
//! block), the pool's own fields (wherever the user keeps the pool) and the pool's table entry
//! for the thread. A load whose address has the same low 12 bits as an earlier store that is
//! still in flight, but lies on another page, waits for that store ("4 KiB aliasing"), and
//! where the data of a cache met one of those addresses modulo 4 KiB, every hit on it paid: a
//! few caches in each run were 1.2 to 2.9 times slower than the others of the same process, for
//! as long as they lived, whichever thread used them (`benches/hit_spread.rs` prints each
//! thread's addresses beside its time). Which caches were slow changed with the allocator's
//! layout from one process to the next.
//!
//! All five addresses are known when a thread installs its cache, so the install draws the
//! cache's allocation and its first magazine's buffer again (up to [`TRIES`] times, keeping the
//! rejected blocks until the choice is made, then freeing them) until neither comes within
//! [`MARGIN`] bytes of the others modulo 4 KiB. It costs nothing on the hit and nothing in
//! memory once the choice is made. What it cannot see: the user's own stack slots and objects,
//! magazines that arrive later from other threads or the depot, and a pool that moves after its
//! first use (its address at that use is the one avoided).

use std::mem::{self, MaybeUninit};

/// The span of addresses that 4 KiB aliasing compares.
const PAGE: usize = 4096;

/// How close (in bytes, modulo [`PAGE`]) two spans may come. The comparison is made on the
/// addresses of whole accesses, and an access of up to 16 bytes that starts just before a span
/// still overlaps it.
pub(crate) const MARGIN: usize = 16;

/// How many blocks an install draws at most before it takes the last one.
pub(crate) const TRIES: usize = 16;

/// A range of bytes that a hit touches: `len` bytes from address `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) len: usize,
}

impl Span {
    pub(crate) const fn new(start: usize, len: usize) -> Self {
        Span { start, len }
    }

    /// Whether the two spans come within [`MARGIN`] bytes of each other modulo 4 KiB. An empty
    /// span (a zero address, something the install does not know) meets nothing.
    pub(crate) fn meets(self, other: Span) -> bool {
        if self.start == 0 || other.start == 0 {
            return false;
        }
        if self.len + other.len + 2 * MARGIN >= PAGE {
            return true;
        }
        // Where `other` starts, measured from `self`'s start, modulo 4 KiB; the two meet when it
        // starts within `self` (widened by the margin after it) or ends within the margin before
        // `self`'s start.
        let d = other.start.wrapping_sub(self.start) % PAGE;
        d < self.len + MARGIN || d + other.len + MARGIN > PAGE
    }

    /// Whether the span meets none of `others`.
    pub(crate) fn clear_of(self, others: &[Span]) -> bool {
        others.iter().all(|&o| !self.meets(o))
    }
}

/// An uninitialised box for a `T` whose bytes `span(address)` are clear of `avoid`: up to
/// [`TRIES`] draws, then the last one drawn.
pub(crate) fn box_clear_of<T>(span: impl Fn(usize) -> Span, avoid: &[Span]) -> Box<MaybeUninit<T>> {
    let mut rejected = Vec::new();
    let mut boxed = Box::<T>::new_uninit();
    while rejected.len() + 1 < TRIES && !span(boxed.as_ptr() as usize).clear_of(avoid) {
        rejected.push(mem::replace(&mut boxed, Box::new_uninit()));
    }
    boxed
}

/// An empty `Vec` with room for `cap` elements whose first `prefix` elements are clear of
/// `avoid`: up to [`TRIES`] allocations, then the last one. A zero-sized `T` has no buffer
/// to place.
pub(crate) fn vec_clear_of<T>(cap: usize, prefix: usize, avoid: &[Span]) -> Vec<T> {
    let span = |v: &Vec<T>| Span::new(v.as_ptr() as usize, prefix * mem::size_of::<T>());
    let mut v = Vec::with_capacity(cap);
    if mem::size_of::<T>() == 0 || cap == 0 {
        return v;
    }
    let mut rejected = Vec::new();
    while rejected.len() + 1 < TRIES && !span(&v).clear_of(avoid) {
        rejected.push(mem::replace(&mut v, Vec::with_capacity(cap)));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_meet_modulo_4_kib_within_the_margin() {
        let hot = Span::new(0x1000_0900, 64);
        // The same low 12 bits on another page, inside the span.
        assert!(hot.meets(Span::new(0x7fff_0920, 8)));
        // Just past the end, within the margin; and just past the margin.
        assert!(hot.meets(Span::new(0x7fff_0940 + MARGIN - 1, 8)));
        assert!(!hot.meets(Span::new(0x7fff_0940 + MARGIN, 8)));
        // Ending just before the start, within the margin; and clear of it.
        assert!(hot.meets(Span::new(0x7fff_0900 - 8 - MARGIN + 1, 8)));
        assert!(!hot.meets(Span::new(0x7fff_0900 - 8 - MARGIN, 8)));
        // Wrapping around the page: a span at the end of one page against one at the start.
        let low = Span::new(0x2000_0004, 8);
        assert!(low.meets(Span::new(0x3000_0ff8, 8)));
        assert!(Span::new(0x3000_0ff8, 8).meets(low));
        // Far apart modulo 4 KiB, though on neighbouring pages.
        assert!(!hot.meets(Span::new(0x1000_1200, 64)));
        // An unknown address meets nothing.
        assert!(!hot.meets(Span::new(0, 8)));
    }

    #[test]
    fn a_drawn_box_and_buffer_are_clear_of_what_they_avoid() {
        // Avoid an eighth of every page: the draws walk through the allocator's blocks (the
        // rejected ones are held, so every draw is a new block) until one lands elsewhere.
        let avoid = [Span::new(0x4000_0000, 512)];
        for _ in 0..64 {
            let b = box_clear_of::<[u64; 8]>(|a| Span::new(a, 64), &avoid);
            let at = b.as_ptr() as usize;
            assert!(Span::new(at, 64).clear_of(&avoid), "box at {at:#x}");
            let v = vec_clear_of::<[u64; 3]>(32, 2, &avoid);
            let buf = Span::new(v.as_ptr() as usize, 48);
            assert!(buf.clear_of(&avoid), "buffer at {:p}", v.as_ptr());
            assert_eq!((v.capacity(), v.len()), (32, 0));
        }
        assert_eq!(vec_clear_of::<()>(8, 2, &avoid).len(), 0);
    }
}
