//! Moving an object into and out of a magazine slot one 8-byte word at a time.
//!
//! A hit reads back, a few instructions later, an object that the previous return wrote. With
//! `ptr::read`/`ptr::write` the compiler picks the widths: a 24-byte `Vec` may be written as three
//! 8-byte stores (the caller has just changed its length) and read back as a 16-byte and an 8-byte
//! load. A load that spans two earlier stores cannot take its data from the store buffer, and
//! waits until they reach the cache: about 12 ns a hit on these machines, against 3 ns when every
//! load matches a store (`benches/hit_layers.rs`, `L5` against `L5w`).
//!
//! So objects whose size is a multiple of 8 bytes (at most [`MAX_WORDS`] words) and whose
//! alignment is at least 8 move as whole words. Out of a magazine ([`read_into`]): volatile
//! 8-byte loads, which the compiler cannot merge into wider ones. Into a magazine ([`move_to`]):
//! volatile 8-byte stores, which the next hit's 8-byte loads match exactly, fed by plain 8-byte
//! loads, which let the compiler take words that are still in registers from there (volatile
//! loads would force the caller's object into memory first: 0.45 ns more on `put`, measured);
//! the compiler does not merge loads whose words go to separate volatile stores. Every other
//! type moves with `ptr::read` as before. Words are read as `MaybeUninit<u64>`, so padding bytes
//! (uninitialised) and pointers (with their provenance) are copied as they are.
//!
//! [`write_pair`] is the other side of the same effect, for a guard's own two words: one 16-byte
//! store, so that the compiler's 16-byte copy of a moved guard finds them in one store.

use std::mem::{align_of, size_of, MaybeUninit};
use std::ptr;

/// Most words an object may have to move word by word; larger ones are copied by `ptr::read`.
pub(crate) const MAX_WORDS: usize = 8;

type Word = MaybeUninit<u64>;

/// Whether `T` moves word by word.
#[inline(always)]
pub(crate) const fn by_words<T>() -> bool {
    let size = size_of::<T>();
    size != 0 && size % 8 == 0 && size / 8 <= MAX_WORDS && align_of::<T>() >= 8
}

/// Moves the object at `src` into `out`.
///
/// # Safety
///
/// `src` is valid for reads of a `T`, aligned, and holds an object whose ownership the caller
/// hands to `out` (the caller does not use or drop the object at `src` again).
#[inline(always)]
pub(crate) unsafe fn read_into<T>(src: *const T, out: &mut MaybeUninit<T>) {
    if by_words::<T>() {
        let (from, to) = (src.cast::<Word>(), out.as_mut_ptr().cast::<Word>());
        let n = size_of::<T>() / 8;
        let mut k = 0;
        while k < n {
            // SAFETY: `T`'s size is a multiple of 8 and its alignment at least 8 (`by_words`), so
            // word `k` lies inside both objects and is aligned; `src` is readable (caller), `out`
            // is ours to write. `MaybeUninit<u64>` may hold any bytes.
            unsafe { to.add(k).write(ptr::read_volatile(from.add(k))) };
            k += 1;
        }
    } else {
        // One untyped copy straight into `out`: `out.write(ptr::read(src))` goes through a
        // temporary `T` on the stack in unoptimised builds, a second copy of a large `T`.
        // SAFETY: forwarded from the caller; `out` is ours alone, so the two do not overlap.
        unsafe { ptr::copy_nonoverlapping(src, out.as_mut_ptr(), 1) };
    }
}

/// Moves the object at `src` to `dst`.
///
/// # Safety
///
/// `src` is valid for reads of a `T`, aligned, and holds an object that the caller gives up;
/// `dst` is valid for writes of a `T`, aligned, and holds nothing that needs dropping; the two do
/// not overlap.
#[inline(always)]
pub(crate) unsafe fn move_to<T>(src: *const T, dst: *mut T) {
    if by_words::<T>() {
        let (from, to) = (src.cast::<Word>(), dst.cast::<Word>());
        for k in 0..size_of::<T>() / 8 {
            // SAFETY: as in `read_into`: word `k` lies inside both objects and is aligned; both
            // pointers are valid (caller).
            unsafe { ptr::write_volatile(to.add(k), ptr::read(from.add(k))) };
        }
    } else {
        // One untyped copy, with no temporary `T` (as in `read_into`).
        // SAFETY: forwarded from the caller.
        unsafe { ptr::copy_nonoverlapping(src, dst, 1) };
    }
}

/// Writes `[a, b]` to `dst` with one 16-byte store where the target has one (x86-64), so that a
/// 16-byte load of the pair soon after takes its data from the store buffer.
///
/// # Safety
///
/// `dst` is valid for writes of two `usize`s and aligned for `usize`.
#[inline(always)]
pub(crate) unsafe fn write_pair(dst: *mut [usize; 2], a: usize, b: usize) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        use std::arch::x86_64::{_mm_set_epi64x, _mm_storeu_si128};
        // SAFETY: SSE2 is enabled (`cfg`); `dst` is writable for 16 bytes (caller), and the
        // store needs no alignment. `usize` is 64 bits on x86-64, so the casts are lossless.
        unsafe { _mm_storeu_si128(dst.cast(), _mm_set_epi64x(b as i64, a as i64)) };
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    // SAFETY: forwarded from the caller.
    unsafe {
        dst.write([a, b])
    };
}

#[cfg(all(test, not(reuse_pool_loom)))]
mod tests {
    use super::*;

    /// Moves `v` out and back in through both functions; returns what came back.
    fn round_trip<T>(v: T) -> T {
        let src = MaybeUninit::new(v);
        let mut mid = MaybeUninit::<T>::uninit();
        // SAFETY: `src` holds an object, handed to `mid` and never used again.
        unsafe { read_into(src.as_ptr(), &mut mid) };
        let mut dst = MaybeUninit::<T>::uninit();
        // SAFETY: `mid` holds the object, given up here; `dst` is empty and separate.
        unsafe { move_to(mid.as_ptr(), dst.as_mut_ptr()) };
        // SAFETY: `move_to` wrote `dst`.
        unsafe { dst.assume_init() }
    }

    #[test]
    fn a_pair_is_written_in_order() {
        let mut pair = [0usize; 2];
        // SAFETY: `pair` is two writable, aligned `usize`s.
        unsafe { write_pair(&mut pair, 7, usize::MAX - 1) };
        assert_eq!(pair, [7, usize::MAX - 1]);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn which_types_move_by_words() {
        assert!(by_words::<Vec<u8>>());
        assert!(by_words::<String>());
        assert!(by_words::<Box<u8>>());
        assert!(by_words::<(u8, u64)>()); // padding is copied as it is
        assert!(by_words::<[u64; MAX_WORDS]>());
        assert!(!by_words::<[u64; MAX_WORDS + 1]>());
        assert!(!by_words::<u32>());
        assert!(!by_words::<[u32; 2]>()); // aligned to 4 only
        assert!(!by_words::<()>());
    }

    #[test]
    fn every_kind_of_object_survives_the_move() {
        let v = round_trip(vec![1u8, 2, 3]);
        assert_eq!(v, [1, 2, 3]);
        assert_eq!(round_trip(String::from("word")), "word");
        assert_eq!(*round_trip(Box::new(7u64)), 7);
        assert_eq!(round_trip((9u8, 10u64)), (9, 10));
        assert_eq!(round_trip([5u64; MAX_WORDS + 1]), [5; MAX_WORDS + 1]);
        assert_eq!(round_trip([1u32, 2]), [1, 2]);
        assert_eq!(round_trip(3u16), 3);
        round_trip(());
        let big = round_trip([vec![4u8], vec![4], vec![4]]);
        assert_eq!(big, [[4], [4], [4]]);
    }
}
