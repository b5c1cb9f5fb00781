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

use core::ffi::c_void;
use core::marker::PhantomData;
use core::pin::Pin;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize, Ordering};
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
///
/// A completion that a waiting submitter keeps on its stack ([`Borrowed`]) may be gone as soon as
/// the call of `bio_done` that lets the submitter go on has signalled it: an implementation
/// touches nothing of itself after that signal.
pub trait Completion: Send + Sync + 'static {
    /// A bio of `bytes` bytes is about to be submitted.
    fn bio_submitted(&self, bytes: usize);
    /// One bio has completed, successfully or with an error. Called from the completion context
    /// of the disk, which may be atomic.
    fn bio_done(&self, result: Result);

    /// Whether this completion takes its bios back when they finish ([`Completion::bio_finished`])
    /// and releases their pages itself, in process context once it has waited for them, as the
    /// kernel's synchronous direct I/O does: the pages of a read are then dirtied once, at
    /// release, rather than before the I/O and checked after it. Otherwise each bio's pages are
    /// released in its completion context.
    const TAKES_FINISHED: bool = false;

    /// A bio of a completion that [takes them](Completion::TAKES_FINISHED) has finished: called
    /// in the bio's completion context, before [`Completion::bio_done`] for the same bio.
    /// Dropping `bio` releases its pages there and then.
    fn bio_finished(&self, bio: Finished) {
        drop(bio)
    }
}

/// A bio whose I/O is over, with its pages still to release.
///
/// # Invariants
///
/// `raw` is a bio made by [`Bio::new`] whose I/O has completed (its `end_io` has run), owned by
/// this value: its pages (one per segment, pinned if `BIO_PAGE_PINNED` is set, listed otherwise)
/// are released once, by [`Finished::release`] or on drop, and the bio put once. If `dirty`, it
/// was a read into pinned pages that were not dirtied before the I/O.
pub struct Finished {
    raw: NonNull<bindings::bio>,
    dirty: bool,
}

// SAFETY: A finished bio is not used by the block layer any more; its pages may be released and
// the bio put from any task.
unsafe impl Send for Finished {}

impl Finished {
    /// Releases the pages now, dirtying those a read filled (taking their folio locks, so this
    /// may sleep: process context only), and puts the bio.
    pub fn release(self) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: The bio is finished and owned by `this`, which is not dropped; it is released
        // and put once, here, in process context.
        unsafe { release_now(this.raw.as_ptr(), this.dirty, true) };
    }

    /// Gives the bio up as a pointer (for a list of finished bios).
    fn into_raw(self) -> *mut bindings::bio {
        let this = core::mem::ManuallyDrop::new(self);
        // `dirty` is recomputed by `from_raw`.
        this.raw.as_ptr()
    }

    /// Takes back a bio given up by [`Finished::into_raw`].
    ///
    /// # Safety
    ///
    /// `bio` came from `into_raw` of a `Finished` made by `end_io` for a completion that takes
    /// its bios, and is taken back once.
    unsafe fn from_raw(bio: *mut bindings::bio) -> Self {
        // SAFETY: By the safety requirements the bio is valid and finished.
        let (_, pinned) = unsafe { bio_pages(bio) };
        // SAFETY: As above.
        let read = unsafe { (*bio).bi_opf & 1 == 0 };
        // INVARIANT: A read into pinned pages of such a completion was not dirtied at submission.
        Self {
            // SAFETY: `into_raw` gives the non-null pointer of a `Finished`.
            raw: unsafe { NonNull::new_unchecked(bio) },
            dirty: read && pinned,
        }
    }
}

impl Drop for Finished {
    fn drop(&mut self) {
        // SAFETY: Finished and owned here; its pages are released once (a read's pinned pages,
        // not dirtied before the I/O, through `bio_check_pages_dirty()`, which may run in any
        // context) and it is put once.
        unsafe { release(self.raw.as_ptr(), self.dirty) };
    }
}

/// Releases the pages of a bio whose I/O is over (or that was never submitted) and lets the bio
/// go: put if `pooled`, else uninitialised.
///
/// # Safety
///
/// `bio` is a bio of a [`Bio`] that nothing else uses any more, whose pages (one per segment) are
/// pinned if `BIO_PAGE_PINNED` is set and listed otherwise; they are released here exactly once,
/// and the bio let go once. With `dirty`, pinned pages are dirtied first, which takes their folio
/// locks: process context only.
#[inline]
unsafe fn release_now(bio: *mut bindings::bio, dirty: bool, pooled: bool) {
    // SAFETY: `bio` is valid until let go below; `bi_vcnt` counts its pages.
    let (pages, pinned) = unsafe { bio_pages(bio) };
    // SAFETY: Unpins every page once (`BIO_PAGE_PINNED`), after dirtying those of a read that
    // are clean (`__bio_release_pages()`, leaving dirty folios unlocked); listed pages need
    // nothing. Then the bio is let go once, as it was made.
    unsafe {
        if pinned {
            shim::iovx_bio_release_pages(bio, dirty);
        }
        if pooled {
            bindings::bio_put(bio);
        } else {
            bindings::bio_uninit(bio);
        }
    }
    if pinned {
        note_released(Mode::Pinned, pages, dirty);
    } else if pages > 0 {
        note_released(Mode::Listed, pages, false);
    }
}

/// The pages of a bio made by [`Bio::new`] (one per segment) and whether they are pinned.
///
/// # Safety
///
/// `bio` is valid.
unsafe fn bio_pages(bio: *mut bindings::bio) -> (usize, bool) {
    // SAFETY: By the safety requirements.
    unsafe {
        (
            (*bio).bi_vcnt as usize,
            (*bio).bi_flags & (1 << bindings::BIO_PAGE_PINNED) != 0,
        )
    }
}

/// How a bio in flight reaches its [`Completion`]: the bio carries one of these in `bi_private`.
///
/// # Safety
///
/// `into_raw` gives a non-null pointer that `from_raw` turns back into the same value, once;
/// while the pointer is held, the completion it leads to stays valid.
pub unsafe trait DoneRef: Clone + Send {
    /// The completion.
    type C: Completion;
    /// The completion this leads to.
    fn completion(&self) -> &Self::C;
    /// Gives the value up as a pointer for `bi_private`.
    fn into_raw(self) -> *mut c_void;
    /// Takes back a value given up by [`DoneRef::into_raw`].
    ///
    /// # Safety
    ///
    /// `p` came from `into_raw` of this type and is taken back once.
    unsafe fn from_raw(p: *mut c_void) -> Self;
}

// SAFETY: `Arc::into_raw` and `Arc::from_raw` round-trip, and the reference the pointer stands
// for keeps the completion alive.
unsafe impl<C: Completion> DoneRef for Arc<C> {
    type C = C;
    fn completion(&self) -> &C {
        self
    }
    fn into_raw(self) -> *mut c_void {
        Arc::into_raw(self).cast_mut().cast()
    }
    unsafe fn from_raw(p: *mut c_void) -> Self {
        // SAFETY: By the safety requirements, `p` came from `Arc::into_raw` of an `Arc<C>`.
        unsafe { Arc::from_raw(p.cast::<C>().cast_const()) }
    }
}

/// A completion borrowed by the bios of a submitter that waits for all of them before the
/// completion goes away: no reference count, no allocation.
///
/// # Invariants
///
/// `ptr` points to a completion that stays valid and in place while this value or a copy of it
/// (in a bio) exists, up to the [`Completion::bio_done`] call that signals it.
pub(crate) struct Borrowed<C: Completion> {
    ptr: NonNull<C>,
}

impl<C: Completion> Borrowed<C> {
    /// Lends `done` to bios.
    ///
    /// # Safety
    ///
    /// `done` must stay valid and in place until every bio given a copy of this value has
    /// reported to it, and the submitter must wait for that before letting `done` go.
    pub(crate) unsafe fn new(done: Pin<&C>) -> Self {
        // INVARIANT: By the safety requirements.
        Self {
            ptr: NonNull::from(done.get_ref()),
        }
    }
}

impl<C: Completion> Clone for Borrowed<C> {
    fn clone(&self) -> Self {
        // INVARIANT: A copy of a value of the same lending.
        Self { ptr: self.ptr }
    }
}

// SAFETY: The completion is `Sync`, so a shared reference to it may go to the completing thread.
unsafe impl<C: Completion> Send for Borrowed<C> {}

// SAFETY: The pointer round-trips; the completion stays valid while it is held (type
// invariant).
unsafe impl<C: Completion> DoneRef for Borrowed<C> {
    type C = C;
    fn completion(&self) -> &C {
        // SAFETY: Valid while this value exists (type invariant).
        unsafe { self.ptr.as_ref() }
    }
    fn into_raw(self) -> *mut c_void {
        self.ptr.as_ptr().cast()
    }
    unsafe fn from_raw(p: *mut c_void) -> Self {
        // INVARIANT: `p` came from `into_raw` of a `Borrowed<C>` (safety requirements).
        Self {
            // SAFETY: `into_raw` gives the non-null pointer of a `Borrowed`.
            ptr: unsafe { NonNull::new_unchecked(p.cast()) },
        }
    }
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
    ioprio: u16,
    _p: PhantomData<&'a ()>,
}

impl Target<'_> {
    /// The same disk, for bios of I/O priority `ioprio` (`bi_ioprio`: a kiocb's `ki_ioprio`, say).
    /// Without it, the block layer gives each bio its submitter's priority.
    pub fn with_ioprio(self, ioprio: u16) -> Self {
        Self { ioprio, ..self }
    }
}

impl<T: Driver> Disk<T> {
    /// The disk as a target for bios.
    pub fn target(&self) -> Target<'_> {
        // INVARIANT: The disk lives as long as the borrow.
        Target {
            disk: self.as_raw(),
            lbs: self.logical_block_size(),
            ioprio: 0,
            _p: PhantomData,
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Where the `struct bio` of a [`Bio`] lives, and so how it is submitted and let go.
pub trait Storage: sealed::Sealed {
    /// Allocated from a bio set and put when done; otherwise it lives in a caller's [`BioSlot`]
    /// and is uninitialised when done.
    const POOLED: bool;
}

/// A bio allocated from `fs_bio_set`: submitted with a [`Completion`], freed by `bio_put()`.
pub enum Pooled {}

impl sealed::Sealed for Pooled {}
impl Storage for Pooled {
    const POOLED: bool = true;
}

/// A bio in a [`BioSlot`] borrowed for `'s`: submitted only by [`Bio::submit_wait`], which
/// does not return before the I/O is over, so the slot outlives it.
pub struct Inline<'s>(PhantomData<&'s mut BioSlot>);

impl sealed::Sealed for Inline<'_> {}
impl Storage for Inline<'_> {
    const POOLED: bool = false;
}

/// Segments of a bio in a [`BioSlot`], as many as `block/fops.c` keeps inline for small
/// synchronous direct I/O (`DIO_INLINE_BIO_VECS`).
pub const INLINE_VECS: usize = 4;

/// Room for a bio and [`INLINE_VECS`] segments, in the stack frame of a synchronous submitter:
/// a small synchronous transfer then allocates nothing, as the kernel's own synchronous direct
/// I/O puts its bio on its stack.
#[repr(C)]
pub struct BioSlot {
    bio: core::mem::MaybeUninit<bindings::bio>,
    vecs: [core::mem::MaybeUninit<bindings::bio_vec>; INLINE_VECS],
}

impl BioSlot {
    /// Empty room.
    pub const fn new() -> Self {
        Self {
            bio: core::mem::MaybeUninit::uninit(),
            vecs: [const { core::mem::MaybeUninit::uninit() }; INLINE_VECS],
        }
    }
}

impl Default for BioSlot {
    fn default() -> Self {
        Self::new()
    }
}

/// A bio being built for a disk borrowed for `'t`.
///
/// # Invariants
///
/// `raw` is a bio for a disk that lives for `'t`, not yet submitted, owned by this value: with
/// [`Pooled`] storage allocated by [`Bio::new`], with [`Inline<'s>`] initialised by
/// [`Bio::new_inline`] in a [`BioSlot`] borrowed for `'s` (its segments are the slot's). Every
/// page in it came from a batch of mode `mode` (pinned or listed) and sits in a segment of its
/// own, so that `bi_vcnt` counts the pages; pinned pages hold one pin each, owned by the bio, and
/// the bio has `BIO_PAGE_PINNED` set if and only if there are any; listed pages belong to memory
/// borrowed for `'data`.
pub struct Bio<'t, 'data, S: Storage = Pooled> {
    raw: NonNull<bindings::bio>,
    mode: Option<Mode>,
    write: bool,
    _p: PhantomData<(&'t (), &'data [u8], S)>,
}

impl<'t, 'data> Bio<'t, 'data, Pooled> {
    /// A bio for `target` starting at `sector`, with room for `nr_vecs` (at most
    /// `BIO_MAX_VECS`) page segments; a write if `write`, else a read.
    pub fn new(target: Target<'t>, write: bool, sector: u64, nr_vecs: usize) -> Result<Self> {
        if nr_vecs == 0 || nr_vecs > bindings::BIO_MAX_VECS as usize {
            return Err(EINVAL);
        }
        // SAFETY: The disk is live (`Target` invariant); allocation from `fs_bio_set` with
        // GFP_KERNEL waits for memory rather than fail, and this is process context.
        let raw = unsafe { shim::iovx_bio_alloc(target.disk, nr_vecs as u16, write, sector) };
        let raw = NonNull::new(raw).ok_or(ENOMEM)?;
        // SAFETY: A fresh bio, ours.
        unsafe { (*raw.as_ptr()).bi_ioprio = target.ioprio };
        // INVARIANT: A fresh bio, empty.
        Ok(Self {
            raw,
            mode: None,
            write,
            _p: PhantomData,
        })
    }
}

impl<'t, 'data, S: Storage> Bio<'t, 'data, S> {
    /// Page segments that can still be added.
    #[inline]
    pub fn room(&self) -> usize {
        // SAFETY: `raw` is a valid bio, owned by this value (type invariant).
        let b = unsafe { self.raw.as_ref() };
        (b.bi_max_vecs - b.bi_vcnt) as usize
    }

    /// Bytes in the bio.
    #[inline]
    pub fn len(&self) -> usize {
        // SAFETY: `raw` is a valid bio, owned by this value (type invariant).
        unsafe { self.raw.as_ref().bi_iter.bi_size as usize }
    }

    /// Whether the bio holds no data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the pages of `batch` and the duty to release them.
    ///
    /// Gives the batch back unchanged if it does not fit ([`Bio::room`]), if it is referenced,
    /// or if its mode differs from that of the batches already added.
    #[inline(always)]
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
        let (pages, offset, bytes, mode) = batch.into_raw();
        let bio = self.raw.as_ptr();
        for (i, slot) in pages.iter().enumerate() {
            let start = if i == 0 { offset } else { 0 };
            let end = (offset + bytes - i * PAGE_SIZE).min(PAGE_SIZE);
            // `__bio_add_page()`, inline: the page goes into a segment of its own, never merged
            // into the previous one, so a page pinned twice (by two batches) sits in two
            // segments and is unpinned twice. The bio is this value's, not a clone; the room
            // check above keeps `bi_vcnt` below `bi_max_vecs`, the size of `bi_io_vec`; its size
            // stays far below `u32::MAX` (at most `BIO_MAX_VECS` pages).
            let len = (end - start) as u32;
            // SAFETY: `bio` is valid and unsubmitted, with room for this segment (above); the
            // page is held by the bio now and `start..end` lies within it.
            unsafe {
                let v = (*bio).bi_io_vec.add((*bio).bi_vcnt as usize);
                (*v).bv_page = slot_page(slot);
                (*v).bv_len = len;
                (*v).bv_offset = start as u32;
                (*bio).bi_vcnt += 1;
                (*bio).bi_iter.bi_size += len;
            }
        }
        if mode == Mode::Pinned && self.mode.is_none() {
            // SAFETY: `raw` is a valid bio owned by this value; it now holds pinned pages.
            unsafe { (*self.raw.as_ptr()).bi_flags |= 1 << bindings::BIO_PAGE_PINNED };
        }
        // INVARIANT: The pages and their duty moved from the batch into the bio, one segment
        // each.
        self.mode = Some(mode);
        Ok(())
    }
}

impl<'t, 'data> Bio<'t, 'data, Pooled> {
    /// Submits the bio; `done` learns its outcome, after its pages have been released.
    pub fn submit<C: Completion>(self, done: Arc<C>)
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
    pub(crate) unsafe fn submit_unchecked<R: DoneRef>(self, done: R) {
        let this = core::mem::ManuallyDrop::new(self);
        let bio = this.raw.as_ptr();
        done.completion().bio_submitted(this.len());
        // SAFETY: `bio` is a valid, unsubmitted bio owned by `this`, which is not dropped; the
        // pointer in `bi_private` is taken back by `end_io`, which the block layer calls
        // exactly once.
        unsafe {
            (*bio).bi_end_io = Some(end_io::<R>);
            (*bio).bi_private = done.into_raw();
            if !this.write && this.mode == Some(Mode::Pinned) && !<R::C>::TAKES_FINISHED {
                // The pages of a read are dirtied before the I/O and checked after it, as the
                // kernel's own asynchronous direct I/O does (skipping those dirty already). A
                // completion that takes its bios back dirties them at release instead.
                shim::iovx_bio_set_pages_dirty(bio);
            }
            bindings::submit_bio(bio);
        }
    }
}

fn slot_page(slot: &PageSlot) -> *mut bindings::page {
    // SAFETY: `PageSlot` is a transparent wrapper of a page pointer.
    unsafe { *(slot as *const PageSlot).cast::<*mut bindings::page>() }
}

/// Releases the pages of a finished (or never submitted) bio and puts the bio.
///
/// # Safety
///
/// `bio` is a bio made by [`Bio::new`] whose pages (one per segment) are pinned if
/// `BIO_PAGE_PINNED` is set and listed otherwise; they are released here exactly once, and the
/// bio is put once. With `read`, pinned pages that are not dirty (not dirtied before the I/O, or
/// cleaned since) are dirtied by a worker of the block layer, so this may run in any context.
unsafe fn release(bio: *mut bindings::bio, read: bool) {
    // SAFETY: `bio` is valid until put below.
    let (pages, pinned) = unsafe { bio_pages(bio) };
    if !pinned {
        if pages > 0 {
            note_released(Mode::Listed, pages, false);
        }
        // SAFETY: Listed pages need nothing; the bio is put once.
        unsafe { bindings::bio_put(bio) };
    } else if read {
        // SAFETY: A read bio with pinned pages that were set dirty before submission: this
        // checks them, dirties any that were cleaned meanwhile (from a worker when needed),
        // unpins them all (`BIO_PAGE_PINNED`) and puts the bio.
        unsafe { bindings::bio_check_pages_dirty(bio) };
        note_released(Mode::Pinned, pages, true);
    } else {
        // SAFETY: Unpins every page of the bio once (`BIO_PAGE_PINNED` is set), then puts it.
        unsafe {
            bindings::__bio_release_pages(bio, false);
            bindings::bio_put(bio);
        }
        note_released(Mode::Pinned, pages, false);
    }
}

/// `bi_end_io` of every bio made here.
///
/// # Safety
///
/// Called by the block layer once per submitted bio, whose `bi_private` came from
/// `R::into_raw`.
unsafe extern "C" fn end_io<R: DoneRef>(bio: *mut bindings::bio) {
    // SAFETY: `bio` is valid until put; `bi_private` came from `R::into_raw` in
    // `submit_unchecked`, and this runs once.
    let (done, status, write) = unsafe {
        (
            R::from_raw((*bio).bi_private),
            (*bio).bi_status,
            (*bio).bi_opf & 1 != 0,
        )
    };
    if <R::C as Completion>::TAKES_FINISHED {
        // INVARIANT: The I/O is over and the bio is handed on whole; a read's pinned pages were
        // not dirtied at submission (`submit_unchecked`).
        // SAFETY: `bio` is valid: it is being completed.
        let (_, pinned) = unsafe { bio_pages(bio) };
        let fin = Finished {
            // SAFETY: `bio` is not null: the block layer completed it.
            raw: unsafe { NonNull::new_unchecked(bio) },
            dirty: !write && pinned,
        };
        done.completion().bio_finished(fin);
    } else {
        // SAFETY: The bio's pages are released exactly once, here, and the bio put; a read of
        // pinned pages had them set dirty at submission.
        unsafe { release(bio, !write) };
    }
    let result = if status == 0 {
        Ok(())
    } else {
        // SAFETY: Pure conversion.
        Err(Error::from_errno(unsafe {
            bindings::blk_status_to_errno(status)
        }))
    };
    done.completion().bio_done(result);
}

impl<S: Storage> Drop for Bio<'_, '_, S> {
    fn drop(&mut self) {
        // SAFETY: The bio was never submitted (so a read's pinned pages were not set dirty and
        // are unpinned as a write's); its pages are released once and it is put (pooled) or
        // uninitialised (inline) once.
        unsafe {
            if S::POOLED {
                release(self.raw.as_ptr(), false)
            } else {
                release_now(self.raw.as_ptr(), false, false)
            }
        };
    }
}

impl<'s, 't, 'data> Bio<'t, 'data, Inline<'s>> {
    /// A bio for `target` starting at `sector` in `slot`, with room for [`INLINE_VECS`] page
    /// segments; a write if `write`, else a read. Allocates nothing.
    #[inline]
    pub fn new_inline(slot: &'s mut BioSlot, target: Target<'t>, write: bool, sector: u64) -> Self {
        let bio = slot.bio.as_mut_ptr();
        // SAFETY: The disk is live (`Target` invariant); `slot` is borrowed mutably for `'s`, so
        // the bio and its segments stay in place and untouched by anyone else while this value
        // (which cannot outlive `'s`) owns them.
        unsafe {
            shim::iovx_bio_init_inline(
                bio,
                slot.vecs.as_mut_ptr().cast(),
                INLINE_VECS as u16,
                target.disk,
                write,
                sector,
            )
        };
        // SAFETY: Initialised just above, ours.
        unsafe { (*bio).bi_ioprio = target.ioprio };
        // INVARIANT: A fresh bio in `slot`, empty.
        Self {
            // SAFETY: A pointer into a borrowed slot is not null.
            raw: unsafe { NonNull::new_unchecked(bio) },
            mode: None,
            write,
            _p: PhantomData,
        }
    }

    /// Submits the bio, waits for it, releases its pages (dirtying those a read filled) and
    /// returns its bytes, or the error it completed with. Process context: this sleeps.
    ///
    /// The memory that listed pages borrow for `'data` outlives the call, which outlives the
    /// I/O: this is safe for kernel memory too, as the slot is.
    #[inline]
    pub fn submit_wait(self) -> Result<usize> {
        let this = core::mem::ManuallyDrop::new(self);
        let bio = this.raw.as_ptr();
        let n = this.len();
        let dirty = !this.write && this.mode == Some(Mode::Pinned);
        // `submit_bio_wait()` completes the bio through a completion on its own stack and
        // returns once it is over, so the slot, the disk and the memory of listed pages, all
        // borrowed beyond this call, outlive the I/O.
        // SAFETY: `bio` is a valid, unsubmitted bio owned by `this`, which is not dropped.
        let err = unsafe { bindings::submit_bio_wait(bio) };
        // SAFETY: The I/O is over and the bio is this call's; its pages are released once
        // (dirtied first if a read filled pinned ones) and it is uninitialised once.
        unsafe { release_now(bio, dirty, false) };
        if err == 0 {
            Ok(n)
        } else {
            Err(Error::from_errno(err))
        }
    }
}

/// Bytes in pages of a batch that can be added whole to a bio with `room` segments left.
fn max_bytes_for(room: usize) -> usize {
    room * PAGE_SIZE
}

/// Adds pages of `iter` to `bio` until it holds `left` bytes, is full or the iterator runs out.
/// A bio that fills up before `left` ends on a block boundary of `lbs` bytes: the partial block
/// goes back to the iterator. An extraction error is returned; what was added stays.
#[inline(always)]
fn fill<'data, S: Storage, D: Direction>(
    bio: &mut Bio<'_, 'data, S>,
    iter: &mut IovIter<'data, D>,
    left: usize,
    lbs: usize,
    slots: &mut [PageSlot],
) -> Result {
    while bio.len() < left && bio.room() > 0 {
        let room = bio.room();
        let want = (left - bio.len()).min(max_bytes_for(room));
        let nslots = room.min(slots.len());
        let mut batch = match iter.extract(&mut slots[..nslots], want) {
            Ok(b) if b.is_empty() => break,
            Ok(b) => b,
            Err(e) => return Err(e),
        };
        // A bio that this batch fills must end on a block boundary: give the partial block
        // back to the iterator.
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
    Ok(())
}

/// Runs `f` with an empty page array on the stack for a transfer of `len` bytes: a small one,
/// cheaper to clear, for up to two pages.
#[inline(always)]
fn with_slots<T>(len: usize, f: impl FnOnce(&mut [PageSlot]) -> T) -> T {
    let mut small = [const { PageSlot::EMPTY }; INLINE_VECS];
    let mut large = core::mem::MaybeUninit::<[PageSlot; 32]>::uninit();
    let slots: &mut [PageSlot] = if len <= 2 * PAGE_SIZE {
        &mut small
    } else {
        large.write([const { PageSlot::EMPTY }; 32])
    };
    f(slots)
}

/// Fills `bio` with exactly the next `len` bytes of `iter`, a whole number of `lbs`-byte
/// blocks, and gives it back. Otherwise the bio is dropped (its pages released) and the iterator
/// reverted: the extraction error if nothing could be taken, else `None`, nothing done.
#[inline(always)]
fn fill_whole<'t, 'data, S: Storage, D: Direction>(
    mut bio: Bio<'t, 'data, S>,
    iter: &mut IovIter<'data, D>,
    len: usize,
    lbs: usize,
    slots: &mut [PageSlot],
) -> Result<Option<Bio<'t, 'data, S>>> {
    let r = fill(&mut bio, iter, len, lbs, slots);
    let n = bio.len();
    if n == len && n % lbs == 0 {
        return Ok(Some(bio));
    }
    drop(bio);
    let _ = iter.revert(n);
    match r {
        Err(e) if n == 0 => Err(e),
        _ => Ok(None),
    }
}

/// Transfers the next `len` bytes of `iter` to or from `target` at `sector` in one bio kept in
/// `slot`, and waits for it: the synchronous path for transfers that fit in [`INLINE_VECS`]
/// pages, with nothing allocated. Returns the bytes, or the bio's error, or the extraction
/// error; `None`, with nothing done, if the transfer does not fit in the slot's bio (or stops
/// in the middle of a block), for the caller to go the general way.
#[inline]
pub(crate) fn submit_iter_wait_inline<D: Direction>(
    slot: &mut BioSlot,
    target: Target<'_>,
    iter: &mut IovIter<'_, D>,
    sector: u64,
    len: usize,
) -> Result<Option<usize>> {
    let mut slots = [const { PageSlot::EMPTY }; INLINE_VECS];
    let lbs = target.lbs as usize;
    let bio = Bio::new_inline(slot, target, !D::WRITES_MEMORY, sector);
    match fill_whole(bio, iter, len, lbs, &mut slots)? {
        Some(bio) => bio.submit_wait().map(Some),
        None => Ok(None),
    }
}

/// Submits the next `len` bytes of `iter` to or from `target` at `sector` in one bio, which
/// `done` hears of: the asynchronous path for transfers that fit in one bio, as
/// `__blkdev_direct_IO_async()`. Returns the bytes submitted, or the extraction or allocation
/// error with nothing submitted; `None`, with nothing done, if the transfer does not fit in one
/// bio (or stops in the middle of a block), for the caller to go the general way
/// ([`submit_iter`]).
///
/// # Safety
///
/// The memory of `iter` (for listed pages) must stay valid until `done` has been told of the bio.
#[inline]
pub(crate) unsafe fn submit_iter_one<D: Direction, R: DoneRef>(
    target: Target<'_>,
    iter: &mut IovIter<'_, D>,
    sector: u64,
    len: usize,
    done: &R,
) -> Result<Option<usize>> {
    let lbs = target.lbs as usize;
    let nr_vecs = (len.div_ceil(PAGE_SIZE) + 1).min(bindings::BIO_MAX_VECS as usize);
    let bio = Bio::new(target, !D::WRITES_MEMORY, sector, nr_vecs)?;
    let Some(bio) = with_slots(len, |slots| fill_whole(bio, iter, len, lbs, slots))? else {
        return Ok(None);
    };
    // SAFETY: The caller keeps the iterator's memory valid until `done` has heard of the bio.
    unsafe { bio.submit_unchecked(done.clone()) };
    Ok(Some(len))
}

/// Submits bios that carry the next `len` bytes of `iter` to `target` from `sector` on, each
/// holding a copy of `done`, and returns the bytes submitted.
///
/// Every bio's size is a multiple of the target's logical block size: a bio that fills up in the
/// middle of a block gives the tail back to the iterator. An error (a fault extracting user
/// pages, say) before anything was submitted is returned, and then no bio is in flight; after
/// that, what was submitted stands and the short count is returned.
///
/// With `one_bio` the transfer must fit in one bio: otherwise nothing is submitted and the
/// result is `EAGAIN`. `IOCB_NOWAIT` callers ask for it, as the kernel's block device direct I/O
/// does, and so do completions that can take one bio only. The bio
/// is not `REQ_NOWAIT`: the block layer would then fail it with `EAGAIN` at completion when it
/// has to split it or wait for a tag, and io_uring retries such completions for regular files and
/// block devices only, so the caller of a character device would see them. Without it, the only
/// wait left is for a free tag in a full queue, which the RAM disk (completing requests as they
/// come) has only in its delayed-completion mode.
///
/// # Safety
///
/// The memory of `iter` (for listed pages) must stay valid until `done` has been told of every
/// bio submitted here.
pub(crate) unsafe fn submit_iter<D: Direction, R: DoneRef>(
    target: Target<'_>,
    iter: &mut IovIter<'_, D>,
    sector: u64,
    len: usize,
    one_bio: bool,
    done: &R,
) -> Result<usize> {
    // The page array is on the stack and starts empty (`with_slots()`).
    with_slots(len, |slots| {
        let write = !D::WRITES_MEMORY;
        let lbs = target.lbs as usize;
        let mut submitted = 0usize;
        let mut failed: Option<Error> = None;
        while submitted < len && failed.is_none() {
            let left = len - submitted;
            let nr_vecs = (left.div_ceil(PAGE_SIZE) + 1).min(bindings::BIO_MAX_VECS as usize);
            let at = sector + (submitted as u64 >> 9);
            let mut bio = match Bio::new(target, write, at, nr_vecs) {
                Ok(b) => b,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            if let Err(e) = fill(&mut bio, iter, left, lbs, slots) {
                failed = Some(e);
            }
            if bio.is_empty() {
                break;
            }
            let n = bio.len();
            if one_bio && n < len {
                // Would take a second bio.
                drop(bio);
                let _ = iter.revert(n);
                failed = Some(EAGAIN);
                break;
            }
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
            unsafe { bio.submit_unchecked(done.clone()) };
            submitted += n;
        }
        match failed {
            Some(e) if submitted == 0 => Err(e),
            _ => Ok(submitted),
        }
    })
}

/// A [`Completion`] to wait on, kept in place by the waiting submitter: counts the bios and
/// their bytes, keeps the first error, and takes the finished bios back to release their pages
/// once it has waited, in the submitter's context.
///
/// # Invariants
///
/// `pending` counts the bios in flight plus one for the waiter; `done` is initialised (by
/// [`Waiter::new`], before any bio is submitted) and is completed when `pending` drops to zero.
/// `finished` heads a list, linked through `bi_next`, of bios given up by
/// [`Finished::into_raw`], owned by the waiter.
#[pin_data]
pub(crate) struct Waiter {
    pending: AtomicUsize,
    finished: AtomicPtr<bindings::bio>,
    bios: AtomicUsize,
    bytes: AtomicUsize,
    error: AtomicI32,
    #[pin]
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
    /// Bytes transferred.
    pub bytes: usize,
    /// Bios submitted.
    pub bios: usize,
}

impl Waiter {
    /// A waiter, to be pinned where it will be waited on.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Waiter {
            pending: AtomicUsize::new(1),
            finished: AtomicPtr::new(core::ptr::null_mut()),
            bios: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            error: AtomicI32::new(0),
            // SAFETY: `init_completion()` initialises the completion in place.
            done <- Opaque::ffi_init(|slot| unsafe { shim::iovx_init_completion(slot) }),
        })
    }

    fn put(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: `done` is initialised (type invariant). Nothing of `self` is touched after
            // this: the waiter may return and take the waiter away.
            unsafe { bindings::complete(self.done.get()) };
        }
    }

    /// Gives up the submitter's count, waits for every bio to report, and releases the pages of
    /// the finished bios (dirtying those a read filled). Process context: this sleeps.
    pub(crate) fn wait(&self) -> Result<Done> {
        self.put();
        // SAFETY: `done` is initialised (type invariant); it is completed by the last `put`.
        unsafe { bindings::wait_for_completion_io(self.done.get()) };
        // Every bio has been pushed (before its `bio_done`): the list is complete.
        let mut p = self.finished.swap(core::ptr::null_mut(), Ordering::Acquire);
        while !p.is_null() {
            // SAFETY: `p` is a finished bio on the waiter's list (type invariant), taken off it
            // here, once; its `bi_next` links the rest of the list.
            let (fin, next) = unsafe { (Finished::from_raw(p), (*p).bi_next) };
            fin.release();
            p = next;
        }
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
    const TAKES_FINISHED: bool = true;

    fn bio_finished(&self, bio: Finished) {
        let p = bio.into_raw();
        let mut head = self.finished.load(Ordering::Relaxed);
        loop {
            // SAFETY: `p` is a finished bio, now owned by the list: the block layer is done with
            // it, so its `bi_next` is free to link the list.
            unsafe { (*p).bi_next = head };
            match self
                .finished
                .compare_exchange_weak(head, p, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
    }

    fn bio_submitted(&self, bytes: usize) {
        // Only the submitter adds, and it reads after waiting: no ordering needed here.
        self.bios.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    fn bio_done(&self, result: Result) {
        if let Err(e) = result {
            let _ =
                self.error
                    .compare_exchange(0, e.to_errno(), Ordering::AcqRel, Ordering::Acquire);
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
    kernel::stack_pin_init!(let w = Waiter::new());
    // SAFETY: The waiter stays in place (pinned on this stack frame) and the call waits below
    // for every bio to report to it; the iterator's memory is borrowed for the whole call.
    let r = unsafe { submit_iter(target, iter, sector, len, false, &Borrowed::new(w.as_ref())) };
    let done = w.wait();
    r?;
    done
}
