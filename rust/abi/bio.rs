// SPDX-License-Identifier: GPL-2.0

//! Bios that own the release duty of their pages.
//!
//! C headers: [`include/linux/bio.h`](srctree/include/linux/bio.h),
//! [`include/linux/blk_types.h`](srctree/include/linux/blk_types.h)
//!
//! A [`Bio`] takes extracted [`Batch`]es whole: their pages become the bio's and so does the duty
//! to release them. The bio records that duty as the block layer does: `BIO_PAGE_PINNED` for
//! pinned pages (the flag `bio_release_pages()` honours), nothing for listed ones. Linux 6.12 has
//! no `BIO_PAGE_REFFED` any more (the block layer no longer takes page references), so a bio
//! refuses referenced batches: a batch's mode must be one the kernel's own bio release
//! understands.
//!
//! On completion (success or error) the pages are released exactly once: pinned pages of a read
//! are marked dirty and unpinned through `bio_check_pages_dirty()` (which defers the dirtying to
//! a worker when the completion runs where it may not sleep), pinned pages of a write are
//! unpinned through `__bio_release_pages()`, listed pages need nothing. A bio dropped without
//! being submitted releases its pages the same way.

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use kernel::{bindings, page::PAGE_SIZE, prelude::*, sync::Arc, types::Opaque};

use super::blk::{Disk, Driver};
use super::extract::{note_released, Batch, Mode, PageSlot};
use super::iov::{Direction, IovIter};
use super::shim;

/// Receives the outcome of each bio of an I/O.
///
/// Every bio submitted calls [`Completion::bio_submitted`] once, before it is handed to the
/// block layer, and [`Completion::bio_done`] once, when it has completed and its pages have been
/// released or, for a read into pinned pages, handed to `bio_check_pages_dirty()`, which may
/// finish dirtying and unpinning them from a worker shortly after.
pub trait Completion: Send + Sync + 'static {
    /// A bio is about to be submitted.
    fn bio_submitted(&self);
    /// One bio has completed with `Ok(bytes)` or an error. Called from the completion context
    /// of the disk, which may be atomic.
    fn bio_done(&self, result: Result<usize>);
}

/// Where bios go: a disk made by [`Disk::new`].
///
/// # Invariants
///
/// `disk` is a live gendisk for `'a`.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    disk: *mut bindings::gendisk,
    lbs: u32,
    _p: PhantomData<&'a ()>,
}

impl<T: Driver> Disk<T> {
    /// The disk as a target for bios.
    pub fn target(&self) -> Target<'_> {
        // INVARIANT: The disk lives as long as the borrow.
        Target {
            disk: self.as_raw(),
            lbs: self.logical_block_size(),
            _p: PhantomData,
        }
    }
}

/// A bio being built for a disk borrowed for `'t`.
///
/// # Invariants
///
/// `raw` is a bio for a disk that lives for `'t`, allocated by [`Bio::new`], not yet submitted,
/// owned by this value. Every page
/// in it came from a batch of mode `mode` (pinned or listed) and `pages` counts them; pinned
/// pages hold one pin each, owned by the bio, and the bio has `BIO_PAGE_PINNED` set if there are
/// any; listed pages belong to memory borrowed for `'data`.
pub struct Bio<'t, 'data> {
    raw: NonNull<bindings::bio>,
    mode: Option<Mode>,
    pages: usize,
    write: bool,
    _p: PhantomData<(&'t (), &'data [u8])>,
}

/// What a bio in flight carries in `bi_private`.
struct InFlight<C: Completion> {
    done: Arc<C>,
    bytes: usize,
    pages: usize,
    mode: Option<Mode>,
}

impl<'t, 'data> Bio<'t, 'data> {
    /// A bio for `target` starting at `sector`, with room for `nr_vecs` (at most
    /// `BIO_MAX_VECS`) page segments; a write if `write`, else a read.
    pub fn new(target: Target<'t>, write: bool, sector: u64, nr_vecs: usize) -> Result<Self> {
        if nr_vecs == 0 || nr_vecs > bindings::BIO_MAX_VECS as usize {
            return Err(EINVAL);
        }
        // SAFETY: The disk is live (`Target` invariant); allocation from `fs_bio_set` with
        // GFP_KERNEL waits for memory rather than fail, and this is process context.
        let raw = unsafe { shim::iovx_bio_alloc(target.disk, nr_vecs as u16, write, sector) };
        // INVARIANT: A fresh bio, empty.
        Ok(Self {
            raw: NonNull::new(raw).ok_or(ENOMEM)?,
            mode: None,
            pages: 0,
            write,
            _p: PhantomData,
        })
    }

    /// Page segments that can still be added.
    pub fn room(&self) -> usize {
        // SAFETY: `raw` is a valid bio (type invariant).
        unsafe { shim::iovx_bio_room(self.raw.as_ptr()) as usize }
    }

    /// Bytes in the bio.
    pub fn len(&self) -> usize {
        // SAFETY: `raw` is a valid bio (type invariant).
        unsafe { shim::iovx_bio_size(self.raw.as_ptr()) as usize }
    }

    /// Whether the bio holds no data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the pages of `batch` and the duty to release them.
    ///
    /// Gives the batch back unchanged if it does not fit ([`Bio::room`]), if it is referenced,
    /// or if its mode differs from that of the batches already added.
    pub fn add<'buf>(
        &mut self,
        batch: Batch<'data, 'buf>,
    ) -> core::result::Result<(), Batch<'data, 'buf>> {
        let mode = batch.mode();
        if batch.nr_pages() > self.room()
            || mode == Mode::Referenced
            || self.mode.is_some_and(|m| m != mode)
        {
            return Err(batch);
        }
        let n = batch.nr_pages();
        let (pages, offset, bytes, mode) = batch.into_raw();
        for (i, slot) in pages.iter().enumerate() {
            let start = if i == 0 { offset } else { 0 };
            let end = (offset + bytes - i * PAGE_SIZE).min(PAGE_SIZE);
            // `__bio_add_page()` never merges into the previous segment, so a page pinned twice
            // (by two batches) sits in two segments and is unpinned twice.
            // SAFETY: `raw` is a valid, unsubmitted bio with room for this segment (checked
            // above); the page is held by the bio now; `start..end` is within it.
            unsafe {
                bindings::__bio_add_page(
                    self.raw.as_ptr(),
                    slot_page(slot),
                    (end - start) as u32,
                    start as u32,
                )
            };
        }
        if mode == Mode::Pinned {
            // SAFETY: `raw` is a valid bio; it now holds pinned pages.
            unsafe { shim::iovx_bio_set_pinned(self.raw.as_ptr()) };
        }
        // INVARIANT: The pages and their duty moved from the batch into the bio.
        self.mode = Some(mode);
        self.pages += n;
        Ok(())
    }

    /// Submits the bio; `done` learns its outcome, after its pages have been released.
    pub fn submit<C: Completion>(self, done: Arc<C>) -> Result
    where
        'data: 'static,
    {
        // SAFETY: Listed pages borrow memory for `'static`, which outlives the bio.
        unsafe { self.submit_unchecked(done) }
    }

    /// Submits the bio; `done` learns its outcome, after its pages have been released.
    ///
    /// # Safety
    ///
    /// The memory that listed pages of the bio borrow for `'data` must stay valid until `done`
    /// has been told of this bio's completion.
    pub(crate) unsafe fn submit_unchecked<C: Completion>(self, done: Arc<C>) -> Result {
        let ctx = KBox::new(
            InFlight {
                done,
                bytes: self.len(),
                pages: self.pages,
                mode: self.mode,
            },
            GFP_KERNEL,
        )?;
        let this = core::mem::ManuallyDrop::new(self);
        let bio = this.raw.as_ptr();
        ctx.done.bio_submitted();
        // SAFETY: `bio` is a valid, unsubmitted bio owned by `this`, which is not dropped; the
        // context is reclaimed by `end_io`, which the block layer calls exactly once.
        unsafe {
            shim::iovx_bio_set_end_io(bio, Some(end_io::<C>), KBox::into_raw(ctx).cast());
            if !this.write && this.mode == Some(Mode::Pinned) {
                // The pages of a read are dirtied before the I/O and checked after it, as the
                // kernel's own direct I/O does.
                bindings::bio_set_pages_dirty(bio);
            }
            bindings::submit_bio(bio);
        }
        Ok(())
    }
}

fn slot_page(slot: &PageSlot) -> *mut bindings::page {
    // SAFETY: `PageSlot` is a transparent wrapper of a page pointer.
    unsafe { *(slot as *const PageSlot).cast::<*mut bindings::page>() }
}

/// Releases the pages of a finished (or never submitted) bio as its mode says.
///
/// # Safety
///
/// `bio` holds `pages` pages of mode `mode`, released here exactly once; for a read of pinned
/// pages, the bio is consumed (put) here, otherwise the caller puts it.
unsafe fn release(bio: *mut bindings::bio, pages: usize, mode: Option<Mode>, read: bool) -> bool {
    match mode {
        Some(Mode::Pinned) => {
            if read {
                // SAFETY: A read bio with pinned pages that were set dirty before submission:
                // this checks them, dirties any that were cleaned meanwhile (from a worker when
                // needed), unpins them all (`BIO_PAGE_PINNED`) and puts the bio.
                unsafe { bindings::bio_check_pages_dirty(bio) };
                note_released(Mode::Pinned, pages, true);
                return true;
            }
            // SAFETY: Unpins every page of the bio once (`BIO_PAGE_PINNED` is set).
            unsafe { bindings::__bio_release_pages(bio, false) };
            note_released(Mode::Pinned, pages, false);
        }
        Some(m) => note_released(m, pages, false),
        None => {}
    }
    false
}

/// `bi_end_io` of every bio made here.
///
/// # Safety
///
/// Called by the block layer once per submitted bio, whose `bi_private` is an `InFlight<C>`.
unsafe extern "C" fn end_io<C: Completion>(bio: *mut bindings::bio) {
    // SAFETY: `bi_private` was set from `KBox::into_raw` in `submit_unchecked`, and this runs
    // once.
    let ctx = unsafe { KBox::from_raw(shim::iovx_bio_private(bio).cast::<InFlight<C>>()) };
    // SAFETY: `bio` is valid until put.
    let (status, write) = unsafe { (shim::iovx_bio_status(bio), shim::iovx_bio_is_write(bio)) };
    // SAFETY: The bio's pages are released exactly once, here; the bio is put once.
    unsafe {
        if !release(bio, ctx.pages, ctx.mode, !write) {
            bindings::bio_put(bio);
        }
    }
    let result = if status == 0 {
        Ok(ctx.bytes)
    } else {
        // SAFETY: Pure conversion.
        Err(Error::from_errno(unsafe {
            shim::iovx_blk_status_to_errno(status)
        }))
    };
    ctx.done.bio_done(result);
}

impl Drop for Bio<'_, '_> {
    fn drop(&mut self) {
        let bio = self.raw.as_ptr();
        // SAFETY: The bio was never submitted; its pages are released once and it is put once.
        unsafe {
            if !release(bio, self.pages, self.mode, false) {
                bindings::bio_put(bio);
            }
        }
    }
}

/// Bytes in pages of a batch that can be added whole to a bio with `room` segments left.
fn max_bytes_for(room: usize) -> usize {
    room * PAGE_SIZE
}

/// Submits bios that carry the next `len` bytes of `iter` to `target` from `sector` on, each
/// holding a reference on `done`, and returns the bytes submitted.
///
/// Every bio's size is a multiple of the target's logical block size: a bio that fills up in the
/// middle of a block gives the tail back to the iterator. An error (a fault extracting user
/// pages, say) before anything was submitted is returned, and then no bio is in flight; after
/// that, what was submitted stands and the short count is returned.
///
/// # Safety
///
/// The memory of `iter` (for listed pages) must stay valid until `done` has been told of every
/// bio submitted here.
pub(crate) unsafe fn submit_iter<D: Direction, C: Completion>(
    target: Target<'_>,
    iter: &mut IovIter<'_, D>,
    sector: u64,
    len: usize,
    done: &Arc<C>,
) -> Result<usize> {
    let write = !D::WRITES_MEMORY;
    let lbs = target.lbs as usize;
    let mut submitted = 0usize;
    let mut failed: Option<Error> = None;
    let mut slots: [PageSlot; 32] = core::array::from_fn(|_| PageSlot::EMPTY);
    while submitted < len && failed.is_none() {
        let left = len - submitted;
        let nr_vecs = (left.div_ceil(PAGE_SIZE) + 1).min(bindings::BIO_MAX_VECS as usize);
        let mut bio = match Bio::new(target, write, sector + (submitted as u64 >> 9), nr_vecs) {
            Ok(b) => b,
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        while bio.len() < left && bio.room() > 0 {
            let room = bio.room();
            let want = (left - bio.len()).min(max_bytes_for(room));
            let nslots = room.min(slots.len());
            let mut batch = match iter.extract(&mut slots[..nslots], want) {
                Ok(b) if b.is_empty() => break,
                Ok(b) => b,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            // A bio that this batch fills must end on a block boundary: give the partial
            // block back to the iterator.
            let total = bio.len() + batch.len();
            if batch.nr_pages() == room && total < left && total % lbs != 0 {
                let keep = batch.len().saturating_sub(total % lbs);
                let back = batch.len() - keep;
                batch.truncate(keep);
                // Cannot fail: the iterator was just advanced by more than `back`.
                let _ = iter.revert(back);
                if batch.is_empty() {
                    break;
                }
            }
            if let Err(batch) = bio.add(batch) {
                // Cannot happen (room and mode were checked); give the bytes back and stop.
                let n = batch.len();
                drop(batch);
                let _ = iter.revert(n);
                break;
            }
        }
        if bio.is_empty() {
            break;
        }
        let n = bio.len();
        if n % lbs != 0 {
            // The iterator ran out in the middle of a block: lengths are checked against the
            // block size before, so this is a caller error. Nothing of this bio is submitted.
            drop(bio);
            let _ = iter.revert(n);
            failed = failed.or(Some(EINVAL));
            break;
        }
        // SAFETY: The caller keeps the iterator's memory valid until `done` has heard of every
        // bio.
        match unsafe { bio.submit_unchecked(done.clone()) } {
            Ok(()) => submitted += n,
            Err(e) => {
                let _ = iter.revert(n);
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) if submitted == 0 => Err(e),
        _ => Ok(submitted),
    }
}

/// A [`Completion`] to wait on: counts the bios, adds up their bytes and keeps the first error.
///
/// # Invariants
///
/// `pending` counts the bios in flight plus one for the waiter; `done` is initialised and is
/// completed when `pending` drops to zero.
pub struct Waiter {
    pending: AtomicUsize,
    bios: AtomicUsize,
    bytes: AtomicUsize,
    error: AtomicI32,
    done: Opaque<bindings::completion>,
}

// SAFETY: `struct completion` is made to be completed and waited on from different threads; the
// rest are atomics.
unsafe impl Send for Waiter {}
// SAFETY: As above.
unsafe impl Sync for Waiter {}

/// What a waited-for I/O did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    /// Bytes transferred by the bios that succeeded.
    pub bytes: usize,
    /// Bios submitted.
    pub bios: usize,
}

impl Waiter {
    fn new() -> Result<Arc<Self>> {
        let w = Arc::new(
            Waiter {
                pending: AtomicUsize::new(1),
                bios: AtomicUsize::new(0),
                bytes: AtomicUsize::new(0),
                error: AtomicI32::new(0),
                done: Opaque::uninit(),
            },
            GFP_KERNEL,
        )?;
        // INVARIANT: `done` is initialised before the `Arc` is shared with any bio.
        // SAFETY: `done` is valid for writes and not yet in use.
        unsafe { shim::iovx_init_completion(w.done.get()) };
        Ok(w)
    }

    fn put(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: `done` is initialised (type invariant).
            unsafe { bindings::complete(self.done.get()) };
        }
    }

    fn wait(&self) -> Result<Done> {
        self.put();
        // SAFETY: `done` is initialised (type invariant); it is completed by the last `put`.
        unsafe { bindings::wait_for_completion(self.done.get()) };
        match self.error.load(Ordering::Acquire) {
            0 => Ok(Done {
                bytes: self.bytes.load(Ordering::Acquire),
                bios: self.bios.load(Ordering::Acquire),
            }),
            e => Err(Error::from_errno(e)),
        }
    }
}

impl Completion for Waiter {
    fn bio_submitted(&self) {
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    fn bio_done(&self, result: Result<usize>) {
        self.bios.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(n) => _ = self.bytes.fetch_add(n, Ordering::AcqRel),
            Err(e) => {
                let _ = self.error.compare_exchange(
                    0,
                    e.to_errno(),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
        }
        self.put();
    }
}

/// Transfers the next `len` bytes of `iter` to or from `target` at `sector` through bios, and
/// waits for them: the synchronous iter-to-bio path, for kernel and user memory alike.
///
/// Returns the bytes and bios, or the first error of a bio, or the extraction error if nothing
/// could be submitted. `len` should be a multiple of the target's logical block size.
pub fn submit_iter_wait<D: Direction>(
    target: Target<'_>,
    iter: &mut IovIter<'_, D>,
    sector: u64,
    len: usize,
) -> Result<Done> {
    let w = Waiter::new()?;
    // SAFETY: The iterator's memory is borrowed for the whole call, and the call waits below for
    // every bio submitted to report to `w` before returning.
    let r = unsafe { submit_iter(target, iter, sector, len, &w) };
    let done = w.wait();
    r?;
    done
}
