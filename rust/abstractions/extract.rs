// SPDX-License-Identifier: GPL-2.0

//! Page extraction from iterators and user memory, and the duty to release the pages.
//!
//! C headers: [`include/linux/uio.h`](srctree/include/linux/uio.h) (`iov_iter_extract_pages()`,
//! `iov_iter_extract_will_pin()`), [`include/linux/mm.h`](srctree/include/linux/mm.h)
//! (`pin_user_pages_fast()`, `get_user_pages_fast()`, `unpin_user_pages*()`, `put_page()`).
//!
//! A [`Batch`] is a run of pages taken out of an [`IovIter`] or out of a user address range,
//! together with how they must be released ([`Mode`]):
//!
//! - [`Mode::Pinned`]: user memory, pinned with `FOLL_PIN` (short- or long-term, see [`Pin`]).
//!   Released with `unpin_user_pages()`, or `unpin_user_pages_dirty_lock()` after a read.
//! - [`Mode::Referenced`]: user memory with a page reference (`FOLL_GET`), the legacy path.
//!   Released with `put_page()`, after `set_page_dirty_lock()` for a read.
//! - [`Mode::Listed`]: kernel memory (KVEC, BVEC, ...). Nothing was taken and nothing is
//!   released; instead the batch borrows the iterator's memory for `'data`, so it cannot outlive
//!   it.
//!
//! The mode is fixed when the batch is made and only this module acts on it: a batch is released
//! exactly once, by [`Batch::release`], [`Batch::release_dirty`] or its `Drop`, the way its mode
//! says. Safe code cannot name a page pointer of a batch, so it cannot release one in any other
//! way. Handing the duty on (to a bio) is `pub(crate)` and moves the batch.
//!
//! Page arrays are the caller's ([`PageSlot`]): extraction never allocates.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{bindings, page::PAGE_SIZE, prelude::*};

use super::iov::{Direction, IovIter, Kind};
use super::shim;

/// What one pin adds to a small folio's reference count (`GUP_PIN_COUNTING_BIAS`).
pub const PIN_BIAS: i32 = bindings::GUP_PIN_COUNTING_BIAS as i32;

/// How the pages of a batch must be released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Pinned with `FOLL_PIN`; unpinned on release.
    Pinned,
    /// Referenced with `FOLL_GET`; put on release.
    Referenced,
    /// Merely listed; nothing to release.
    Listed,
}

/// How long a pin is meant to be held.
///
/// Short-term pins are for I/O that completes (direct I/O); long-term pins (`FOLL_LONGTERM`) are
/// for memory a device keeps (RDMA, vfio). The kernel treats them differently: a long-term pin
/// first migrates the pages out of ZONE_MOVABLE and CMA, and filesystems refuse it on file-backed
/// memory that is not safe to pin for long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pin {
    /// A pin for the duration of an I/O.
    ShortTerm,
    /// `FOLL_LONGTERM`.
    LongTerm,
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
}

impl Default for PageSlot {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// Module-wide counts of pages taken and released, per mode.
///
/// Each module that links the layer has its own.
pub struct Counters {
    /// Pages pinned (short- and long-term).
    pub pinned: AtomicU64,
    /// Pinned pages released.
    pub unpinned: AtomicU64,
    /// Pages pinned long-term (a subset of `pinned`).
    pub pinned_longterm: AtomicU64,
    /// Pages referenced.
    pub referenced: AtomicU64,
    /// Referenced pages released.
    pub unreferenced: AtomicU64,
    /// Pages listed.
    pub listed: AtomicU64,
    /// Listed pages whose batch ended (nothing to release for them).
    pub unlisted: AtomicU64,
    /// Pages marked dirty on release.
    pub dirtied: AtomicU64,
}

/// The counters of this module.
pub static COUNTERS: Counters = Counters {
    pinned: AtomicU64::new(0),
    unpinned: AtomicU64::new(0),
    pinned_longterm: AtomicU64::new(0),
    referenced: AtomicU64::new(0),
    unreferenced: AtomicU64::new(0),
    listed: AtomicU64::new(0),
    unlisted: AtomicU64::new(0),
    dirtied: AtomicU64::new(0),
};

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// See [`Counters::pinned`].
    pub pinned: u64,
    /// See [`Counters::unpinned`].
    pub unpinned: u64,
    /// See [`Counters::pinned_longterm`].
    pub pinned_longterm: u64,
    /// See [`Counters::referenced`].
    pub referenced: u64,
    /// See [`Counters::unreferenced`].
    pub unreferenced: u64,
    /// See [`Counters::listed`].
    pub listed: u64,
    /// See [`Counters::unlisted`].
    pub unlisted: u64,
    /// See [`Counters::dirtied`].
    pub dirtied: u64,
}

impl Counters {
    /// Reads every counter.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            pinned: self.pinned.load(Relaxed),
            unpinned: self.unpinned.load(Relaxed),
            pinned_longterm: self.pinned_longterm.load(Relaxed),
            referenced: self.referenced.load(Relaxed),
            unreferenced: self.unreferenced.load(Relaxed),
            listed: self.listed.load(Relaxed),
            unlisted: self.unlisted.load(Relaxed),
            dirtied: self.dirtied.load(Relaxed),
        }
    }
}

impl Snapshot {
    /// Whether every page taken has been released.
    pub fn balanced(&self) -> bool {
        self.pinned == self.unpinned
            && self.referenced == self.unreferenced
            && self.listed == self.unlisted
    }

    /// The change from `earlier` to `self`.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            pinned: self.pinned - earlier.pinned,
            unpinned: self.unpinned - earlier.unpinned,
            pinned_longterm: self.pinned_longterm - earlier.pinned_longterm,
            referenced: self.referenced - earlier.referenced,
            unreferenced: self.unreferenced - earlier.unreferenced,
            listed: self.listed - earlier.listed,
            unlisted: self.unlisted - earlier.unlisted,
            dirtied: self.dirtied - earlier.dirtied,
        }
    }
}

/// Pages extracted from memory borrowed for `'data`, kept in a caller's array borrowed for
/// `'buf`, with the duty to release them.
///
/// # Invariants
///
/// - `pages` holds exactly the batch's pages: `nr_pages(offset + len)` valid page pointers, in
///   order; byte `k` of the batch is at byte `offset + k` of the run they make.
/// - If `mode` is [`Mode::Pinned`] each page holds one `FOLL_PIN` pin (long-term if `longterm`)
///   and if it is [`Mode::Referenced`] one reference, owned by this batch and dropped exactly once
///   when the batch is released; if it is [`Mode::Listed`] the pages belong to the memory
///   borrowed for `'data`, which keeps them allocated.
#[must_use = "dropping a batch releases its pages at once"]
pub struct Batch<'data, 'buf> {
    pages: &'buf mut [PageSlot],
    offset: usize,
    len: usize,
    mode: Mode,
    longterm: bool,
    _data: PhantomData<&'data [u8]>,
    // A batch borrows the caller's page array and, when listed, the iterator's memory; it stays
    // with the code that extracted it (a bio takes its pages over to move them elsewhere).
    _not_send: PhantomData<*mut ()>,
}

/// Pages needed to hold `bytes` bytes that start `offset` bytes into the first page.
fn nr_pages(offset: usize, bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else {
        (offset + bytes).div_ceil(PAGE_SIZE)
    }
}

impl<'data, 'buf> Batch<'data, 'buf> {
    /// Makes a batch over the first pages of `slots`, counting them.
    ///
    /// # Safety
    ///
    /// The first `nr_pages(offset, len)` slots must hold the pages of the batch, which must stand
    /// in the relation to `mode`, `longterm` and `'data` that the type invariants describe; and
    /// the duty to release them must pass to the batch.
    #[inline]
    unsafe fn new(
        slots: &'buf mut [PageSlot],
        offset: usize,
        len: usize,
        mode: Mode,
        longterm: bool,
    ) -> Self {
        let n = nr_pages(offset, len);
        note_taken(mode, n, longterm);
        // INVARIANT: By the safety requirements.
        Self {
            pages: &mut slots[..n],
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
    pub fn into_owned(self) -> core::result::Result<Batch<'static, 'buf>, Self> {
        if self.mode == Mode::Listed {
            return Err(self);
        }
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is not used or dropped again; its slice borrow is moved out once.
        let pages = unsafe { core::ptr::read(&this.pages) };
        // INVARIANT: Pinned and referenced pages are held by the batch's own pins or references,
        // not by the memory borrowed for `'data`; the duty moves with the pages.
        Ok(Batch {
            pages,
            offset: this.offset,
            len: this.len,
            mode: this.mode,
            longterm: this.longterm,
            _data: PhantomData,
            _not_send: PhantomData,
        })
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
        // Release the tail as a batch of its own: same mode, exactly those pages.
        let tail_offset = 0;
        let tail_len = tail.len() * PAGE_SIZE;
        drop(Batch::<'data, '_> {
            pages: tail,
            offset: tail_offset,
            len: tail_len,
            mode: self.mode,
            longterm: self.longterm,
            _data: PhantomData,
            _not_send: PhantomData,
        });
        // INVARIANT: `kept` holds the pages of the first `len` bytes; the others were released
        // by the tail batch.
        self.pages = kept;
        self.len = len;
        if len == 0 {
            self.offset = 0;
        }
    }

    /// Releases the pages (as dropping the batch does).
    pub fn release(self) {
        drop(self)
    }

    /// Marks the pages dirty and releases them: for a batch that a read has filled.
    ///
    /// Pinned pages go through `unpin_user_pages_dirty_lock()` and referenced ones through
    /// `set_page_dirty_lock()` and `put_page()`. Listed pages are kernel memory whose owner
    /// tracks its own state; nothing is done to them.
    pub fn release_dirty(mut self) {
        self.release_pages(true);
        core::mem::forget(self);
    }

    fn release_pages(&mut self, dirty: bool) {
        let n = self.pages.len();
        let c = &COUNTERS;
        match self.mode {
            Mode::Pinned => {
                // SAFETY: By the type invariant each page holds one pin owned by this batch;
                // `PageSlot` is transparent over `struct page *`. The pins are dropped here once:
                // callers forget or are dropping the batch.
                unsafe {
                    bindings::unpin_user_pages_dirty_lock(
                        self.pages.as_mut_ptr().cast(),
                        n as _,
                        dirty,
                    )
                };
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

    /// Hands the release duty of the pages on: returns the page pointers and the mode, and
    /// forgets the batch without releasing anything.
    ///
    /// The caller (the bio layer) must release every page exactly once as `mode` says, and must
    /// account for it in [`COUNTERS`] through [`note_released`].
    #[allow(dead_code, reason = "used by the bio layer of iov_extract.ko only")]
    pub(crate) fn into_raw(self) -> (&'buf mut [PageSlot], usize, usize, Mode) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is not used or dropped again; its slice borrow is moved out once.
        let pages = unsafe { core::ptr::read(&this.pages) };
        (pages, this.offset, this.len, this.mode)
    }
}

impl Drop for Batch<'_, '_> {
    fn drop(&mut self) {
        self.release_pages(false);
    }
}

/// Records that `n` pages were taken in `mode` (long-term pins if `longterm`).
#[inline]
fn note_taken(mode: Mode, n: usize, longterm: bool) {
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
#[allow(dead_code, reason = "used by the bio layer of iov_extract.ko only")]
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
    /// Fails with `EINVAL` if the range is not within the page.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        let end = offset.checked_add(out.len()).ok_or(EINVAL)?;
        if end > PAGE_SIZE {
            return Err(EINVAL);
        }
        // SAFETY: `page` is valid (type invariant); the mapping is undone below.
        let va = unsafe { shim::iovx_kmap_local_page(self.page) };
        // SAFETY: `va` maps the whole page and `offset..end` lies within it; `out` is a distinct
        // Rust buffer.
        unsafe {
            core::ptr::copy_nonoverlapping(va.cast::<u8>().add(offset), out.as_mut_ptr(), out.len())
        };
        // SAFETY: `va` came from `kmap_local_page()` just above, in this context.
        unsafe { shim::iovx_kunmap_local(va) };
        Ok(())
    }

    /// Clears the folio's dirty flag and says whether it was set. For tests, which need a clean
    /// page to see a release mark it dirty; only on anonymous memory the test owns.
    #[cfg(iovx_kunit)]
    pub fn test_clear_dirty(&self) -> bool {
        // SAFETY: `page` is valid (type invariant).
        unsafe { shim::iovx_page_test_clear_dirty(self.page) }
    }
}

impl<'data, D: Direction> IovIter<'data, D> {
    /// Extracts up to `max_bytes` bytes' worth of pages from the iterator into `slots`,
    /// advancing it by the bytes returned (`iov_iter_extract_pages()`).
    ///
    /// User memory (UBUF, IOVEC) is pinned (`FOLL_PIN`, with `FOLL_WRITE` for a destination);
    /// kernel memory (KVEC, BVEC, FOLIOQ, XARRAY) is only listed. One call returns one contiguous
    /// run within a segment; call again for more. An empty batch means nothing was left (or
    /// `max_bytes` was 0).
    ///
    /// Errors: `EINVAL` for an iterator without memory (DISCARD) or no slots; `EFAULT` when the
    /// first page cannot be pinned (unmapped, or read-only for a destination), in which case
    /// nothing is pinned and the iterator is unchanged.
    #[inline(always)]
    pub fn extract<'buf>(
        &mut self,
        slots: &'buf mut [PageSlot],
        max_bytes: usize,
    ) -> Result<Batch<'data, 'buf>> {
        let kind = self.kind();
        if kind == Kind::Discard || slots.is_empty() {
            return Err(EINVAL);
        }
        if kind.is_user() && !current_has_mm() {
            return Err(EFAULT);
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
        let mode = if kind.is_user() {
            Mode::Pinned
        } else {
            Mode::Listed
        };
        if n == 0 {
            offset = 0;
        }
        // SAFETY: The kernel wrote the `nr_pages(offset, n)` pages of the run into `slots`:
        // pinned for user memory (one pin each, now ours), listed from the iterator's memory
        // (borrowed for `'data` by the iterator's invariant) otherwise.
        Ok(unsafe { Batch::new(slots, offset, n, mode, false) })
    }
}

/// The page-aligned start and the page count of the user range `addr..addr + len`.
fn user_pages(addr: usize, len: usize, slots: usize) -> Result<(usize, usize, usize)> {
    if len == 0 || slots == 0 {
        return Err(EINVAL);
    }
    if !current_has_mm() {
        return Err(EFAULT);
    }
    let offset = addr % PAGE_SIZE;
    let n = offset.checked_add(len).ok_or(EINVAL)?.div_ceil(PAGE_SIZE);
    if n > slots || n > i32::MAX as usize {
        return Err(EINVAL);
    }
    Ok((addr - offset, offset, n))
}

fn gup_result(
    ret: i64,
    wanted: usize,
    pages: &mut [PageSlot],
    release: impl Fn(&PageSlot),
) -> Result<usize> {
    if ret < 0 {
        return Err(Error::from_errno(ret as i32));
    }
    let got = ret as usize;
    if got < wanted {
        // A partial result: give back what was taken and report the fault, as the user range
        // was asked for whole.
        for s in &pages[..got] {
            release(s);
        }
        return Err(EFAULT);
    }
    Ok(got)
}

/// Pins the user pages of `addr..addr + len` of the current task (`pin_user_pages_fast()`),
/// writable if `write`, for `pin` long.
///
/// The whole range is pinned or nothing is: a fault part-way gives back the pins taken and fails
/// with `EFAULT`. `EINVAL` if the range is empty or needs more pages than `slots` has.
pub fn pin_user_pages<'buf>(
    addr: usize,
    len: usize,
    write: bool,
    pin: Pin,
    slots: &'buf mut [PageSlot],
) -> Result<Batch<'static, 'buf>> {
    let (start, offset, n) = user_pages(addr, len, slots.len())?;
    let mut flags = 0u32;
    if write {
        flags |= bindings::FOLL_WRITE;
    }
    if pin == Pin::LongTerm {
        flags |= bindings::FOLL_LONGTERM;
    }
    // SAFETY: `slots` has room for `n` page pointers (`PageSlot` is transparent); the range is
    // checked by the kernel.
    let ret = unsafe {
        bindings::pin_user_pages_fast(start as _, n as _, flags, slots.as_mut_ptr().cast())
    };
    gup_result(ret as i64, n, slots, |s| {
        // SAFETY: The page was pinned just above and is not part of any batch.
        unsafe { bindings::unpin_user_page(s.0) }
    })?;
    // SAFETY: The `n` slots hold pages pinned just above, one pin each, whose duty passes to the
    // batch; pinned pages do not borrow anything.
    Ok(unsafe { Batch::new(slots, offset, len, Mode::Pinned, pin == Pin::LongTerm) })
}

/// Takes a reference on the user pages of `addr..addr + len` of the current task
/// (`get_user_pages_fast()`, `FOLL_GET`), the legacy way, writable if `write`.
///
/// A reference keeps a page allocated but, unlike a pin, does not make fork() copy it for the
/// child: use [`pin_user_pages`] for I/O into user memory. All or nothing, as there.
pub fn get_user_pages<'buf>(
    addr: usize,
    len: usize,
    write: bool,
    slots: &'buf mut [PageSlot],
) -> Result<Batch<'static, 'buf>> {
    let (start, offset, n) = user_pages(addr, len, slots.len())?;
    let flags = if write { bindings::FOLL_WRITE } else { 0 };
    // SAFETY: As in `pin_user_pages`.
    let ret = unsafe {
        bindings::get_user_pages_fast(start as _, n as _, flags, slots.as_mut_ptr().cast())
    };
    gup_result(ret as i64, n, slots, |s| {
        // SAFETY: The reference was taken just above and is not part of any batch.
        unsafe { shim::iovx_put_page(s.0) }
    })?;
    // SAFETY: The `n` slots hold pages referenced just above, one reference each, whose duty
    // passes to the batch.
    Ok(unsafe { Batch::new(slots, offset, len, Mode::Referenced, false) })
}

/// GUP flags a caller may choose (`FOLL_*`), checked: only those that make sense from outside
/// the core mm are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GupFlags(u32);

impl GupFlags {
    /// `FOLL_WRITE`: the pages will be written to.
    pub const WRITE: u32 = bindings::FOLL_WRITE;
    /// `FOLL_FORCE`: write even to a read-only private mapping (breaking COW), as ptrace does.
    pub const FORCE: u32 = bindings::FOLL_FORCE;
    /// `FOLL_LONGTERM`: a long-term pin (pins only).
    pub const LONGTERM: u32 = bindings::FOLL_LONGTERM;
    /// `FOLL_NOFAULT`: do not fault pages in.
    pub const NOFAULT: u32 = bindings::FOLL_NOFAULT;
    /// `FOLL_GET`: never accepted here (the mode decides), named so callers can strip it.
    pub const GET: u32 = bindings::FOLL_GET;

    /// Checks `bits`: `EINVAL` for any flag other than `WRITE`, `FORCE`, `NOFAULT` and (if
    /// `allow_longterm`) `LONGTERM`. Internal flags (`FOLL_GET`, `FOLL_PIN`, ...) are never
    /// accepted: the mode of the call decides those.
    pub fn new(bits: u32, allow_longterm: bool) -> Result<Self> {
        let mut ok = Self::WRITE | Self::FORCE | Self::NOFAULT;
        if allow_longterm {
            ok |= Self::LONGTERM;
        }
        if bits & !ok != 0 {
            return Err(EINVAL);
        }
        Ok(Self(bits))
    }

    /// Whether `FOLL_LONGTERM` is set.
    pub fn is_long_term(self) -> bool {
        self.0 & Self::LONGTERM != 0
    }
}

/// The current task's mmap lock, held for reading.
///
/// # Invariants
///
/// The current task holds `mmap_read_lock(current->mm)` while this value lives, and the value
/// stays on that task.
pub struct MmapReadGuard {
    _not_send: PhantomData<*mut ()>,
}

impl MmapReadGuard {
    /// Takes the lock; `EINTR` if a fatal signal arrives while waiting, `EFAULT` if the task
    /// has no address space (a kernel thread).
    pub fn lock() -> Result<Self> {
        let _mm = UserMm::current()?;
        // SAFETY: The current task has an mm (`_mm`).
        let r = unsafe { shim::iovx_mmap_read_lock_killable() };
        if r != 0 {
            return Err(EINTR);
        }
        // INVARIANT: The lock was taken just above.
        Ok(Self {
            _not_send: PhantomData,
        })
    }
}

impl Drop for MmapReadGuard {
    fn drop(&mut self) {
        // SAFETY: The lock is held by this task (type invariant).
        unsafe { shim::iovx_mmap_read_unlock() };
    }
}

/// Proof that the current task has a user address space (`current->mm`), which user-memory
/// operations need.
///
/// # Invariants
///
/// `current->mm` is not null while this value lives, and the value stays on that task. (A task's
/// mm changes only by `exec` or exit, which cannot happen while it runs here, or by
/// `kthread_use_mm()`/`kthread_unuse_mm()` on a kernel thread, which nothing in this layer does
/// behind a caller's back: KUnit's `kunit_vm_mmap()` attaches an mm until the test case ends.)
pub struct UserMm {
    _not_send: PhantomData<*mut ()>,
}

impl UserMm {
    /// The current task's address space; `EFAULT` if it has none (a kernel thread).
    pub fn current() -> Result<Self> {
        if !current_has_mm() {
            return Err(EFAULT);
        }
        // INVARIANT: Checked just above; `PhantomData<*mut ()>` keeps the value on this task.
        Ok(Self {
            _not_send: PhantomData,
        })
    }
}

/// How GUP walks the page tables.
#[derive(Clone, Copy)]
pub enum Walk<'g> {
    /// Lockless first (`*_user_pages_fast()`), falling back to the slow path on its own.
    Fast(&'g UserMm),
    /// The slow path, under the mmap lock the caller holds (`*_user_pages()`).
    Locked(&'g MmapReadGuard),
}

/// One GUP call: pins (`Mode::Pinned`) or references (otherwise) up to `nr` pages from `addr`
/// into `list`, the lockless way or under the mmap lock as `walk` says. GUP's result: the pages
/// taken, or a negative errno.
///
/// # Safety
///
/// `list` has room for `nr` page pointers; `mode` is not [`Mode::Listed`]; `flags` has
/// `FOLL_LONGTERM` only with [`Mode::Pinned`].
#[inline(always)]
unsafe fn gup_call(
    mode: Mode,
    walk: Walk<'_>,
    addr: usize,
    nr: usize,
    flags: GupFlags,
    list: *mut *mut bindings::page,
) -> i64 {
    // SAFETY: By the safety requirements; `GupFlags` holds only flags a caller may choose; the
    // task has an mm (`walk` holds a `UserMm`, or the `MmapReadGuard` that proves the mmap lock
    // of that mm is held for the slow variants).
    unsafe {
        match (mode, walk) {
            (Mode::Pinned, Walk::Fast(_)) => {
                bindings::pin_user_pages_fast(addr as _, nr as _, flags.0, list) as i64
            }
            (Mode::Pinned, Walk::Locked(_)) => {
                bindings::pin_user_pages(addr as _, nr as _, flags.0, list) as i64
            }
            (_, Walk::Fast(_)) => {
                bindings::get_user_pages_fast(addr as _, nr as _, flags.0, list) as i64
            }
            (_, Walk::Locked(_)) => {
                bindings::get_user_pages(addr as _, nr as _, flags.0, list) as i64
            }
        }
    }
}

/// Pins (`mode` [`Mode::Pinned`]) or references ([`Mode::Referenced`]) up to `slots.len()` pages
/// of the current task from the page containing user address `addr`, as GUP does: the result may
/// be shorter than asked (it stops at the first page it cannot take), and is an error only if not
/// even the first page could be taken.
///
/// `EINVAL` for no slots, [`Mode::Listed`], or `FOLL_LONGTERM` without pinning.
#[inline]
pub fn gup<'buf>(
    addr: usize,
    flags: GupFlags,
    mode: Mode,
    walk: Walk<'_>,
    slots: &'buf mut [PageSlot],
) -> Result<Batch<'static, 'buf>> {
    if slots.is_empty() || mode == Mode::Listed {
        return Err(EINVAL);
    }
    // As GUP itself does: the page containing `addr` is the first.
    let addr = addr - addr % PAGE_SIZE;
    if flags.is_long_term() && mode != Mode::Pinned {
        return Err(EINVAL);
    }
    let nr = slots.len().min(i32::MAX as usize);
    // SAFETY: `slots` has room for `nr` page pointers; the flags and the mode were checked.
    let ret = unsafe { gup_call(mode, walk, addr, nr, flags, slots.as_mut_ptr().cast()) };
    if ret < 0 {
        return Err(Error::from_errno(ret as i32));
    }
    if ret == 0 {
        return Err(EFAULT);
    }
    let got = ret as usize;
    // SAFETY: The first `got` slots hold pages taken just above in `mode`, one pin or reference
    // each, whose duty passes to the batch; they do not borrow anything.
    Ok(unsafe {
        Batch::new(
            &mut slots[..got],
            0,
            got * PAGE_SIZE,
            mode,
            flags.is_long_term(),
        )
    })
}

impl PageRef<'_> {
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
}

/// Reports a broken expectation the way the kernel does: `WARN()` with `msg`, with a backtrace.
pub fn warn(msg: &CStr) {
    // SAFETY: `msg` is NUL-terminated.
    unsafe { shim::iovx_warn(msg.as_char_ptr()) };
}

/// Whether the current task has a user address space: kernel threads have none (unless one is
/// attached, as KUnit does for its cases), and user-memory operations then fail with `EFAULT`.
pub fn current_has_mm() -> bool {
    // SAFETY: Reads `current->mm`, which the task itself does not change under us.
    unsafe { shim::iovx_current_has_mm() }
}

/// Microseconds of the monotonic clock (`ktime_get()`).
pub fn now_us() -> i64 {
    // SAFETY: No preconditions.
    unsafe { shim::iovx_ktime_us() }
}

/// Pages taken by several GUP calls and held together, in an array the value owns.
///
/// # Invariants
///
/// The first `n` slots hold pages that each carry one pin (if `mode` is [`Mode::Pinned`]) or one
/// reference ([`Mode::Referenced`]) owned by this value, released once on drop.
pub struct HeldPages {
    slots: KVec<PageSlot>,
    n: usize,
    mode: Mode,
    longterm: bool,
}

// SAFETY: Held pins and references may be dropped from any task: unpinning and putting pages
// do not depend on the task that took them.
unsafe impl Send for HeldPages {}

impl HeldPages {
    /// Room for `capacity` pages that will be taken in `mode` (pinned or referenced).
    pub fn new(capacity: usize, mode: Mode) -> Result<Self> {
        if mode == Mode::Listed {
            return Err(EINVAL);
        }
        let mut slots = KVec::with_capacity(capacity, GFP_KERNEL)?;
        for _ in 0..capacity {
            slots.push(PageSlot::EMPTY, GFP_KERNEL)?;
        }
        // INVARIANT: No page is held yet.
        Ok(Self {
            slots,
            n: 0,
            mode,
            longterm: false,
        })
    }

    /// Runs `take` on up to `max` free slots and keeps the pages of the batch it returns, which
    /// must be of this value's mode (`EINVAL` otherwise, and the batch is released). Returns how
    /// many pages were added.
    #[inline]
    pub fn take(
        &mut self,
        max: usize,
        take: impl for<'b> FnOnce(&'b mut [PageSlot]) -> Result<Batch<'static, 'b>>,
    ) -> Result<usize> {
        let end = self.n.saturating_add(max).min(self.slots.len());
        let expected = self.slots[self.n..end].as_ptr();
        let batch = take(&mut self.slots[self.n..end])?;
        // The batch must be of this mode and start at the first free slot (a closure could make
        // it over a later part of the slots); otherwise it is released as it is.
        if batch.mode() != self.mode
            || (!batch.pages.is_empty() && batch.pages.as_ptr() != expected)
        {
            return Err(EINVAL);
        }
        let longterm = batch.is_long_term();
        let (pages, _, _, _) = batch.into_raw();
        let got = pages.len();
        // INVARIANT: The batch's pages are the slots right after the held ones (the batch was
        // made over them), and their duty moved here.
        self.n += got;
        self.longterm |= longterm;
        Ok(got)
    }

    /// Takes the pages of the user range `start..end` in GUP calls of `per_call` pages each, in
    /// this value's mode, with `flags` and `walk` as for [`gup`]: the way the kernel's callers
    /// (and `mm/gup_test.c`) pin a buffer a chunk at a time. A call asks for `per_call` pages, or
    /// for the whole pages left before `end`, or for the free slots left, whichever is fewest; the
    /// calls stop when nothing is left to ask for, when one fails or takes no page, or after one
    /// that took fewer pages than it asked for. Returns the bytes from `start` that the calls
    /// asked for (the last one may have taken fewer pages).
    ///
    /// The same as calling [`HeldPages::take`] with [`gup`] in a loop, with the checks made once
    /// rather than per call, which is what a benchmark of one page per call measures.
    pub fn take_range(
        &mut self,
        start: usize,
        end: usize,
        per_call: usize,
        flags: GupFlags,
        walk: Walk<'_>,
    ) -> Result<usize> {
        if per_call == 0 || self.mode == Mode::Listed {
            return Err(EINVAL);
        }
        if flags.is_long_term() && self.mode != Mode::Pinned {
            return Err(EINVAL);
        }
        let per_call = per_call.min(i32::MAX as usize);
        let free = self.slots.len() - self.n;
        // SAFETY: The slots after the held ones are free; the array has `free` of them.
        let base = unsafe { self.slots.as_mut_ptr().add(self.n) }.cast::<*mut bindings::page>();
        // The loop of GUP calls, for one GUP function: `call(addr, nr, list)`.
        #[inline(always)]
        fn run(
            start: usize,
            end: usize,
            per_call: usize,
            free: usize,
            base: *mut *mut bindings::page,
            call: impl Fn(usize, usize, *mut *mut bindings::page) -> i64,
        ) -> (usize, usize) {
            // The arithmetic of the loop cannot overflow: `addr < end` in the loop, `nr` pages
            // fit in `end - addr` and in the `free - taken` slots left, and `taken` grows by at
            // most `nr`; so it wraps (no checks) rather than being checked on every call.
            let mut addr = start;
            let mut taken = 0usize;
            while addr < end {
                let nr = per_call
                    .min(end.wrapping_sub(addr) / PAGE_SIZE)
                    .min(free.wrapping_sub(taken));
                if nr == 0 {
                    break;
                }
                // `base + taken` has room for `nr` page pointers (`nr <= free - taken`).
                let ret = call(addr, nr, base.wrapping_add(taken));
                if ret <= 0 {
                    break;
                }
                // GUP never returns more than asked.
                taken = taken.wrapping_add((ret as usize).min(nr));
                addr = addr.wrapping_add(nr.wrapping_mul(PAGE_SIZE));
                if (ret as usize) < per_call {
                    break;
                }
            }
            (addr, taken)
        }
        // One loop per GUP function, so that the choice is made once, not per call.
        let mode = self.mode;
        let (addr, taken) = match (mode, walk) {
            (Mode::Pinned, Walk::Fast(_)) => {
                run(start, end, per_call, free, base, |a, n, l| {
                    // SAFETY: `l` has room for `n` page pointers (`run`); the flags and the mode
                    // were checked.
                    unsafe { gup_call(Mode::Pinned, walk, a, n, flags, l) }
                })
            }
            (Mode::Pinned, Walk::Locked(_)) => {
                run(start, end, per_call, free, base, |a, n, l| {
                    // SAFETY: `l` has room for `n` page pointers (`run`); the flags and the mode
                    // were checked.
                    unsafe { gup_call(Mode::Pinned, walk, a, n, flags, l) }
                })
            }
            (_, Walk::Fast(_)) => run(start, end, per_call, free, base, |a, n, l| {
                // SAFETY: `l` has room for `n` page pointers (`run`); the flags and the mode
                // were checked.
                unsafe { gup_call(Mode::Referenced, walk, a, n, flags, l) }
            }),
            (_, Walk::Locked(_)) => run(start, end, per_call, free, base, |a, n, l| {
                // SAFETY: `l` has room for `n` page pointers (`run`); the flags and the mode
                // were checked.
                unsafe { gup_call(Mode::Referenced, walk, a, n, flags, l) }
            }),
        };
        note_taken(self.mode, taken, flags.is_long_term());
        // INVARIANT: The `taken` slots after the held ones hold pages taken above in this value's
        // mode, one pin or reference each, now owned here.
        self.n += taken;
        self.longterm |= flags.is_long_term() && taken > 0;
        Ok(addr - start)
    }

    /// Pages held.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether no page is held.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The held pages, for inspection.
    pub fn pages(&self) -> impl Iterator<Item = PageRef<'_>> + '_ {
        // INVARIANT: Each of the first `n` slots is a page held by `self`.
        self.slots[..self.n].iter().map(|s| PageRef {
            page: s.0,
            _p: PhantomData,
        })
    }

    /// Releases every page now (as dropping does).
    pub fn release(self) {
        drop(self)
    }

    /// Releases every page now and keeps the array, empty, for more.
    pub fn release_all(&mut self) {
        let n = core::mem::replace(&mut self.n, 0);
        let longterm = core::mem::replace(&mut self.longterm, false);
        // INVARIANT: Nothing is held any more; the `n` pages go through a batch, which releases
        // them once as it is dropped here.
        drop(Batch::<'static, '_> {
            pages: &mut self.slots[..n],
            offset: 0,
            len: n * PAGE_SIZE,
            mode: self.mode,
            longterm,
            _data: PhantomData,
            _not_send: PhantomData,
        });
    }
}

impl Drop for HeldPages {
    fn drop(&mut self) {
        // Release through a batch over the held slots: same duty, same code path.
        self.release_all();
    }
}
