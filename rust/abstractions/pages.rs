// SPDX-License-Identifier: GPL-2.0

//! Batches of extracted pages and the duty to release them.
//!
//! C headers: [`include/linux/mm.h`](srctree/include/linux/mm.h) (`unpin_user_pages*()`,
//! `put_page()`), [`include/linux/highmem.h`](srctree/include/linux/highmem.h)
//! (`memcpy_from_page()`).
//!
//! A [`Batch`] is a run of pages taken out of an [`IovIter`](super::iov::IovIter)
//! ([`extract`](super::extract)) or out of a user address range ([`gup`](super::gup)), together
//! with how they must be released ([`Mode`]) and the direction of the I/O they are for:
//!
//! - [`Mode::Pinned`]: user memory, pinned with `FOLL_PIN` (short- or long-term). Released with
//!   `iovx_unpin_pages()` of the shim, what `unpin_user_pages()` does (dirtying each folio first
//!   after a read, as `unpin_user_pages_dirty_lock()`) with one `unpin_user_folio()` per run of a
//!   folio's pages.
//! - [`Mode::Referenced`]: user memory with a page reference (`FOLL_GET`), the legacy path.
//!   Released with `put_page()`, after `set_page_dirty_lock()` for a read.
//! - [`Mode::Listed`]: kernel memory (KVEC, BVEC, ...). Nothing was taken and nothing is
//!   released; instead the batch borrows the iterator's memory for `'data`, so it cannot outlive
//!   it.
//!
//! The direction `D` is that of the iterator or of the GUP call the pages came from: a
//! `Batch<'_, '_, Dest>` holds memory that may be written (a destination iterator's, or user
//! pages taken with `FOLL_WRITE`), a `Batch<'_, '_, Source>` memory that may only be read. Only
//! a destination batch goes into a read bio or is released dirty.
//!
//! The mode is fixed when the batch is made and only this module acts on it: a batch is released
//! exactly once, by [`Batch::release`], [`Batch::release_dirty`] or its `Drop`, the way its mode
//! says. Safe code cannot name a page pointer of a batch, so it cannot release one in any other
//! way. Handing the duty on (to a bio) is `pub(crate)` and moves the batch.
//!
//! Page arrays are the caller's ([`PageSlot`]): extraction never allocates.

use core::marker::PhantomData;
use core::sync::atomic::Ordering::Relaxed;
use kernel::{bindings, page::PAGE_SIZE, prelude::*};

use super::counters::COUNTERS;
use super::iov::{Dest, Direction};
use super::shim;
use super::task::might_sleep;

/// What one pin adds to a small folio's reference count (`GUP_PIN_COUNTING_BIAS`).
pub const PIN_BIAS: i32 = bindings::GUP_PIN_COUNTING_BIAS as i32;

/// How the pages of a batch must be released.
///
/// A word wide: a [`Bio`](super::bio::Bio) (a word for its bio, one for its count, one for its
/// `Option<Mode>`) then has no padding, which targets that forbid unaligned accesses (arm64's
/// kernel code) would otherwise copy with a call to `memcpy()` whenever a bio is moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Mode {
    /// Pinned with `FOLL_PIN`; unpinned on release.
    Pinned,
    /// Referenced with `FOLL_GET`; put on release.
    Referenced,
    /// Merely listed; nothing to release.
    Listed,
}

/// One entry of a caller-provided page array.
///
/// # Invariants
///
/// Holds either null or a page pointer written by the kernel during an extraction; its release
/// duty, if any, belongs to the [`Batch`] that covers it, never to the slot.
#[repr(transparent)]
pub struct PageSlot(*mut bindings::page);

impl PageSlot {
    /// An empty slot.
    pub const EMPTY: PageSlot = PageSlot(core::ptr::null_mut());

    /// The page pointer in the slot.
    #[inline]
    pub(crate) fn page(&self) -> *mut bindings::page {
        self.0
    }
}

impl Default for PageSlot {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// Pages extracted for I/O in direction `D` from memory borrowed for `'data`, kept in a caller's
/// array borrowed for `'buf`, with the duty to release them.
///
/// # Invariants
///
/// - `pages` holds exactly the batch's pages: `nr_pages(offset + len)` valid page pointers, in
///   order; byte `k` of the batch is at byte `offset + k` of the run they make.
/// - If `mode` is [`Mode::Pinned`] each page holds one `FOLL_PIN` pin (long-term if `longterm`)
///   and if it is [`Mode::Referenced`] one reference, owned by this batch and dropped exactly once
///   when the batch is released; if it is [`Mode::Listed`] the pages belong to the memory
///   borrowed for `'data`, which keeps them allocated.
/// - If `D` is [`Dest`] the memory may be written: pinned or referenced pages were taken with
///   `FOLL_WRITE`, listed ones belong to memory borrowed for writing (a destination iterator's).
#[must_use = "dropping a batch releases its pages at once"]
pub struct Batch<'data, 'buf, D: Direction> {
    pages: &'buf mut [PageSlot],
    offset: usize,
    len: usize,
    mode: Mode,
    longterm: bool,
    _data: PhantomData<(&'data [u8], D)>,
    // A batch borrows the caller's page array and, when listed, the iterator's memory; it stays
    // with the code that extracted it (a bio takes its pages over to move them elsewhere).
    _not_send: PhantomData<*mut ()>,
}

/// Pages needed to hold `bytes` bytes that start `offset` bytes into the first page.
#[inline]
pub(crate) fn nr_pages(offset: usize, bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else {
        (offset + bytes).div_ceil(PAGE_SIZE)
    }
}

impl<'data, 'buf, D: Direction> Batch<'data, 'buf, D> {
    /// Makes a batch over the first pages of `slots`, counting them as taken.
    ///
    /// # Safety
    ///
    /// The first `nr_pages(offset, len)` slots must hold the pages of the batch, which must stand
    /// in the relation to `mode`, `longterm`, `D` and `'data` that the type invariants describe;
    /// and the duty to release them must pass to the batch.
    #[inline(always)]
    pub(crate) unsafe fn new(
        slots: &'buf mut [PageSlot],
        offset: usize,
        len: usize,
        mode: Mode,
        longterm: bool,
    ) -> Self {
        let n = nr_pages(offset, len);
        note_taken(mode, n, longterm);
        // SAFETY: By the safety requirements.
        unsafe { Self::from_parts(&mut slots[..n], offset, len, mode, longterm) }
    }

    /// Makes a batch over `pages` without counting them: for pages already counted (held by
    /// [`HeldPages`](super::gup::HeldPages), or the tail of a batch).
    ///
    /// # Safety
    ///
    /// As for [`Batch::new`], with `pages` holding exactly `nr_pages(offset, len)` pages.
    #[inline]
    pub(crate) unsafe fn from_parts(
        pages: &'buf mut [PageSlot],
        offset: usize,
        len: usize,
        mode: Mode,
        longterm: bool,
    ) -> Self {
        // INVARIANT: By the safety requirements.
        Self {
            pages,
            offset,
            len,
            mode,
            longterm,
            _data: PhantomData,
            _not_send: PhantomData,
        }
    }

    /// How the pages will be released.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether the pages are pinned long-term.
    pub fn is_long_term(&self) -> bool {
        self.longterm
    }

    /// Offset of the first byte in the first page.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes covered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no bytes are covered (and no pages held).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of pages.
    pub fn nr_pages(&self) -> usize {
        self.pages.len()
    }

    /// The first page slot, to check where the batch lies in a page array.
    pub(crate) fn slots_ptr(&self) -> *const PageSlot {
        self.pages.as_ptr()
    }

    /// Whether the last page is as many `struct page`s after the first as it is pages after it
    /// in the batch: so it is for the pages of one large folio in order. A hint only (the pages
    /// between are not looked at), to choose where to put the batch; nothing relies on it.
    #[inline]
    pub(crate) fn looks_contiguous(&self) -> bool {
        match (self.pages.first(), self.pages.last()) {
            (Some(first), Some(last)) => {
                first.page().wrapping_add(self.pages.len() - 1) == last.page()
            }
            _ => false,
        }
    }

    /// The pages, in order, for inspection.
    pub fn pages(&self) -> impl Iterator<Item = PageRef<'_>> + '_ {
        // INVARIANT: Each pointer is a valid page held by the batch, which the borrow keeps.
        self.pages.iter().map(|s| PageRef {
            page: s.0,
            _p: PhantomData,
        })
    }

    /// The part of page `index` that the batch covers, as (offset in the page, length).
    pub fn page_range(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.pages.len() {
            return None;
        }
        let start = if index == 0 { self.offset } else { 0 };
        let end = (self.offset + self.len - index * PAGE_SIZE).min(PAGE_SIZE);
        Some((start, end - start))
    }

    /// Copies the bytes of the batch, in order, into `out` (at most `out.len()` bytes). Returns
    /// the number copied.
    ///
    /// The copy is made in C (`memcpy_from_page()`, see [`PageRef::read`]): the pages may be
    /// written by other threads or by a device meanwhile (pinned user memory is), and the bytes
    /// copied are then whatever the page held at that moment. Any context.
    pub fn copy_out(&self, out: &mut [u8]) -> usize {
        let mut done = 0;
        for (i, p) in self.pages().enumerate() {
            let Some((off, len)) = self.page_range(i) else {
                break;
            };
            let n = len.min(out.len() - done);
            if n == 0 {
                break;
            }
            if p.read(off, &mut out[done..done + n]).is_err() {
                break;
            }
            done += n;
        }
        done
    }

    /// Makes the batch independent of the memory it came from, which pinned and referenced pages
    /// are: they hold their pages themselves. A listed batch is given back.
    pub fn into_owned(self) -> core::result::Result<Batch<'static, 'buf, D>, Self> {
        if self.mode == Mode::Listed {
            return Err(self);
        }
        let (pages, offset, len, mode, longterm) = self.into_raw();
        // SAFETY: Pinned and referenced pages are held by the batch's own pins or references,
        // not by the memory borrowed for `'data`; the duty moves with the pages, and the
        // direction stays.
        Ok(unsafe { Batch::from_parts(pages, offset, len, mode, longterm) })
    }

    /// Shortens the batch to its first `len` bytes, releasing the pages no longer covered as its
    /// mode says. A `len` not below the current length changes nothing.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let keep = nr_pages(self.offset, len);
        let pages = core::mem::take(&mut self.pages);
        let (kept, tail) = pages.split_at_mut(keep);
        let tail_len = tail.len() * PAGE_SIZE;
        // SAFETY: The tail pages are this batch's, of its mode and direction; they go to a batch
        // of their own, which releases them as it is dropped here, and leave this one.
        drop(unsafe {
            Batch::<'data, '_, D>::from_parts(tail, 0, tail_len, self.mode, self.longterm)
        });
        // INVARIANT: `kept` holds the pages of the first `len` bytes; the others were released
        // by the tail batch.
        self.pages = kept;
        self.len = len;
        if len == 0 {
            self.offset = 0;
        }
    }

    /// Releases the pages (as dropping the batch does). Any context: pins are dropped and
    /// references put without sleeping.
    pub fn release(self) {
        drop(self)
    }

    fn release_pages(&mut self, dirty: bool) {
        let n = self.pages.len();
        let c = &COUNTERS;
        match self.mode {
            Mode::Pinned => {
                // SAFETY: By the type invariant each page holds one pin owned by this batch;
                // `PageSlot` is transparent over `struct page *`. The pins are dropped here once:
                // callers forget or are dropping the batch.
                unsafe { shim::iovx_unpin_pages(self.pages.as_mut_ptr().cast(), n as _, dirty) };
                c.unpinned.fetch_add(n as u64, Relaxed);
            }
            Mode::Referenced => {
                // SAFETY: Each page holds one reference owned by this batch, dropped here once
                // (after `set_page_dirty_lock()`, which takes the page lock itself, if `dirty`).
                unsafe { shim::iovx_put_pages(self.pages.as_mut_ptr().cast(), n as _, dirty) };
                c.unreferenced.fetch_add(n as u64, Relaxed);
            }
            Mode::Listed => {
                c.unlisted.fetch_add(n as u64, Relaxed);
                return;
            }
        }
        if dirty {
            c.dirtied.fetch_add(n as u64, Relaxed);
        }
    }

    /// Hands the release duty of the pages on: returns the page pointers, the offset, the
    /// length, the mode and whether the pins are long-term, and forgets the batch without
    /// releasing anything.
    ///
    /// The caller must release every page exactly once as `mode` says, and account for it in
    /// [`COUNTERS`] through [`note_released`] (or hand the duty to another batch).
    #[inline]
    pub(crate) fn into_raw(self) -> (&'buf mut [PageSlot], usize, usize, Mode, bool) {
        let mut this = core::mem::ManuallyDrop::new(self);
        // `this` is not dropped: its slice borrow is moved out once.
        let pages = core::mem::take(&mut this.pages);
        (pages, this.offset, this.len, this.mode, this.longterm)
    }
}

impl<'data, 'buf> Batch<'data, 'buf, Dest> {
    /// Marks the pages dirty and releases them: for a destination batch that a read has filled.
    ///
    /// Pinned pages go through `iovx_unpin_pages()` (as `unpin_user_pages_dirty_lock()`) and
    /// referenced ones through `set_page_dirty_lock()` and `put_page()`. Listed pages are kernel
    /// memory whose owner tracks its own state; nothing is done to them.
    ///
    /// Only a destination batch can be released dirty: its pages were taken with `FOLL_WRITE`
    /// (or belong to memory lent for writing), so dirtying them is what the write did. A source
    /// batch (the zero page, the page cache of a read-only mapping) has no such method.
    ///
    /// Process context: may sleep (takes the folio locks).
    pub fn release_dirty(mut self) {
        might_sleep();
        self.release_pages(true);
        core::mem::forget(self);
    }
}

impl<D: Direction> Drop for Batch<'_, '_, D> {
    fn drop(&mut self) {
        self.release_pages(false);
    }
}

/// Pages pinned with `FOLL_PIN` in the whole system since boot (`nr_foll_pin_acquired` of
/// `/proc/vmstat`): does not move when pages are referenced.
pub fn foll_pin_acquired() -> u64 {
    // SAFETY: Reads a global vmstat counter.
    unsafe { shim::iovx_foll_pin_acquired() as u64 }
}

/// Empties the per-CPU folio batches (`lru_add_drain_all()`), which hold references of their
/// own on newly faulted folios for a while: for tests that compare reference counts.
///
/// Process context: sleeps.
#[cfg(iovx_kunit)]
pub fn drain_lru() {
    might_sleep();
    // SAFETY: Process context.
    unsafe { shim::iovx_lru_add_drain_all() };
}

/// Records that `n` pages were taken in `mode` (long-term pins if `longterm`).
#[inline]
pub(crate) fn note_taken(mode: Mode, n: usize, longterm: bool) {
    let c = &COUNTERS;
    match mode {
        Mode::Pinned => {
            c.pinned.fetch_add(n as u64, Relaxed);
            if longterm {
                c.pinned_longterm.fetch_add(n as u64, Relaxed);
            }
        }
        Mode::Referenced => _ = c.referenced.fetch_add(n as u64, Relaxed),
        Mode::Listed => _ = c.listed.fetch_add(n as u64, Relaxed),
    }
}

/// Records that `n` pages handed on by [`Batch::into_raw`] were released.
pub(crate) fn note_released(mode: Mode, n: usize, dirty: bool) {
    let c = &COUNTERS;
    match mode {
        Mode::Pinned => _ = c.unpinned.fetch_add(n as u64, Relaxed),
        Mode::Referenced => _ = c.unreferenced.fetch_add(n as u64, Relaxed),
        Mode::Listed => _ = c.unlisted.fetch_add(n as u64, Relaxed),
    }
    if dirty && mode != Mode::Listed {
        c.dirtied.fetch_add(n as u64, Relaxed);
    }
}

/// A page of a batch, lent for inspection.
///
/// # Invariants
///
/// `page` is valid for the lifetime `'a` (the batch holds it).
pub struct PageRef<'a> {
    page: *mut bindings::page,
    _p: PhantomData<&'a ()>,
}

impl PageRef<'_> {
    /// A page held for `'a` by whoever lends it.
    ///
    /// # Safety
    ///
    /// `page` must be a valid page, held (pinned, referenced or borrowed) for `'a`.
    pub(crate) unsafe fn new(page: *mut bindings::page) -> Self {
        // INVARIANT: By the safety requirements.
        Self {
            page,
            _p: PhantomData,
        }
    }

    /// The folio's reference count (a pin adds `GUP_PIN_COUNTING_BIAS` to a small folio's).
    pub fn ref_count(&self) -> i32 {
        // SAFETY: `page` is valid (type invariant).
        unsafe { shim::iovx_page_ref_count(self.page) }
    }

    /// Whether the folio may be pinned for DMA (`folio_maybe_dma_pinned()`).
    pub fn maybe_dma_pinned(&self) -> bool {
        // SAFETY: `page` is valid (type invariant).
        unsafe { shim::iovx_page_maybe_dma_pinned(self.page) }
    }

    /// The large folio's pin count (`_pincount`, which `folio_maybe_dma_pinned()` reads for a
    /// large folio), or `None` for a small folio, whose pins are counted in its reference count.
    pub fn folio_pincount(&self) -> Option<i32> {
        // SAFETY: `page` is valid (type invariant).
        let n = unsafe { shim::iovx_page_folio_pincount(self.page) };
        (n >= 0).then_some(n)
    }

    /// The order of the page's folio (0 for a small folio).
    pub fn folio_order(&self) -> u32 {
        // SAFETY: `page` is valid (type invariant).
        unsafe { shim::iovx_page_folio_order(self.page) }
    }

    /// Whether the folio is marked dirty.
    pub fn is_dirty(&self) -> bool {
        // SAFETY: `page` is valid (type invariant).
        unsafe { shim::iovx_page_dirty(self.page) }
    }

    /// Whether this is the same page as `other`.
    pub fn same_page(&self, other: &PageRef<'_>) -> bool {
        self.page == other.page
    }

    /// Copies `out.len()` bytes of the page, starting at `offset`, into `out`.
    ///
    /// The copy is `memcpy_from_page()`, in C: other threads (or a device) may write the page
    /// while it is read, as they may write any pinned user page, and a Rust read of memory
    /// written concurrently would be a data race. `out` is this caller's alone; the bytes are
    /// those the page held at some moment of the copy. Any context.
    ///
    /// Fails with `EINVAL` if the range is not within the page.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        let end = offset.checked_add(out.len()).ok_or(EINVAL)?;
        if end > PAGE_SIZE {
            return Err(EINVAL);
        }
        // SAFETY: `page` is valid (type invariant) and `offset..end` lies within it; `out` is
        // valid for writes of `out.len()` bytes and not reachable by anyone else meanwhile.
        unsafe {
            shim::iovx_memcpy_from_page(out.as_mut_ptr().cast(), self.page, offset, out.len())
        };
        Ok(())
    }

    /// Whether the folio may be pinned long-term (`folio_is_longterm_pinnable()`): not in
    /// ZONE_MOVABLE or CMA, and not file-backed memory that filesystems refuse to pin.
    pub fn is_longterm_pinnable(&self) -> bool {
        // SAFETY: `page` is valid (type invariant).
        unsafe { shim::iovx_page_longterm_pinnable(self.page) }
    }

    /// Prints the page's state to the kernel log (`dump_page()`).
    pub fn dump(&self, reason: &CStr) {
        // SAFETY: `page` is valid (type invariant); `reason` is NUL-terminated.
        unsafe { shim::iovx_dump_page(self.page, reason.as_char_ptr()) };
    }

    /// Clears the folio's dirty flag and says whether it was set. For tests, which need a clean
    /// page to see a release mark it dirty; only on anonymous memory the test owns.
    #[cfg(iovx_kunit)]
    pub fn test_clear_dirty(&self) -> bool {
        // SAFETY: `page` is valid (type invariant).
        unsafe { shim::iovx_page_test_clear_dirty(self.page) }
    }
}
