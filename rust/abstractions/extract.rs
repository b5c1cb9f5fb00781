// SPDX-License-Identifier: GPL-2.0

//! Page extraction from iterators: pin, or just list.
//!
//! C header: [`include/linux/uio.h`](srctree/include/linux/uio.h) (`iov_iter_extract_pages()`,
//! `iov_iter_extract_will_pin()`).
//!
//! [`IovIter::extract`] takes the next run of pages out of an iterator as a
//! [`Batch`](super::pages::Batch) of the iterator's direction: user memory (UBUF, IOVEC) pinned,
//! with `FOLL_WRITE` for a destination; kernel memory (KVEC, BVEC, ...) listed, borrowing the
//! iterator's memory for `'data`.

use kernel::{bindings, prelude::*};

use super::iov::{Direction, IovIter, Kind};
use super::pages::{Batch, Mode, PageSlot};
use super::task::{current_has_mm, might_sleep};

impl<'data, D: Direction> IovIter<'data, D> {
    /// Extracts up to `max_bytes` bytes' worth of pages from the iterator into `slots`,
    /// advancing it by the bytes returned (`iov_iter_extract_pages()`).
    ///
    /// User memory (UBUF, IOVEC) is pinned (`FOLL_PIN`, with `FOLL_WRITE` for a destination);
    /// kernel memory (KVEC, BVEC, FOLIOQ, XARRAY) is only listed. One call returns one contiguous
    /// run within a segment; call again for more. An empty batch means nothing was left (or
    /// `max_bytes` was 0). The batch has the iterator's direction `D`.
    ///
    /// Errors: `EINVAL` for an iterator without memory (DISCARD) or no slots; `EFAULT` when the
    /// first page cannot be pinned (unmapped, or read-only for a destination), in which case
    /// nothing is pinned and the iterator is unchanged.
    ///
    /// Context: for user memory, process context (GUP may fault pages in and sleep); for kernel
    /// memory, any context (nothing is taken or allocated).
    #[inline(always)]
    pub fn extract<'buf>(
        &mut self,
        slots: &'buf mut [PageSlot],
        max_bytes: usize,
    ) -> Result<Batch<'data, 'buf, D>> {
        let kind = self.kind();
        if kind == Kind::Discard || slots.is_empty() {
            return Err(EINVAL);
        }
        let user = kind.is_user();
        if user {
            might_sleep();
            if !current_has_mm() {
                return Err(EFAULT);
            }
        }
        let maxpages = u32::try_from(slots.len()).unwrap_or(u32::MAX);
        let mut list = slots.as_mut_ptr().cast::<*mut bindings::page>();
        let mut offset: usize = 0;
        // SAFETY: The iterator is initialised; `list` is non-null and points to `maxpages`
        // writable slots, so the kernel fills them and allocates nothing; `offset` is writable.
        let n = unsafe {
            bindings::iov_iter_extract_pages(
                self.as_raw(),
                &mut list,
                max_bytes,
                maxpages,
                0,
                &mut offset,
            )
        };
        if n < 0 {
            return Err(Error::from_errno(n as i32));
        }
        let n = n as usize;
        self.note_advanced(n);
        let mode = if user { Mode::Pinned } else { Mode::Listed };
        if n == 0 {
            offset = 0;
        }
        // SAFETY: The kernel wrote the `nr_pages(offset, n)` pages of the run into `slots`:
        // pinned for user memory (one pin each, now ours; with `FOLL_WRITE` if the iterator is a
        // destination, as `iov_iter_extract_user_pages()` asks for `ITER_DEST`), listed from the
        // iterator's memory (borrowed for `'data`, for writing if `D` is `Dest`, by the
        // iterator's invariant) otherwise.
        Ok(unsafe { Batch::new(slots, offset, n, mode, false) })
    }
}
