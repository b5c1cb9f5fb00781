// SPDX-License-Identifier: GPL-2.0

//! Page extraction from iterators: pin, reference, or just list.
//!
//! C header: [`include/linux/uio.h`](srctree/include/linux/uio.h) (`iov_iter_extract_pages()`,
//! `iov_iter_extract_will_pin()`, `iov_iter_get_pages2()`).
//!
//! [`IovIter::extract`] takes the next run of pages out of an iterator as a
//! [`Batch`](super::pages::Batch) of the iterator's direction: user memory (UBUF, IOVEC) pinned,
//! with `FOLL_WRITE` for a destination; kernel memory (KVEC, BVEC, ...) listed, borrowing the
//! iterator's memory for `'data`. [`IovIter::extract_as`] with [`UserPages::Reference`] takes
//! user memory with page references instead (`FOLL_GET`, through `iov_iter_get_pages2()`): the
//! behaviour before `iov_iter_extract_pages()`, kept as a legacy mode to show what pins protect
//! against (fork() shares referenced pages with the child instead of copying them).

use kernel::{bindings, prelude::*};

use super::iov::{Direction, IovIter, Kind};
use super::pages::{Batch, Mode, PageSlot};
use super::task::{current_has_mm, might_sleep};

/// How user memory is taken by [`IovIter::extract_as`]. Kernel memory is listed either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserPages {
    /// Pinned (`FOLL_PIN`): [`Mode::Pinned`]. What [`IovIter::extract`] does.
    Pin,
    /// Referenced (`FOLL_GET`, as `iov_iter_get_pages2()` takes it): [`Mode::Referenced`], the
    /// legacy behaviour. fork() does not copy such pages for the child, so after a copy-on-write
    /// fault the I/O may read or write a page that the parent no longer maps.
    Reference,
}

/// The extraction flags of `iov_iter_extract_pages()` (`iov_iter_extraction_t`).
///
/// The one flag, `ITER_ALLOW_P2PDMA`, lets user memory of a PCI peer-to-peer DMA region be
/// extracted; such pages may only go to a queue that supports P2P DMA
/// (`blk_queue_pci_p2pdma()`). Outside the abstraction layer only [`ExtractFlags::NONE`] can
/// be made (compile-fail `p2p_flag_forged`), and inside it the flag is made only from a queue
/// that supports P2P DMA, for pages that go into that queue's requests (the passthrough
/// mapping) or into a bio of that queue's block device (the direct-I/O path,
/// `Bio::extract_flags()`), as the block layer passes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtractFlags(u32);

impl ExtractFlags {
    /// No flag.
    pub const NONE: Self = Self(0);

    /// `ITER_ALLOW_P2PDMA`, for a queue that supports P2P DMA only.
    pub(super) fn allow_p2pdma() -> Self {
        // SAFETY: Pure constant.
        Self(unsafe { super::shim::iovx_extract_allow_p2pdma() })
    }

    /// Whether `ITER_ALLOW_P2PDMA` is set.
    pub fn allows_p2pdma(&self) -> bool {
        *self != Self::NONE
    }
}

impl<'data, D: Direction> IovIter<'data, D> {
    /// As [`IovIter::extract`], with user memory taken as `how` says: pinned, or referenced with
    /// `iov_iter_get_pages2()` (with `FOLL_WRITE` for a destination, as it asks for an iterator
    /// that is not a source), which gives a batch of [`Mode::Referenced`]. Kernel memory is
    /// listed either way. Same errors and context as [`IovIter::extract`].
    #[inline(always)]
    pub fn extract_as<'buf>(
        &mut self,
        slots: &'buf mut [PageSlot],
        max_bytes: usize,
        how: UserPages,
    ) -> Result<Batch<'data, 'buf, D>> {
        if how == UserPages::Pin || !self.kind().is_user() || slots.is_empty() {
            return self.extract(slots, max_bytes);
        }
        might_sleep();
        if !current_has_mm() {
            return Err(EFAULT);
        }
        let maxpages = u32::try_from(slots.len()).unwrap_or(u32::MAX);
        let mut offset: usize = 0;
        // SAFETY: The iterator is initialised and user-backed; `slots` holds `maxpages` writable
        // slots, which the kernel fills without allocating (the array is given); `offset` is
        // writable.
        let n = unsafe {
            bindings::iov_iter_get_pages2(
                self.as_raw(),
                slots.as_mut_ptr().cast::<*mut bindings::page>(),
                max_bytes,
                maxpages,
                &mut offset,
            )
        };
        if n < 0 {
            return Err(Error::from_errno(n as i32));
        }
        let n = n as usize;
        if n == 0 {
            // Nothing was referenced (`max_bytes` 0 or an empty iterator).
            // SAFETY: No pages: an empty batch holds nothing.
            return Ok(unsafe { Batch::new(slots, 0, 0, Mode::Referenced, false) });
        }
        self.note_advanced(n);
        // SAFETY: `iov_iter_get_pages2()` wrote the `nr_pages(offset, n)` pages of the run into
        // `slots`, each with one reference (`get_user_pages_fast()`, `FOLL_GET`), now ours, taken
        // with `FOLL_WRITE` if the iterator is a destination (`iov_iter_rw() != WRITE`), and
        // advanced the iterator by `n`.
        Ok(unsafe { Batch::new(slots, offset, n, Mode::Referenced, false) })
    }

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
        self.extract_with(slots, max_bytes, ExtractFlags::NONE)
    }

    /// As [`IovIter::extract`], with the extraction flags `flags` (see [`ExtractFlags`]).
    #[inline(always)]
    pub fn extract_with<'buf>(
        &mut self,
        slots: &'buf mut [PageSlot],
        max_bytes: usize,
        flags: ExtractFlags,
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
                flags.0,
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
