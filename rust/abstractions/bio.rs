// SPDX-License-Identifier: GPL-2.0

//! Bios that own the release duty of their pages.
//!
//! C headers: [`include/linux/bio.h`](srctree/include/linux/bio.h),
//! [`include/linux/blk_types.h`](srctree/include/linux/blk_types.h)
//!
//! A [`Bio`] takes extracted [`Batch`]es whole: their pages become the bio's and so does the duty
//! to release them. The direction is in the type: a `Bio<'_, '_, Dest>` is a read (the device
//! writes the pages: `REQ_OP_READ`) and takes only `Batch<'_, '_, Dest>`es, a
//! `Bio<'_, '_, Source>` is a write (`REQ_OP_WRITE`) and takes only source batches; so memory
//! lent for reading (a source iterator's, a pin without `FOLL_WRITE`: the zero page, read-only
//! page cache) never becomes the destination of a read. The bio records that duty as the block
//! layer does: `BIO_PAGE_PINNED` for pinned pages (the flag `bio_release_pages()` honours),
//! nothing for listed ones. Linux 6.12 has no `BIO_PAGE_REFFED` any more (the block layer no
//! longer takes page references), so a bio of referenced pages (the legacy mode,
//! [`UserPages::Reference`](super::extract::UserPages)) keeps its mode in the Rust value and, once
//! submitted, in the completion function it is given (`end_io::<_, true>`); it has no
//! `BIO_PAGE_PINNED`, and its pages are put, never unpinned, as `BIO_PAGE_REFFED` had them. A bio
//! holds pages of one mode only: a pinned page is never put, a referenced one never unpinned.
//!
//! A segment covers a physically contiguous run of pages, as `bio_iov_add_folio()` makes them:
//! a page that continues the last segment (the next page of memory, from its first byte, after a
//! segment that ends at a page end) joins it, so the pages of a large folio, and of folios that
//! follow one another in memory, make one segment. Each page of each segment holds one pin (or
//! reference) of the bio: a folio holds as many as the pages of it that the segments cover,
//! counted once per segment, which is what the release drops, folio by folio
//! (`unpin_user_folio(folio, n)`, `folio_put_refs(folio, n)`). A page is never merged into a
//! segment that holds it already, so a page taken twice (two iovecs in one page) sits in two
//! segments and is released twice. A bio may also take the segments of a BVEC iterator as they
//! are ([`Bio::new_bvec`], as `bio_iov_bvec_set()`): it borrows the iterator's segment array for
//! `'data` and lists its pages, which it never releases.
//!
//! On completion (success or error) the pages are released exactly once. The pages of an
//! asynchronous read (pinned or referenced) were dirtied before submission and are checked at
//! completion, with `bio_check_pages_dirty()`'s semantics: a folio cleaned while the read was in
//! flight (writeback of a shared file mapping) is dirtied again by a worker, which then releases
//! the pages ([`flush_redirty`]; counted in `redirtied`), otherwise they are released in the
//! completion context. Pinned pages of a write are unpinned as `__bio_release_pages()` does,
//! referenced ones put, listed pages need nothing. A bio dropped without being submitted releases
//! its pages the same way.
//!
//! The submission shapes built on bios (iterator to bios, synchronous and asynchronous, and the
//! completions that count them) are in [`direct_io`](super::direct_io).

use core::ffi::c_void;
use core::marker::PhantomData;
use core::pin::Pin;
use core::ptr::NonNull;
use kernel::{bindings, page::PAGE_SIZE, prelude::*, sync::Arc};

use super::blk::{Disk, Driver};
use super::counters::COUNTERS;
use super::extract::ExtractFlags;
use super::iov::{Direction, IovIter, Kind};
use super::pages::{note_released, note_taken, Batch, Mode};
use super::shim;
use super::task::might_sleep;

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
///
/// An implementation's `Drop` runs where the last reference goes, which for an `Arc` held by
/// bios is the completion context of the last bio, possibly atomic: it must not drop the last
/// reference to anything whose `Drop` sleeps (the target [`Disk`], or the target
/// [`Bdev`](super::bdev::Bdev), which waits for its bios, this one included; pages released
/// dirty; state under a mutex). Such things stay with the submitter or go to a worker.
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
/// `raw` is a bio made by [`Bio::new`] or [`Bio::new_bvec`] whose I/O has completed (its
/// `end_io` has run), owned by this value: its pages (as [`Bio`]'s invariants describe them:
/// pinned if `BIO_PAGE_PINNED` is set, referenced if `referenced`, listed otherwise) are released once, by [`Finished::release`] or on drop, and
/// the bio put once. The segment array of a bio of [`Bio::new_bvec`], borrowed from its
/// iterator, stays valid until then (the release walks it to count the pages), as the memory of
/// its listed pages does: borrowed for `'static` ([`Bio::submit`]), or kept valid by the caller
/// of `submit_unchecked()`. If `dirty`, it was a read into pinned or referenced pages that were
/// not dirtied before the I/O.
pub struct Finished {
    raw: NonNull<bindings::bio>,
    dirty: bool,
    referenced: bool,
}

// SAFETY: A finished bio is not used by the block layer any more; its pages may be released and
// the bio put from any task.
unsafe impl Send for Finished {}

impl Finished {
    /// Releases the pages now, dirtying those a read filled (taking their folio locks), and puts
    /// the bio.
    ///
    /// Process context: may sleep.
    pub fn release(self) {
        might_sleep();
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: The bio is finished and owned by `this`, which is not dropped; it is released
        // and put once, here, in process context, as its mode says.
        unsafe { release_now(this.raw.as_ptr(), this.dirty, true, this.referenced) };
    }

    /// Gives the bio up as a pointer (for a list of finished bios).
    pub(crate) fn into_raw(self) -> *mut bindings::bio {
        let this = core::mem::ManuallyDrop::new(self);
        let bio = this.raw.as_ptr();
        // `dirty` is recomputed by `from_raw`; the mode, which the bio's flags do not record for
        // referenced pages, waits in `bi_private`: the I/O is over and `end_io` took the
        // completion out of it, so the field is free.
        // SAFETY: The bio is finished and owned by `this`.
        unsafe { (*bio).bi_private = usize::from(this.referenced) as *mut c_void };
        bio
    }

    /// Takes back a bio given up by [`Finished::into_raw`].
    ///
    /// # Safety
    ///
    /// `bio` came from `into_raw` of a `Finished` made by `end_io` for a completion that takes
    /// its bios, and is taken back once.
    pub(crate) unsafe fn from_raw(bio: *mut bindings::bio) -> Self {
        // SAFETY: By the safety requirements the bio is valid and finished.
        let pinned = unsafe { bio_pinned(bio) };
        // SAFETY: As above; `into_raw` left the mode in `bi_private`.
        let (read, referenced) = unsafe { ((*bio).bi_opf & 1 == 0, !(*bio).bi_private.is_null()) };
        // INVARIANT: A read into pinned or referenced pages of such a completion was not dirtied
        // at submission; the mode is the one `into_raw` recorded.
        Self {
            // SAFETY: `into_raw` gives the non-null pointer of a `Finished`.
            raw: unsafe { NonNull::new_unchecked(bio) },
            dirty: read && (pinned || referenced),
            referenced,
        }
    }
}

impl Drop for Finished {
    fn drop(&mut self) {
        // SAFETY: Finished and owned here; its pages are released once as its mode says (a
        // read's pages, not dirtied before the I/O, are found clean and dirtied by the worker,
        // so this may run in any context) and it is put once.
        unsafe { release(self.raw.as_ptr(), self.dirty, self.referenced, false) };
    }
}

/// Releases the pages of a bio whose I/O is over (or that was never submitted) and lets the bio
/// go: put if `pooled`, else uninitialised.
///
/// # Safety
///
/// `bio` is a bio of a [`Bio`] that nothing else uses any more, whose pages (as [`Bio`]'s
/// invariants describe them) are pinned if `BIO_PAGE_PINNED` is set, referenced if `referenced` (never both) and listed
/// otherwise; they are released here exactly once, and the bio let go once. With `dirty`, pinned
/// or referenced pages are dirtied first, which takes their folio locks: process context only.
#[inline]
unsafe fn release_now(bio: *mut bindings::bio, dirty: bool, pooled: bool, referenced: bool) {
    // SAFETY: `bio` is valid until let go below.
    let pinned = unsafe { bio_pinned(bio) };
    // SAFETY: Unpins every page once per segment that covers it (`BIO_PAGE_PINNED`), or puts it
    // as many times (`referenced`), folio by folio, after dirtying the folios of a read that are
    // clean (leaving dirty folios unlocked); listed pages need nothing and are only counted. The
    // walks return the pages. Then the bio is let go once, as it was made.
    let pages = unsafe {
        let pages = if pinned {
            shim::iovx_bio_release_pages(bio, dirty)
        } else if referenced {
            shim::iovx_bio_put_pages(bio, dirty)
        } else {
            listed_pages(bio) as _
        } as usize;
        if pooled {
            bindings::bio_put(bio);
        } else {
            bindings::bio_uninit(bio);
        }
        pages
    };
    if pinned {
        note_released(Mode::Pinned, pages, dirty);
    } else if referenced {
        note_released(Mode::Referenced, pages, dirty);
    } else if pages > 0 {
        note_released(Mode::Listed, pages, false);
    }
}

/// The pages of the segments of a bio, counted once per segment that touches them: what the
/// counters record for the listed pages of a bio that is let go (here and in the passthrough
/// mapping), as `shim::iovx_bio_bvec_set()` counted them when it took them.
///
/// # Safety
///
/// `bio` is valid, and its first `bi_vcnt` segments are initialised, valid for reads and not
/// written during the call (as they are in a bio whose I/O is over or was never submitted: its
/// own, or the borrowed ones of a BVEC iterator, which outlive it).
#[inline]
pub(crate) unsafe fn listed_pages(bio: *mut bindings::bio) -> usize {
    // SAFETY: `bio` is valid (the safety requirements).
    let (vecs, vcnt) = unsafe { ((*bio).bi_io_vec.cast_const(), (*bio).bi_vcnt as usize) };
    // A bio without segments may have no segment array at all (null).
    if vcnt == 0 {
        return 0;
    }
    // SAFETY: By the safety requirements, `bi_io_vec` holds `bi_vcnt` (not 0, so the array is
    // not null) initialised segments, which nothing writes meanwhile.
    let segs = unsafe { core::slice::from_raw_parts(vecs, vcnt) };
    // No overflow: a segment's offset and length are `u32`s, a `usize` is 64 bits, and a bio's
    // pages are fewer than its bytes.
    let mut n: usize = 0;
    for bv in segs {
        if bv.bv_len != 0 {
            let (off, len) = (bv.bv_offset as usize, bv.bv_len as usize);
            let (first, last) = (off / PAGE_SIZE, off.wrapping_add(len - 1) / PAGE_SIZE);
            n = n.wrapping_add(last.wrapping_sub(first)).wrapping_add(1);
        }
    }
    n
}

/// Whether the pages of a bio of a [`Bio`] are pinned (`BIO_PAGE_PINNED`).
///
/// # Safety
///
/// `bio` is valid.
#[inline]
unsafe fn bio_pinned(bio: *mut bindings::bio) -> bool {
    // SAFETY: By the safety requirements.
    unsafe { (*bio).bi_flags & (1 << bindings::BIO_PAGE_PINNED) != 0 }
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

/// Where bios go: a disk made by [`Disk::new`], or a block device held open by a
/// [`Bdev`](super::bdev::Bdev).
///
/// # Invariants
///
/// `bdev` is a live block device for `'a` (of a live gendisk with a live queue), and `lbs` its
/// logical block size, a power of two from 512 to 4096. `inflight` is null (a [`Disk`], whose
/// deletion waits for its bios) or the in-flight counter of a [`Bdev`](super::bdev::Bdev), live
/// for `'a`, whose owner does not release the device (nor the counter) before it is zero.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    bdev: *mut bindings::block_device,
    inflight: *mut bindings::atomic_t,
    lbs: u32,
    capacity: u64,
    ioprio: IoPrio,
    _p: PhantomData<&'a ()>,
}

/// The scheduling class of an [`IoPrio`] that safe code may choose.
///
/// The real-time class (`IOPRIO_CLASS_RT`) is not one of them: it needs `CAP_SYS_NICE` or
/// `CAP_SYS_ADMIN` (`ioprio_check_cap()`), which the VFS checked for the priority of a kiocb
/// ([`Kiocb::ioprio`](super::direct_io::Kiocb::ioprio)); only that path gives one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoPrioClass {
    /// `IOPRIO_CLASS_NONE`: the submitter's own priority (level 0 only).
    None,
    /// `IOPRIO_CLASS_BE`: best effort, levels `0..IOPRIO_NR_LEVELS`.
    BestEffort,
    /// `IOPRIO_CLASS_IDLE`: only when the disk is otherwise idle.
    Idle,
}

/// An I/O priority (`bi_ioprio`) that the block layer accepts: its class is one of
/// `IOPRIO_CLASS_NONE`, `_RT`, `_BE`, `_IDLE` and its level below `IOPRIO_NR_LEVELS` (I/O
/// schedulers such as mq-deadline index arrays by the class without checking it).
///
/// # Invariants
///
/// The value passes `ioprio_check_cap()`'s checks of class and level (and a real-time class was
/// allowed to its submitter by the VFS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoPrio(u16);

impl IoPrio {
    /// No priority of its own (`IOPRIO_CLASS_NONE`): the block layer gives the bio its
    /// submitter's.
    pub const NONE: IoPrio = IoPrio(0);

    /// The priority of `class` at `level`: `EINVAL` for a level of `IOPRIO_NR_LEVELS` or more,
    /// or other than 0 for [`IoPrioClass::None`] (as `ioprio_check_cap()`). Any context.
    pub fn new(class: IoPrioClass, level: u8) -> Result<Self> {
        let (class, max) = match class {
            IoPrioClass::None => (bindings::IOPRIO_CLASS_NONE, 1),
            IoPrioClass::BestEffort => (bindings::IOPRIO_CLASS_BE, bindings::IOPRIO_NR_LEVELS),
            IoPrioClass::Idle => (bindings::IOPRIO_CLASS_IDLE, bindings::IOPRIO_NR_LEVELS),
        };
        if u32::from(level) >= max {
            return Err(EINVAL);
        }
        // INVARIANT: A class other than RT and a level checked above.
        Ok(Self(
            ((class << bindings::IOPRIO_CLASS_SHIFT) | u32::from(level)) as u16,
        ))
    }

    /// The priority of a kiocb (`ki_ioprio`).
    ///
    /// # Safety
    ///
    /// `raw` is the `ki_ioprio` of a kiocb made by the VFS, which checked it
    /// (`ioprio_check_cap()`, through `kiocb_set_rw_flags()`/io_uring's `rw` preparation, or the
    /// file's or task's default).
    #[inline]
    pub(crate) unsafe fn from_kiocb(raw: u16) -> Self {
        // INVARIANT: Checked by the VFS (safety requirements).
        Self(raw)
    }

    /// The value for `bi_ioprio`.
    #[inline]
    pub fn as_raw(self) -> u16 {
        self.0
    }
}

impl Target<'_> {
    /// The logical block size of the disk, in bytes.
    #[inline]
    pub fn logical_block_size(&self) -> u32 {
        self.lbs
    }

    /// The size of the disk in 512-byte sectors, when the target was made (`get_capacity()`).
    #[inline]
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Checks that the `len` bytes from `sector` on lie within the disk, before anything is
    /// extracted or submitted for them: `ENOSPC` for a write (`write`) that starts at or past the
    /// end, as `blkdev_write_iter()` answers, and `EINVAL` for any other range that does not lie
    /// within the disk, including one whose end overflows. So the sectors of the bios that carry
    /// the range can be computed without overflow.
    #[inline]
    pub fn check_range(&self, sector: u64, len: usize, write: bool) -> Result {
        if write && sector >= self.capacity {
            return Err(ENOSPC);
        }
        // `len` is at most `usize::MAX`, so `len / 512` rounded up fits in `u64`.
        let sectors = (len as u64).div_ceil(512);
        match sector.checked_add(sectors) {
            Some(end) if end <= self.capacity => Ok(()),
            _ => Err(EINVAL),
        }
    }

    /// The logical block size as a divisor: remainders by it need no check for zero (and so no
    /// panic path).
    #[inline]
    pub fn block_size(&self) -> core::num::NonZeroUsize {
        // A logical block size is a power of two from 512 to 4096 (type invariant: `Disk::new`
        // takes 512 or 4096, `Bdev` checks its device's); the fallback is never taken and costs
        // a conditional move, not a branch to a panic.
        core::num::NonZeroUsize::new(self.lbs as usize).unwrap_or(core::num::NonZeroUsize::MIN)
    }

    /// Whether the target's queue supports PCI peer-to-peer DMA (`blk_queue_pci_p2pdma()`):
    /// then the direct-I/O path extracts user memory for its bios with `ITER_ALLOW_P2PDMA`
    /// ([`Bio::allows_p2pdma`]). Any context.
    #[inline]
    pub fn supports_p2pdma(&self) -> bool {
        // SAFETY: The block device is live for the borrow (type invariant), so is its gendisk
        // (`bd_disk`, set for every block device) and its queue, which the shim only reads.
        unsafe { shim::iovx_queue_p2pdma((*self.bdev).bd_disk) }
    }

    /// The same disk, for bios of I/O priority `ioprio` (`bi_ioprio`: a kiocb's
    /// [`Kiocb::ioprio`](super::direct_io::Kiocb::ioprio), say). Without it, the block layer
    /// gives each bio its submitter's priority. Any context.
    pub fn with_ioprio(self, ioprio: IoPrio) -> Self {
        Self { ioprio, ..self }
    }
}

impl<'a> Target<'a> {
    /// The block device `bdev` as a target for bios, with its logical block size `lbs` and
    /// size `capacity` in 512-byte sectors; its bios in flight are counted in `inflight`.
    ///
    /// # Safety
    ///
    /// `bdev` is a block device held open for `'a`, and `lbs` its logical block size, a power
    /// of two from 512 to 4096; `inflight` is an initialised `atomic_t`, live for `'a`, and the
    /// device and the counter are not released before the counter is zero.
    pub(crate) unsafe fn from_bdev(
        bdev: *mut bindings::block_device,
        lbs: u32,
        capacity: u64,
        inflight: *mut bindings::atomic_t,
    ) -> Self {
        // INVARIANT: By the safety requirements; an open block device keeps its gendisk and
        // queue.
        Target {
            bdev,
            inflight,
            lbs,
            capacity,
            ioprio: IoPrio::NONE,
            _p: PhantomData,
        }
    }
}

impl<T: Driver> Disk<T> {
    /// The disk as a target for bios.
    pub fn target(&self) -> Target<'_> {
        // INVARIANT: The disk, and its whole-disk block device, live as long as the borrow.
        let disk = self.as_raw();
        Target {
            // SAFETY: The disk is live while borrowed; `part0` is set when it is allocated.
            bdev: unsafe { (*disk).part0 },
            inflight: core::ptr::null_mut(),
            lbs: self.logical_block_size(),
            // SAFETY: The disk and its whole-disk block device are live while borrowed. The size
            // is read once, as `get_capacity()` reads it (racing with a `set_capacity()`, which
            // stores it under `bd_size_lock`), here as a volatile read.
            capacity: unsafe {
                core::ptr::read_volatile(core::ptr::addr_of!((*(*disk).part0).bd_nr_sectors))
            },
            ioprio: IoPrio::NONE,
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

/// The most bytes a bio takes through [`Bio::add`] and [`Bio::add_runs`]: `u32::MAX` (a bio's
/// size is a `u32`) less a page but one byte, so that no segment, whose offset is within its
/// first page, has an offset plus length past `u32::MAX` (the block layer walks a segment with
/// that sum in 32 bits).
pub const MAX_RUN_BIO_BYTES: usize = u32::MAX as usize - (PAGE_SIZE - 1);

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

/// A bio being built for a disk borrowed for `'t`, carrying memory borrowed for `'data`, in
/// direction `D`: a read into [`Dest`](super::iov::Dest) memory (`REQ_OP_READ`) or a write from
/// [`Source`](super::iov::Source) memory (`REQ_OP_WRITE`).
///
/// # Invariants
///
/// `raw` is a bio for a disk that lives for `'t`, not yet submitted, owned by this value: with
/// [`Pooled`] storage allocated by [`Bio::new`], with [`Inline<'s>`] initialised by
/// [`Bio::new_inline`] in a [`BioSlot`] borrowed for `'s` (its segments are the slot's). Its
/// operation is `REQ_OP_READ` if `D` writes memory, else `REQ_OP_WRITE`. Every page in it came
/// from a batch of direction `D` and mode `mode` (pinned, referenced or listed: one mode per
/// bio), and its size is at most `u32::MAX` (at most [`MAX_RUN_BIO_BYTES`] when pages were
/// added). Either:
///
/// - its segments are its own (`bi_max_vecs` of them, the first `bi_vcnt` used), none empty,
///   each a run of pages that follow one another in memory and as `struct page`s (so that
///   `bio_for_each_folio_all()` walks it): the pages of the batches added, each page of a batch
///   counted in exactly one segment, in order. Pinned pages hold one pin and referenced pages
///   one reference, owned by the bio, per segment that covers them, so a folio holds as many as
///   the pages of it that the segments cover, counted once per segment (what the release drops,
///   folio by folio, and [`listed_pages`] counts); or
/// - it has no segments of its own (`bi_max_vecs` 0, `BIO_CLONED`, made by [`Bio::new_bvec`]):
///   `bi_io_vec` and `bi_vcnt` are the segments of a BVEC iterator that hold its bytes, an array
///   borrowed for `'data` with the pages it describes; its mode is [`Mode::Listed`].
///
/// The bio has `BIO_PAGE_PINNED` set if and only if it holds pinned pages; listed pages belong
/// to memory borrowed for `'data`. `counted` is set (pooled storage only) if the target counts
/// its bios in flight, and holds its counter.
pub struct Bio<'t, 'data, D: Direction, S: Storage = Pooled> {
    raw: NonNull<bindings::bio>,
    mode: Option<Mode>,
    counted: Option<KBox<Counted>>,
    _p: PhantomData<(&'t (), &'data [u8], D, S)>,
}

/// A bio from `fs_bio_set` for `bdev` at `sector`, with room for `nr_vecs` segments: a write
/// (`REQ_OP_WRITE | REQ_SYNC | REQ_IDLE`, as the block device's direct I/O makes them) or a
/// read, taken from the set's per-CPU cache where it can be (`REQ_ALLOC_CACHE`: io_uring's
/// direct I/O puts its bios in task context); null if none could be had (a blocking
/// allocation from the set's mempool does not fail for up to `BIO_MAX_VECS` segments, but a
/// null is checked all the same). Process context: may sleep (`GFP_KERNEL`).
///
/// # Safety
///
/// `bdev` is a live block device; `nr_vecs` is at most `BIO_MAX_VECS`.
#[inline(always)]
unsafe fn alloc_bio(
    bdev: *mut bindings::block_device,
    nr_vecs: u16,
    write: bool,
    sector: u64,
) -> *mut bindings::bio {
    const fn bit(b: bindings::req_flag_bits) -> bindings::blk_opf_t {
        1 << b
    }
    let opf = if write {
        bindings::req_op_REQ_OP_WRITE
            | bit(bindings::req_flag_bits___REQ_SYNC)
            | bit(bindings::req_flag_bits___REQ_IDLE)
    } else {
        bindings::req_op_REQ_OP_READ
    } | bit(bindings::req_flag_bits___REQ_ALLOC_CACHE);
    // SAFETY: By the safety requirements; `fs_bio_set` is the block layer's, initialised at
    // boot and never freed, and is only passed by address.
    let bio = unsafe {
        bindings::bio_alloc_bioset(
            bdev,
            nr_vecs,
            opf,
            bindings::GFP_KERNEL,
            core::ptr::addr_of_mut!(bindings::fs_bio_set),
        )
    };
    if !bio.is_null() {
        // SAFETY: A fresh bio, ours.
        unsafe { (*bio).bi_iter.bi_sector = sector };
    }
    bio
}

/// Whether a bio of direction `D` is a write (`REQ_OP_WRITE`): it reads the memory.
#[inline]
const fn is_write<D: Direction>() -> bool {
    !D::WRITES_MEMORY
}

impl<'t, 'data, D: Direction> Bio<'t, 'data, D, Pooled> {
    /// A bio for `target` starting at `sector`, with room for `nr_vecs` (at most
    /// `BIO_MAX_VECS`) page segments: a read for a [`Dest`](super::iov::Dest) bio, a write for a
    /// [`Source`](super::iov::Source) one.
    ///
    /// Process context: may sleep (allocates from `fs_bio_set` with `GFP_KERNEL`).
    #[inline]
    pub fn new(target: Target<'t>, sector: u64, nr_vecs: usize) -> Result<Self> {
        might_sleep();
        if nr_vecs == 0 || nr_vecs > bindings::BIO_MAX_VECS as usize {
            return Err(EINVAL);
        }
        // SAFETY: The block device is live (`Target` invariant) and `nr_vecs` is within
        // `BIO_MAX_VECS` (checked above).
        let raw = unsafe { alloc_bio(target.bdev, nr_vecs as u16, is_write::<D>(), sector) };
        let raw = NonNull::new(raw).ok_or(ENOMEM)?;
        // SAFETY: A fresh bio, ours.
        unsafe { (*raw.as_ptr()).bi_ioprio = target.ioprio.as_raw() };
        // INVARIANT: A fresh bio, empty, of the operation of `D`; `counted` is set below if the
        // target has a counter (a failure drops the empty bio).
        let mut this = Self {
            raw,
            mode: None,
            counted: None,
            _p: PhantomData,
        };
        this.counted = Counted::for_target(&target)?;
        Ok(this)
    }
}

impl<'t, 'data, D: Direction> Bio<'t, 'data, D, Pooled> {
    /// A bio for `target` starting at `sector` that takes the next `len` bytes of the BVEC
    /// iterator `iter` (at most what is left) as the iterator holds them, without extracting
    /// page by page (`bio_iov_bvec_set()`): the bio's segments are the iterator's segment array,
    /// borrowed for `'data` with the pages it describes, which it lists and never releases. The
    /// iterator advances past the bytes taken, which [`IovIter::revert`] can give back.
    ///
    /// `Ok(None)`, nothing done, if the iterator is not a BVEC one, `len` or the iterator is
    /// empty, a segment to take is empty, or more than `u16::MAX` segments (more than a bio
    /// counts) hold the bytes: the caller extracts instead. `ENOMEM` if no bio can be had.
    ///
    /// No segment can be added to such a bio ([`Bio::room`] is 0).
    ///
    /// Process context: may sleep (allocates from `fs_bio_set` with `GFP_KERNEL`).
    pub fn new_bvec(
        target: Target<'t>,
        sector: u64,
        iter: &mut IovIter<'data, D>,
        len: usize,
    ) -> Result<Option<Self>> {
        Self::new_bvec_aligned(target, sector, iter, len, 0, 0)
    }

    /// As [`Bio::new_bvec`], but `Ok(None)`, nothing done, also if a byte range to take from a
    /// segment does not start on a multiple of `addr_mask + 1` or is not a multiple of
    /// `len_mask + 1` bytes long (`iov_iter_is_aligned()` of the bytes taken, checked in the
    /// same walk that takes them).
    #[inline(always)]
    pub fn new_bvec_aligned(
        target: Target<'t>,
        sector: u64,
        iter: &mut IovIter<'data, D>,
        len: usize,
        addr_mask: u32,
        len_mask: u32,
    ) -> Result<Option<Self>> {
        might_sleep();
        if iter.kind() != Kind::Bvec || len == 0 || iter.is_empty() {
            return Ok(None);
        }
        // SAFETY: The block device is live (`Target` invariant). No segments: the bio is to
        // borrow the iterator's.
        let raw = unsafe { alloc_bio(target.bdev, 0, is_write::<D>(), sector) };
        let raw = NonNull::new(raw).ok_or(ENOMEM)?;
        // SAFETY: A fresh bio, ours.
        unsafe { (*raw.as_ptr()).bi_ioprio = target.ioprio.as_raw() };
        // INVARIANT (until the segments are set): a fresh, empty bio, listed, of the operation of
        // `D`; dropping it puts it. `counted` is set below if the target has a counter, as in
        // `Bio::new` (a failure drops the empty bio).
        let mut bio = Self {
            raw,
            mode: Some(Mode::Listed),
            counted: None,
            _p: PhantomData,
        };
        bio.counted = Counted::for_target(&target)?;
        // A bio's size is a `u32`; an iterator holds at most `MAX_RW_COUNT` bytes.
        let len = len.min(u32::MAX as usize);
        // The pages are counted in the same walk, as `listed_pages()` counts them at release.
        let mut pages = 0;
        // SAFETY: `raw` is a fresh bio without segments of its own (`bi_max_vecs` 0), ours; the
        // iterator is initialised and, by its invariant, its segment array and the pages they
        // describe stay valid (for writes if `D` is `Dest`) for `'data`, which the bio keeps;
        // `pages` is writable.
        let n = unsafe {
            shim::iovx_bio_bvec_set(
                raw.as_ptr(),
                iter.as_raw(),
                len,
                addr_mask as usize,
                len_mask as usize,
                &mut pages,
            )
        };
        if n == 0 {
            return Ok(None);
        }
        iter.note_advanced(n);
        note_taken(Mode::Listed, pages, false);
        // INVARIANT: A bio over the `bi_vcnt` segments of a BVEC iterator of direction `D` that
        // hold its `n <= u32::MAX` bytes, an array borrowed (with its pages) for `'data`;
        // `BIO_CLONED`, no segments of its own, listed.
        Ok(Some(bio))
    }
}

impl<'t, 'data, D: Direction, S: Storage> Bio<'t, 'data, D, S> {
    /// Page segments that can still be added.
    #[inline]
    pub fn room(&self) -> usize {
        // SAFETY: `raw` is a valid bio, owned by this value (type invariant).
        let b = unsafe { self.raw.as_ref() };
        // A bio over an iterator's segments has none of its own: no room.
        b.bi_max_vecs.saturating_sub(b.bi_vcnt) as usize
    }

    /// Segments in use: a run of pages that follow one another in memory makes one.
    pub fn nr_segments(&self) -> usize {
        // SAFETY: `raw` is a valid bio, owned by this value (type invariant).
        unsafe { self.raw.as_ref().bi_vcnt as usize }
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
    /// The batch has the bio's direction: a read bio takes only destination batches (memory that
    /// may be written), a write bio only source ones. Gives the batch back unchanged if it does
    /// not fit (more pages than [`Bio::room`], or a size past [`MAX_RUN_BIO_BYTES`]) or if its mode differs
    /// from that of the batches already added (a bio's pages are released one way: pinned and
    /// referenced pages never share a bio). A page that continues the last segment in memory
    /// joins it; the others start segments of their own, so a batch may take fewer segments than
    /// it has pages. Any context.
    #[inline(always)]
    pub fn add<'buf>(
        &mut self,
        batch: Batch<'data, 'buf, D>,
    ) -> core::result::Result<(), Batch<'data, 'buf, D>> {
        if batch.nr_pages() > self.room() {
            return Err(batch);
        }
        self.add_runs(batch)
    }

    /// As [`Bio::add`], but the batch need only fit in segments: pages that follow one another
    /// in memory share one, so a batch of many pages of one large folio takes one segment.
    /// Gives the batch back unchanged, with the bio as it was, if the segments it would take are
    /// more than [`Bio::room`] (a bio with no room takes nothing, not even a page that would
    /// join its last segment), or as [`Bio::add`] does. Any context.
    #[inline(always)]
    pub fn add_runs<'buf>(
        &mut self,
        batch: Batch<'data, 'buf, D>,
    ) -> core::result::Result<(), Batch<'data, 'buf, D>> {
        let mode = batch.mode();
        if batch.is_empty() {
            // Nothing to take (an empty batch holds no pages).
            return Ok(());
        }
        if self.room() == 0
            || self.mode.is_some_and(|m| m != mode)
            || self.len() + batch.len() > MAX_RUN_BIO_BYTES
        {
            return Err(batch);
        }
        // A bio without segments of its own (over an iterator's) has no room and was refused
        // above: its segments, the iterator's, are never written. The page count fits a `u32`:
        // the batch's bytes are within `u32::MAX` (checked above), so its pages number at most
        // `u32::MAX / PAGE_SIZE + 2`.
        // SAFETY: The bio is valid, unsubmitted and this value's, not a clone, with segments of
        // its own (it has room); the slots of the batch hold its `nr_pages()` valid pages
        // (`PageSlot` is transparent over `struct page *`), only read here; the size stays
        // within `MAX_RUN_BIO_BYTES` (checked above), so no segment's offset (within its first
        // page) plus its length passes `u32::MAX`, which the block layer's segment walk
        // (`mp_bvec_iter_offset()`) and the shim's joining test compute in 32 bits. The shim
        // writes no segment past `bi_max_vecs`: it
        // either adds every page, each to one segment, a page joining the last segment only as
        // the next page of memory and `struct page` after it (the segment invariant), never a
        // page the segment already holds; or leaves the bio exactly as it was and says so.
        let added = unsafe {
            shim::iovx_bio_add_pages(
                self.raw.as_ptr(),
                batch.slots_ptr().cast(),
                batch.nr_pages() as u32,
                batch.offset(),
                batch.len(),
            )
        };
        if !added {
            // The bio is as it was; the batch still holds its pages.
            return Err(batch);
        }
        // The duty to release the pages is the bio's now: the batch is forgotten.
        let _ = batch.into_raw();
        if mode == Mode::Pinned && self.mode.is_none() {
            // SAFETY: `raw` is a valid bio owned by this value; it now holds pinned pages.
            unsafe { (*self.raw.as_ptr()).bi_flags |= 1 << bindings::BIO_PAGE_PINNED };
        }
        // INVARIANT: The pages and their duty moved from the batch into the bio, each page of
        // the batch counted in one segment (holding the batch's one pin or reference for it);
        // the batch had the bio's direction and the bio's mode.
        self.mode = Some(mode);
        Ok(())
    }

    /// The extraction flags for pages that go into this bio, as `__bio_iov_iter_get_pages()`
    /// makes them: `ITER_ALLOW_P2PDMA` if the queue of the bio's block device (`bi_bdev`)
    /// supports PCI peer-to-peer DMA, else none. Only the layer's submission paths use them,
    /// for batches that go into this bio and nowhere else (a batch that does not go in is
    /// dropped there): pages of a P2P region are never extracted for one queue and put into a
    /// bio of another.
    #[inline]
    pub(super) fn extract_flags(&self) -> ExtractFlags {
        if self.allows_p2pdma() {
            ExtractFlags::allow_p2pdma()
        } else {
            ExtractFlags::NONE
        }
    }

    /// Whether the pages of this bio are extracted with `ITER_ALLOW_P2PDMA` by the direct-I/O
    /// path: whether the queue of its block device supports PCI peer-to-peer DMA
    /// (`blk_queue_pci_p2pdma()`). Any context.
    #[inline]
    pub fn allows_p2pdma(&self) -> bool {
        // SAFETY: The bio is valid and unsubmitted (type invariant); its block device, set when
        // it was made from a `Target`, is live for `'t`, so are its gendisk and queue, which the
        // shim only reads.
        unsafe { shim::iovx_queue_p2pdma((*(*self.raw.as_ptr()).bi_bdev).bd_disk) }
    }
}

impl<'t, 'data, D: Direction> Bio<'t, 'data, D, Pooled> {
    /// Submits the bio; `done` learns its outcome, after its pages have been released.
    ///
    /// The bio may complete long after this returns, so the memory its listed pages borrow must
    /// live for ever (`'data: 'static`): pinned pages (whose batches are `'static`) or `'static`
    /// kernel memory. Memory of shorter life goes through the waiting paths of
    /// [`direct_io`](super::direct_io), which do not return before the I/O is over.
    ///
    /// Process context: may sleep (`submit_bio()` may wait for a free tag, and a read into
    /// pinned pages dirties them first, taking their folio locks). `done` hears of the
    /// completion in the disk's completion context, which may be atomic.
    pub fn submit<C: Completion>(self, done: Arc<C>)
    where
        'data: 'static,
    {
        might_sleep();
        // SAFETY: Listed pages borrow memory for `'static`, which outlives the bio.
        unsafe { self.submit_unchecked(done) }
    }

    /// Submits the bio; `done` learns its outcome, after its pages have been released.
    ///
    /// Process context: may sleep, as [`Bio::submit`] (callers have called `might_sleep()`).
    ///
    /// # Safety
    ///
    /// The memory that listed pages of the bio borrow for `'data` must stay valid until `done`
    /// has been told of this bio's completion.
    #[inline(always)]
    pub(crate) unsafe fn submit_unchecked<R: DoneRef>(mut self, done: R) {
        let counted = self.counted.take();
        let this = core::mem::ManuallyDrop::new(self);
        let bio = this.raw.as_ptr();
        done.completion().bio_submitted(this.len());
        let referenced = this.mode == Some(Mode::Referenced);
        let held = referenced || this.mode == Some(Mode::Pinned);
        // SAFETY: `bio` is a valid, unsubmitted bio owned by `this`, which is not dropped; the
        // pointer in `bi_private` is taken back by `end_io`, which the block layer calls
        // exactly once; the `end_io` chosen is that of the bio's mode and of whether it is
        // counted. A counted bio is counted before it is submitted, while the target (and so its
        // counter) is still borrowed.
        unsafe {
            (*bio).bi_end_io = match (referenced, counted.is_some()) {
                (true, true) => Some(end_io::<R, true, true>),
                (true, false) => Some(end_io::<R, true, false>),
                (false, true) => Some(end_io::<R, false, true>),
                (false, false) => Some(end_io::<R, false, false>),
            };
            (*bio).bi_private = match counted {
                Some(mut c) => {
                    c.done = done.into_raw();
                    shim::iovx_bdev_bio_get(c.inflight.as_ptr());
                    KBox::into_raw(c).cast()
                }
                None => done.into_raw(),
            };
            if !is_write::<D>() && held && !<R::C>::TAKES_FINISHED {
                // The pages of a read are dirtied before the I/O and checked after it, as the
                // kernel's own asynchronous direct I/O does (skipping those dirty already). A
                // completion that takes its bios back dirties them at release instead.
                shim::iovx_bio_set_pages_dirty(bio);
            }
            bindings::submit_bio(bio);
        }
    }
}

/// Releases the pages of a finished (or never submitted) bio and puts the bio.
///
/// # Safety
///
/// `bio` is a bio of a [`Bio`] whose pages (as [`Bio`]'s invariants describe them) are pinned if
/// `BIO_PAGE_PINNED` is set, referenced if `referenced` (never both) and listed otherwise; they
/// are released here exactly once, and the bio is put once. With `read`, pinned or referenced
/// pages that are not dirty (not dirtied before the I/O, or cleaned since) are dirtied by a
/// worker before their release, so this may run in any context. `predirtied` says that they were
/// dirtied before the I/O, so that a clean one was cleaned while it was in flight (and is
/// counted in `redirtied`).
#[inline(always)]
unsafe fn release(bio: *mut bindings::bio, read: bool, referenced: bool, predirtied: bool) {
    // SAFETY: `bio` is valid until put below.
    let pinned = unsafe { bio_pinned(bio) };
    let mode = if pinned {
        Mode::Pinned
    } else if referenced {
        Mode::Referenced
    } else {
        Mode::Listed
    };
    if mode == Mode::Listed {
        // SAFETY: Listed pages need nothing (they are counted); the bio's segments are valid
        // until it is put, once.
        let pages = unsafe {
            let pages = listed_pages(bio);
            bindings::bio_put(bio);
            pages
        };
        if pages > 0 {
            note_released(Mode::Listed, pages, false);
        }
    } else if read {
        let mut pages = 0;
        // SAFETY: A read bio with pinned or referenced pages (`BIO_PAGE_PINNED` tells which)
        // that were set dirty before submission: this counts them, checks them and either
        // releases them at once (all still dirty) or hands the bio to the worker that dirties
        // them again and then releases them; either way each page is unpinned or put once per
        // segment that covers it, and the bio put once.
        let clean = unsafe { shim::iovx_bio_check_pages_dirty(bio, &mut pages) };
        if clean > 0 && predirtied {
            COUNTERS
                .redirtied
                .fetch_add(u64::from(clean), core::sync::atomic::Ordering::Relaxed);
        }
        note_released(mode, pages, true);
    } else {
        // SAFETY: Unpins (`BIO_PAGE_PINNED`) or puts every page of the bio once per segment that
        // covers it, folio by folio, then puts the bio.
        let pages = unsafe {
            let pages = if pinned {
                shim::iovx_bio_release_pages(bio, false)
            } else {
                shim::iovx_bio_put_pages(bio, false)
            };
            bindings::bio_put(bio);
            pages as usize
        };
        note_released(mode, pages, false);
    }
}

/// What `bi_private` points to for a bio of a target that counts its bios in flight: the
/// completion, and the counter that `end_io` decrements last.
pub(crate) struct Counted {
    done: *mut c_void,
    inflight: NonNull<bindings::atomic_t>,
}

impl Counted {
    /// The record of a bio for `target` if the target counts its bios in flight (a held block
    /// device's), with no completion yet; `None` for a target that does not.
    fn for_target(target: &Target<'_>) -> Result<Option<KBox<Self>>> {
        let Some(inflight) = NonNull::new(target.inflight) else {
            return Ok(None);
        };
        let done = core::ptr::null_mut();
        Ok(Some(KBox::new(Self { done, inflight }, GFP_KERNEL)?))
    }
}

/// `bi_end_io` of every bio made here.
///
/// # Safety
///
/// Called by the block layer once per submitted bio, whose `bi_private` came from
/// `R::into_raw` (if `COUNTED`, from `KBox::into_raw` of a [`Counted`] holding it and the
/// counter that counted the bio), and whose pages are referenced if `REFERENCED` (pinned if
/// `BIO_PAGE_PINNED`, listed otherwise, if not).
unsafe extern "C" fn end_io<R: DoneRef, const REFERENCED: bool, const COUNTED: bool>(
    bio: *mut bindings::bio,
) {
    let (private, inflight) = if COUNTED {
        // SAFETY: `bi_private` came from `KBox::into_raw` in `submit_unchecked`; taken back
        // once, here.
        let c = unsafe { KBox::from_raw((*bio).bi_private.cast::<Counted>()) };
        (c.done, Some(c.inflight))
    } else {
        // SAFETY: `bio` is valid: it is being completed.
        (unsafe { (*bio).bi_private }, None)
    };
    // SAFETY: `bio` is valid until put; `private` came from `R::into_raw` in
    // `submit_unchecked`, and this runs once.
    let (done, status, write) = unsafe {
        (
            R::from_raw(private),
            (*bio).bi_status,
            (*bio).bi_opf & 1 != 0,
        )
    };
    if <R::C as Completion>::TAKES_FINISHED {
        // INVARIANT: The I/O is over and the bio is handed on whole; a read's pinned pages were
        // not dirtied at submission (`submit_unchecked`).
        // SAFETY: `bio` is valid: it is being completed.
        let pinned = unsafe { bio_pinned(bio) };
        let fin = Finished {
            // SAFETY: `bio` is not null: the block layer completed it.
            raw: unsafe { NonNull::new_unchecked(bio) },
            dirty: !write && (pinned || REFERENCED),
            referenced: REFERENCED,
        };
        done.completion().bio_finished(fin);
    } else {
        // SAFETY: The bio's pages are released exactly once, here, as their mode says, and the
        // bio put; a read of pinned or referenced pages had them set dirty at submission.
        unsafe { release(bio, !write, REFERENCED, true) };
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
    drop(done);
    if let Some(inflight) = inflight {
        // The very last action: once the count is zero, the target's owner may release the
        // device and the module may go.
        // SAFETY: The counter counted this bio and stays in place until it is zero.
        unsafe { shim::iovx_bdev_bio_put(inflight.as_ptr()) };
    }
}

impl<D: Direction, S: Storage> Drop for Bio<'_, '_, D, S> {
    fn drop(&mut self) {
        let referenced = self.mode == Some(Mode::Referenced);
        // SAFETY: The bio was never submitted (so a read's pages were not set dirty and are
        // released as a write's); its pages are released once as their mode says and it is put
        // (pooled) or uninitialised (inline) once.
        unsafe {
            if S::POOLED {
                release(self.raw.as_ptr(), false, referenced, false)
            } else {
                release_now(self.raw.as_ptr(), false, false, referenced)
            }
        };
    }
}

impl<'s, 't, 'data, D: Direction> Bio<'t, 'data, D, Inline<'s>> {
    /// A bio for `target` starting at `sector` in `slot`, with room for [`INLINE_VECS`] page
    /// segments: a read for a [`Dest`](super::iov::Dest) bio, a write for a
    /// [`Source`](super::iov::Source) one. Allocates nothing; any context.
    #[inline]
    pub fn new_inline(slot: &'s mut BioSlot, target: Target<'t>, sector: u64) -> Self {
        let bio = slot.bio.as_mut_ptr();
        // SAFETY: The disk is live (`Target` invariant); `slot` is borrowed mutably for `'s`, so
        // the bio and its segments stay in place and untouched by anyone else while this value
        // (which cannot outlive `'s`) owns them.
        unsafe {
            shim::iovx_bio_init_inline(
                bio,
                slot.vecs.as_mut_ptr().cast(),
                INLINE_VECS as u16,
                target.bdev,
                is_write::<D>(),
                sector,
            )
        };
        // SAFETY: Initialised just above, ours.
        unsafe { (*bio).bi_ioprio = target.ioprio.as_raw() };
        // INVARIANT: A fresh bio in `slot`, empty, of the operation of `D`.
        Self {
            // SAFETY: A pointer into a borrowed slot is not null.
            raw: unsafe { NonNull::new_unchecked(bio) },
            mode: None,
            // `submit_wait` returns after the I/O, within the target's borrow: nothing to count.
            counted: None,
            _p: PhantomData,
        }
    }

    /// Submits the bio, waits for it, releases its pages (dirtying those a read filled) and
    /// returns its bytes, or the error it completed with.
    ///
    /// Process context: sleeps.
    ///
    /// The memory that listed pages borrow for `'data` outlives the call, which outlives the
    /// I/O: this is safe for kernel memory too, as the slot is.
    #[inline]
    pub fn submit_wait(self) -> Result<usize> {
        might_sleep();
        let this = core::mem::ManuallyDrop::new(self);
        let bio = this.raw.as_ptr();
        let n = this.len();
        let referenced = this.mode == Some(Mode::Referenced);
        let dirty = !is_write::<D>() && (referenced || this.mode == Some(Mode::Pinned));
        // `submit_bio_wait()` completes the bio through a completion on its own stack and
        // returns once it is over, so the slot, the disk and the memory of listed pages, all
        // borrowed beyond this call, outlive the I/O.
        // SAFETY: `bio` is a valid, unsubmitted bio owned by `this`, which is not dropped.
        let err = unsafe { bindings::submit_bio_wait(bio) };
        // SAFETY: The I/O is over and the bio is this call's; its pages are released once as
        // their mode says (dirtied first if a read filled them) and it is uninitialised once.
        unsafe { release_now(bio, dirty, false, referenced) };
        if err == 0 {
            Ok(n)
        } else {
            Err(Error::from_errno(err))
        }
    }
}

/// Waits until the worker that dirties again the folios of reads cleaned while the read was in
/// flight has released every bio handed to it so far. A disk calls it when it is deleted, after
/// its last bio completed, so that no bio of this module waits for the worker (whose code is
/// this module's) once its disks are gone; tests call it to observe the release.
///
/// Process context: sleeps.
pub fn flush_redirty() {
    might_sleep();
    // SAFETY: `flush_work()` on the worker of the shim, in process context.
    unsafe { shim::iovx_bio_flush_redirty() };
}
