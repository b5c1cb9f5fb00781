// SPDX-License-Identifier: GPL-2.0

//! Passthrough requests: a driver command with data mapped from an iterator, executed on a
//! disk's queue.
//!
//! C headers: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)
//! (`blk_mq_alloc_request()`, `blk_execute_rq()`), [`block/blk-map.c`](srctree/block/blk-map.c)
//! (`blk_rq_map_user_iov()`, `blk_rq_append_bio()`, `blk_rq_unmap_user()`).
//!
//! A [`PtRequest`] is a `REQ_OP_DRV_IN` request (`D` = [`Dest`](super::iov::Dest): the device fills the memory)
//! or a `REQ_OP_DRV_OUT` one (`D` = [`Source`](super::iov::Source): the device reads it), allocated on the queue of
//! a [`Disk`](super::blk::Disk), carrying a [`Command`] in its driver data. The life of one:
//!
//! 1. [`PtRequest::new`] allocates it (`blk_mq_alloc_request()`; may sleep for a tag).
//! 2. [`PtRequest::map`] maps an iterator of its direction into it, as `blk_rq_map_user_iov()`
//!    does: directly (user memory pinned with `FOLL_PIN`, `FOLL_WRITE` for a destination; kernel
//!    memory listed, borrowed for `'data`) in bios appended to the request, whose segments
//!    span the pages that follow one another in memory (a huge page takes few), within the
//!    queue's limits; or, when the memory does not meet the queue's DMA
//!    alignment or virtual boundary, or when the caller asks ([`Bounce::Always`]), **bounced**:
//!    kernel pages are allocated, a write's data copied into them at once, a read's copied back
//!    at unmap, and no page of the iterator is taken. [`PtRequest::map_c`] does the same with
//!    the kernel's own `blk_rq_map_user_iov()`, for comparison.
//! 3. [`PtRequest::execute`] runs it and waits (`blk_execute_rq()`).
//! 4. [`PtRequest::unmap`] (or dropping the request) releases every page exactly once: pinned
//!    pages unpinned (dirtied first if an executed read filled them), bounce pages copied back
//!    (a read) and freed, listed pages left to their owner; then the request is freed.
//!
//! [`submit_async`] and [`submit_uring`] do all of this for user memory without waiting: the
//! request, its iterator and a hold on the disk go into one operation that the request's
//! completion owns. [`submit_uring`] answers an io_uring command: its request is freed at its
//! end, and its completion runs as task work of the submitting task, in that task's own address
//! space, where a bounced read is copied back (as NVMe's generic character devices do);
//! [`submit_async`] calls a completion from a worker of the module, which never touches user
//! memory, so it refuses the requests whose release would copy into it.
//!
//! The request holds the release duty of every page it mapped from the moment the page is taken:
//! any error in the middle of a mapping (a fault half-way through a vector, a limit exceeded, an
//! allocation failure) releases what was taken so far and leaves the request unmapped.

use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::{bindings, page::PAGE_SIZE, prelude::*};

use super::bio::listed_pages;
use super::blk::{pdu_pt_bio, Disk, Driver, PT_INLINE_VECS};
use super::extract::ExtractFlags;
use super::iov::{Direction, IovIter, Kind, UserVec};
use super::pages::{note_released, Mode, PageSlot};
use super::shim;
use super::task::might_sleep;
use super::uring_cmd::{InTask, PendingCmd, UringCmd};

/// The driver command of a passthrough request, in the request's driver data: what the
/// submitter asks ([`Command::opcode`], [`Command::flags`], [`Command::sector`]) and what the
/// driver answers ([`Command::result`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Command {
    /// What to do; the driver defines the values.
    pub opcode: u32,
    /// Modifiers of the opcode; the driver defines them.
    pub flags: u32,
    /// The first sector (of 512 bytes) the command addresses, if any.
    pub sector: u64,
    /// The driver's status or result value, set while it serves the request.
    pub result: u32,
}

/// The limits of a queue that a mapping must meet.
///
/// # Invariants
///
/// `logical_block_size` is a power of two of at least 512; `max_bytes` is at least
/// `logical_block_size`; `max_segments` is at least 1; `align` is a mask one less than a power
/// of two, below the page size; `virt_boundary` is 0 or such a mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    max_bytes: u32,
    max_segments: u32,
    align: u64,
    virt_boundary: u64,
    logical_block_size: u32,
}

/// Whether `m` is a mask one less than a power of two, below the page size.
fn is_low_mask(m: u64) -> bool {
    m < PAGE_SIZE as u64 && (m + 1).is_power_of_two()
}

impl Limits {
    /// Limits of `max_bytes` per request, `max_segments` segments, DMA alignment mask `align`,
    /// virtual boundary mask `virt_boundary` (0 for none) and `logical_block_size`. `EINVAL`
    /// unless the block size is a power of two of at least 512, a request takes at least one
    /// block and one segment, and each mask is one less than a power of two below the page size
    /// (a virtual boundary may also be 0).
    pub fn new(
        max_bytes: u32,
        max_segments: u32,
        align: u64,
        virt_boundary: u64,
        logical_block_size: u32,
    ) -> Result<Self> {
        if logical_block_size < 512
            || !logical_block_size.is_power_of_two()
            || max_bytes < logical_block_size
            || max_segments == 0
            || !is_low_mask(align)
            || (virt_boundary != 0 && !is_low_mask(virt_boundary))
        {
            return Err(EINVAL);
        }
        // INVARIANT: Checked above.
        Ok(Self {
            max_bytes,
            max_segments,
            align,
            virt_boundary,
            logical_block_size,
        })
    }

    /// The most bytes one request may carry (`max_hw_sectors` in bytes).
    pub fn max_bytes(&self) -> u32 {
        self.max_bytes
    }

    /// The most segments one request may have (`max_segments`).
    pub fn max_segments(&self) -> u32 {
        self.max_segments
    }

    /// The mask an address and a length of memory mapped directly must have clear
    /// (`dma_alignment | dma_pad_mask`).
    pub fn align(&self) -> u64 {
        self.align
    }

    /// The virtual boundary mask (`virt_boundary_mask`, 0 if none): segments other than the
    /// first must start, and other than the last end, on it.
    pub fn virt_boundary(&self) -> u64 {
        self.virt_boundary
    }

    /// The logical block size (a power of two, at least 512).
    pub fn logical_block_size(&self) -> core::num::NonZeroU32 {
        // The invariant makes it at least 512.
        core::num::NonZeroU32::new(self.logical_block_size).unwrap_or(core::num::NonZeroU32::MIN)
    }
}

/// The queue of a disk, borrowed for `'a`, for passthrough requests.
///
/// # Invariants
///
/// `disk` is a live gendisk made by [`Disk::new`](super::blk::Disk::new) whose queue (and tag
/// set, for a blk-mq disk) stay valid for `'a`. A bio-based disk's queue has no requests: the
/// allocation of a passthrough request on it fails with `EOPNOTSUPP` (`iovx_pt_alloc()`).
#[derive(Clone, Copy)]
pub struct Queue<'a> {
    disk: NonNull<bindings::gendisk>,
    _p: PhantomData<&'a ()>,
}

impl<'a> Queue<'a> {
    /// The queue of `disk`.
    pub fn of<T: Driver>(disk: &'a Disk<T>) -> Self {
        // INVARIANT: `disk` is borrowed for `'a`; its gendisk and tag set live as long.
        Self {
            // SAFETY: A `Disk`'s gendisk is not null.
            disk: unsafe { NonNull::new_unchecked(disk.as_raw()) },
            _p: PhantomData,
        }
    }

    /// A queue lent to an ioctl of the disk.
    ///
    /// # Safety
    ///
    /// `disk` is a live gendisk made by [`Disk::new`](super::blk::Disk::new) whose owner does not
    /// drop it for `'a`.
    pub(crate) unsafe fn from_raw(disk: *mut bindings::gendisk) -> Self {
        // INVARIANT: By the safety requirements.
        Self {
            // SAFETY: By the safety requirements, `disk` is a live gendisk.
            disk: unsafe { NonNull::new_unchecked(disk) },
            _p: PhantomData,
        }
    }

    /// The queue's limits for passthrough mappings.
    pub fn limits(&self) -> Limits {
        let (mut max_bytes, mut max_segments, mut align, mut virt_boundary, mut lbs) =
            (0, 0, 0, 0, 0);
        // SAFETY: The disk is live (type invariant); the outputs are valid for writes.
        unsafe {
            shim::iovx_pt_limits(
                self.disk.as_ptr(),
                &mut max_bytes,
                &mut max_segments,
                &mut align,
                &mut virt_boundary,
                &mut lbs,
            )
        };
        // The block layer validated the queue's limits (`blk_validate_limits()`): a block size
        // of 512 or more, a power of two; masks one less than a power of two. A queue whose
        // limits were not so would get the smallest ones, which bounce everything.
        Limits::new(max_bytes, max_segments, align, virt_boundary, lbs).unwrap_or(Limits {
            max_bytes: 512,
            max_segments: 1,
            align: (PAGE_SIZE - 1) as u64,
            virt_boundary: 0,
            logical_block_size: 512,
        })
    }

    /// Whether the queue supports PCI peer-to-peer DMA (`blk_queue_pci_p2pdma()`).
    pub fn supports_p2pdma(&self) -> bool {
        // SAFETY: The disk is live (type invariant).
        unsafe { shim::iovx_queue_p2pdma(self.disk.as_ptr()) }
    }

    /// The capacity of the disk, in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        // SAFETY: The disk is live (type invariant).
        unsafe { shim::iovx_get_capacity(self.disk.as_ptr()) }
    }
}

/// Page slots [`PtRequest::map`] keeps on the stack for a bio of that many pages or fewer.
const INLINE_SLOTS: usize = 16;

/// When to bounce a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bounce {
    /// Only when the memory does not meet the queue's DMA alignment or virtual boundary, as
    /// `blk_rq_map_user_iov()` decides.
    IfNeeded,
    /// Always: the memory is copied, never taken.
    Always,
}

/// How the data of a request is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// Nothing mapped.
    None,
    /// The iterator's own pages: pinned (user memory) or listed (kernel memory).
    Direct(Mode),
    /// Kernel pages of the request's own, copied from or to the iterator.
    Bounced,
    /// Mapped by the kernel's `blk_rq_map_user_iov()`, released by `blk_rq_unmap_user()`.
    Kernel,
}

/// A passthrough request on a queue borrowed for `'a`, whose data (if mapped) comes from an
/// iterator borrowed for `'a` over memory borrowed for `'data`, in direction `D`:
/// `REQ_OP_DRV_IN` for [`Dest`], `REQ_OP_DRV_OUT` for [`Source`].
///
/// # Invariants
///
/// - `rq` is a request allocated by `blk_mq_alloc_request()` on a queue that lives for `'a`,
///   owned by this value and freed once, by `drop`; its operation is `REQ_OP_DRV_IN` if `D`
///   writes memory, else `REQ_OP_DRV_OUT`; its driver data holds a [`Command`].
/// - `head` is the first bio of the request's data (null if none), kept because the request
///   forgets its bios as it completes. The bios, chained by `bi_next`, belong to this value:
///   - with [`Mapping::Direct`], made by `iovx_pt_bio_alloc()` or, for the first bio if
///     `own_bio` is set, by `iovx_pt_bio_init_inline()` in the request's own driver data
///     ([`pdu_pt_bio`]); each segment a non-empty run of bytes over pages that follow one
///     another in memory and as `struct page`s (within the queue's segment size and boundary),
///     and each page pinned once per segment that covers it (with `FOLL_WRITE` for a
///     destination) if `BIO_PAGE_PINNED` is set, otherwise listed from memory borrowed for
///     `'data` (for writing if `D` is [`Dest`]); the segments of the chain number at most the
///     queue's `max_segments`;
///   - with [`Mapping::Bounced`], made the same way, one page per segment, each page allocated
///     by `iovx_bounce_page_alloc()` and owned by this value; `iter` is the iterator they are
///     copied back to (a read), not advanced since the mapping;
///   - with [`Mapping::Kernel`], made by `blk_rq_map_user_iov()` and released only by
///     `blk_rq_unmap_user()`.
/// - `executed` is set once `blk_execute_rq()` has returned: the data is then no longer in use
///   by the device.
/// - `own_bio` is set only for a request freed by this value (never ended by
///   [`PtRequest::end`], whose request the block layer frees): the bio in its driver data lives
///   as long as the request, so the chain is released before the request is freed.
pub struct PtRequest<'a, 'data, D: Direction> {
    rq: NonNull<bindings::request>,
    head: *mut bindings::bio,
    mapping: Mapping,
    iter: Option<&'a mut IovIter<'data, D>>,
    executed: bool,
    own_bio: bool,
    _p: PhantomData<(&'a (), &'data mut [u8], D)>,
}

/// The command in a request's driver data.
///
/// # Safety
///
/// `rq` is a request of a queue made by [`Disk::new`](super::blk::Disk::new), whose driver data
/// begins with the blk layer's `Pdu` holding a [`Command`].
pub(crate) unsafe fn command_of(rq: *mut bindings::request) -> *mut Command {
    // SAFETY: By the safety requirements.
    unsafe { super::blk::pdu_command(rq) }
}

impl<'a, 'data, D: Direction> PtRequest<'a, 'data, D> {
    /// A passthrough request on `queue` carrying `cmd` (its `result` starts at 0), with no data.
    /// `EOPNOTSUPP` on a bio-based disk, which has no requests.
    ///
    /// Process context: may sleep (waits for a free tag).
    pub fn new(queue: Queue<'a>, cmd: Command) -> Result<Self> {
        Self::alloc(queue, cmd, false, true)
    }

    /// [`PtRequest::new`], or if `nowait` without waiting for a tag: `EAGAIN` if none is free.
    /// With `own_bio`, the first pages of a direct mapping go into the bio in the request's
    /// driver data (nothing allocated for them); without, every bio is allocated, as a request
    /// ended by [`PtRequest::end`] (which the block layer frees before its chain is released)
    /// needs.
    fn alloc(queue: Queue<'a>, cmd: Command, nowait: bool, own_bio: bool) -> Result<Self> {
        might_sleep();
        // SAFETY: The disk is live (`Queue` invariant); process context.
        let rq = unsafe { shim::iovx_pt_alloc(queue.disk.as_ptr(), !D::WRITES_MEMORY, nowait) };
        let rq = kernel::error::from_err_ptr(rq)?;
        // SAFETY: A fresh request of a disk made by `Disk::new`: its driver data holds a
        // command, ours to write until the request is executed.
        unsafe { command_of(rq).write(Command { result: 0, ..cmd }) };
        // INVARIANT: A request of the operation of `D`, with no bio.
        Ok(Self {
            // SAFETY: `from_err_ptr` returned a non-error pointer, not null.
            rq: unsafe { NonNull::new_unchecked(rq) },
            head: core::ptr::null_mut(),
            mapping: Mapping::None,
            iter: None,
            executed: false,
            own_bio,
            _p: PhantomData,
        })
    }

    /// How the data is mapped.
    pub fn mapping(&self) -> Mapping {
        self.mapping
    }

    /// Bytes of data mapped.
    pub fn len(&self) -> usize {
        // SAFETY: `rq` is valid (type invariant). `blk_rq_bytes()`.
        unsafe { (*self.rq.as_ptr()).__data_len as usize }
    }

    /// Whether no data is mapped.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bio segments of the mapped data.
    pub fn nr_segments(&self) -> usize {
        // SAFETY: The bios of the chain are this value's (type invariant).
        unsafe { nr_segments(self.head) }
    }

    /// The command, with the driver's result once executed.
    pub fn command(&self) -> Command {
        // SAFETY: The driver data holds a command (type invariant); the driver writes it only
        // while `execute` waits, which borrows `self` mutably.
        unsafe { command_of(self.rq.as_ptr()).read() }
    }

    /// Whether `iter`'s memory needs a bounce on a queue with limits `lim`
    /// (`blk_rq_map_user_iov()`'s test, except that kernel memory is mapped too).
    pub fn needs_bounce(iter: &IovIter<'_, D>, lim: &Limits) -> bool {
        Self::bounce_test(iter, lim.align, lim.virt_boundary)
    }

    /// [`PtRequest::needs_bounce`] with the alignment and virtual boundary masks.
    fn bounce_test(iter: &IovIter<'_, D>, align_mask: u64, virt_boundary: u64) -> bool {
        if no_first_segment(iter) {
            return false;
        }
        // SAFETY: The iterator is initialised (`IovIter` invariant).
        let align = unsafe { shim::iovx_iov_iter_alignment(iter.as_raw()) };
        if align & align_mask != 0 {
            return true;
        }
        // `iov_iter_gap_alignment()` warns on anything but an IOVEC or UBUF iterator; kernel
        // memory is checked for its alignment only.
        if virt_boundary != 0 && iter.kind().is_user() {
            // SAFETY: As above.
            let gaps = unsafe { shim::iovx_iov_iter_gap_alignment(iter.as_raw()) };
            return gaps & virt_boundary != 0;
        }
        false
    }

    /// Maps all of `iter` into the request.
    ///
    /// Errors, with nothing taken afterwards and the request unmapped: `EBUSY` if data is mapped
    /// already or the request was executed; `EINVAL` for an empty iterator, one of more bytes
    /// than the queue takes in a request or of more segments (as `blk_rq_map_user_iov()` gives
    /// for both), or an iterator without memory (DISCARD); `EFAULT` if user memory cannot be
    /// pinned or copied (unmapped, or read-only for a destination); `ENOMEM`.
    ///
    /// Process context: may sleep.
    pub fn map(&mut self, iter: &'a mut IovIter<'data, D>, bounce: Bounce) -> Result<Mapping> {
        might_sleep();
        if self.mapping != Mapping::None || self.executed {
            return Err(EBUSY);
        }
        // The queue's limits are read and the iterator checked against them in one call, as
        // `blk_rq_map_user_iov()` reads `q->limits`: `EINVAL` for no bytes or more than a
        // request takes; a bounce when asked, or when the memory does not meet the queue's DMA
        // alignment or virtual boundary (the test of [`PtRequest::needs_bounce`]).
        let mut max_segments = 0u32;
        // SAFETY: `rq` is ours (type invariant), the iterator initialised; the first segment
        // of an array iterator is read only if it has one; `max_segments` is writable.
        let plan = unsafe {
            shim::iovx_pt_map_plan(
                self.rq.as_ptr(),
                iter.as_raw(),
                bounce == Bounce::Always,
                !no_first_segment(iter),
                &mut max_segments,
            )
        };
        if plan < 0 {
            return Err(EINVAL);
        }
        let bounced = plan & shim::IOVX_PT_PLAN_BOUNCE as i32 != 0;
        let max_segments = max_segments as usize;
        let r = if bounced {
            self.map_bounce(iter, max_segments)
                .map(|()| Mapping::Bounced)
        } else {
            // The P2P flag comes only from the request's own queue: P2P pages extracted with
            // it go only into this request, of the queue that allows them. Flags that allow
            // P2P pages never leave the layer.
            let flags = if plan & shim::IOVX_PT_PLAN_P2P as i32 != 0 {
                ExtractFlags::allow_p2pdma()
            } else {
                ExtractFlags::NONE
            };
            self.map_direct(iter, max_segments, flags)
                .map(Mapping::Direct)
        };
        // INVARIANT: The chain holds the bios of the mapping made (or, on error, of the part
        // made so far, released below); a bounce keeps the iterator to copy back to.
        self.mapping = match r {
            Ok(m) => m,
            Err(_) if bounced => Mapping::Bounced,
            Err(_) => Mapping::Direct(Mode::Listed),
        };
        match r {
            Ok(m) => {
                self.iter = Some(iter);
                Ok(m)
            }
            Err(e) => {
                let _ = self.release(false);
                Err(e)
            }
        }
    }

    /// Appends `bio` (holding pages in the mapping being made) to the request.
    ///
    /// # Safety
    ///
    /// `bio` was made for this request by `iovx_pt_bio_alloc()` or (the request's own bio) by
    /// `iovx_pt_bio_init_inline()`, and holds pages as the type invariant says for the mapping
    /// being made; on failure it is released here.
    unsafe fn append(&mut self, bio: *mut bindings::bio, bounced: bool) -> Result {
        // SAFETY: `rq` is ours and not executed; `bio` is a bio of its operation.
        let r = unsafe { bindings::blk_rq_append_bio(self.rq.as_ptr(), bio) };
        if r != 0 {
            // SAFETY: Not appended: the bio is ours alone, released once here.
            let _ = unsafe { release_bio::<D>(bio, false, bounced, None) };
            return Err(Error::from_errno(r));
        }
        if self.head.is_null() {
            // SAFETY: The request's first bio is the one just appended.
            self.head = unsafe { shim::iovx_pt_head(self.rq.as_ptr()) };
        }
        Ok(())
    }

    /// Maps `iter` directly into the request, in at most `max_segments` segments, extracting
    /// with the flags of the request's queue.
    ///
    /// The pages go into segments as `bio_map_user_iov()` puts them (`bio_add_hw_page()`,
    /// through `iovx_pt_bio_add_pages()`): a page joins the bio's last segment when it follows
    /// it in memory within the queue's segment size and boundary, so the pages of a huge page
    /// take few segments. A bio takes at most as many pages as it has segments, so a batch
    /// always has room in it; the segments of the request, counted as the block layer counts
    /// them (`blk_rq_append_bio()`: one per segment of each bio), are at most `max_segments`,
    /// checked as each batch goes in (`EINVAL` past it, with what was taken released).
    fn map_direct(
        &mut self,
        iter: &mut IovIter<'data, D>,
        max_segments: usize,
        flags: ExtractFlags,
    ) -> Result<Mode> {
        let mut segments = 0usize;
        let mut mode = None;
        while !iter.is_empty() {
            if segments >= max_segments {
                return Err(EINVAL);
            }
            // SAFETY: The iterator is initialised.
            let want = unsafe { shim::iovx_iov_iter_npages(iter.as_raw(), bindings::BIO_MAX_VECS) }
                as usize;
            let want = want.max(1);
            // A bio of a few pages (a command of a few KiB, the common case) takes its page
            // pointers on the stack; a larger one allocates room for them.
            // (An empty `KVec` is not made for the small case: dropping one still calls the
            // allocator.)
            let mut inline = [PageSlot::EMPTY; INLINE_SLOTS];
            let mut heap: Option<KVec<PageSlot>> = None;
            let slots: &mut [PageSlot] = if want <= INLINE_SLOTS {
                &mut inline[..want]
            } else {
                let v = heap.insert(KVec::with_capacity(want, GFP_KERNEL)?);
                // Empty slots written in place (a `push()` each would test the capacity and
                // call the allocator's reserve path every time).
                for s in &mut v.spare_capacity_mut()[..want] {
                    s.write(PageSlot::EMPTY);
                }
                // SAFETY: The capacity is at least `want`, and the first `want` elements were
                // initialised just above.
                unsafe { v.set_len(want) };
                &mut v[..]
            };
            let bio = if self.own_bio && self.head.is_null() && want <= PT_INLINE_VECS {
                // The first bio, of a few pages: the one in the request's driver data, free
                // while the request has no chain (the last one was released).
                // SAFETY: `rq` is a request of a disk made by `Disk::new` (type invariant).
                let (bio, vecs) = unsafe { pdu_pt_bio(self.rq.as_ptr()) };
                // SAFETY: `bio` and `vecs` are the request's, not in use (no chain); `want`
                // is at most `PT_INLINE_VECS`; `rq` is ours, of `D`'s operation.
                unsafe { shim::iovx_pt_bio_init_inline(self.rq.as_ptr(), bio, vecs, want as u16) };
                bio
            } else {
                // SAFETY: `rq` is ours, of `D`'s operation; `want` is at most `BIO_MAX_VECS`.
                let bio = unsafe { shim::iovx_pt_bio_alloc(self.rq.as_ptr(), want as u16) };
                if bio.is_null() {
                    return Err(ENOMEM);
                }
                bio
            };
            let mut filled = 0usize;
            let mut err = Ok(());
            // Extract runs until the bio has taken as many pages as it has segments, or the
            // iterator is empty.
            while filled < want && !iter.is_empty() {
                let batch = match iter.extract_with(&mut slots[filled..], usize::MAX, flags) {
                    Ok(b) => b,
                    Err(e) => {
                        err = Err(e);
                        break;
                    }
                };
                if batch.is_empty() {
                    err = Err(EFAULT);
                    break;
                }
                if mode.is_some_and(|m| m != batch.mode()) || batch.mode() == Mode::Referenced {
                    err = Err(EINVAL);
                    break;
                }
                mode = Some(batch.mode());
                let n = batch.nr_pages();
                if n > want - filled {
                    // Not more than the slots given; the batch is released here.
                    err = Err(EINVAL);
                    break;
                }
                let bmode = batch.mode();
                // At most `max_segments` in the request: those of the bios appended, and this
                // bio's own, which the shim counts as it adds.
                let max_segs = u32::try_from(max_segments - segments).unwrap_or(u32::MAX);
                // SAFETY: The bio is ours, not appended, made with `want` segments, a bio with
                // segments of its own; the batch's slots hold its `n` valid pages (`PageSlot` is
                // transparent over `struct page *`), only read; `filled + n <= want`, so the bio
                // has room for a segment per page whatever joins. The shim either puts each
                // page's piece into one segment, a page joining the last segment only as the
                // piece that follows it in memory (in the same page, whose extra pin or listing
                // it then drops, or the next `struct page`), or leaves the bio as it was and
                // says so, the pages still the batch's.
                let dup = unsafe {
                    shim::iovx_pt_bio_add_pages(
                        self.rq.as_ptr(),
                        bio,
                        batch.slots_ptr().cast(),
                        n as u32,
                        batch.offset(),
                        batch.len(),
                        max_segs,
                        bmode == Mode::Pinned,
                    )
                };
                if dup < 0 {
                    // More segments than the queue takes (or a gap at its virtual boundary):
                    // the batch keeps its pages and releases them as it is dropped here.
                    drop(batch);
                    err = Err(EINVAL);
                    break;
                }
                // The duty to release the pages is the bio's now, but for the extra pin (or
                // listing) of a page that joined a segment holding it already, dropped by the
                // shim.
                let _ = batch.into_raw();
                if dup > 0 {
                    note_released(bmode, dup as usize, false);
                }
                if bmode == Mode::Pinned {
                    // SAFETY: The bio is ours; it holds pinned pages.
                    unsafe { (*bio).bi_flags |= 1 << bindings::BIO_PAGE_PINNED };
                }
                filled += n;
            }
            if let Err(e) = err {
                // SAFETY: Not appended: ours alone, released once here.
                let _ = unsafe { release_bio::<D>(bio, false, false, None) };
                return Err(e);
            }
            // SAFETY: The bio is ours (made above).
            segments += unsafe { (*bio).bi_vcnt } as usize;
            // SAFETY: Made for this request, holding pages as the invariant says.
            unsafe { self.append(bio, false)? };
        }
        Ok(mode.unwrap_or(Mode::Listed))
    }

    fn map_bounce(&mut self, iter: &mut IovIter<'data, D>, max_segments: usize) -> Result {
        let len = iter.len();
        let pages = len.div_ceil(PAGE_SIZE);
        if pages > max_segments {
            return Err(EINVAL);
        }
        let mut left = len;
        let mut copied = 0usize;
        while left > 0 {
            let n = left
                .div_ceil(PAGE_SIZE)
                .min(bindings::BIO_MAX_VECS as usize);
            // SAFETY: `rq` is ours, of `D`'s operation; `n` is at most `BIO_MAX_VECS`.
            let bio = unsafe { shim::iovx_pt_bio_alloc(self.rq.as_ptr(), n as u16) };
            if bio.is_null() {
                return Err(ENOMEM);
            }
            let mut err = Ok(());
            for _ in 0..n {
                let bytes = left.min(PAGE_SIZE);
                // A read's pages are zeroed: they are copied back whole, whatever the device
                // wrote.
                // SAFETY: Process context.
                let page = unsafe { shim::iovx_bounce_page_alloc(D::WRITES_MEMORY) };
                if page.is_null() {
                    err = Err(ENOMEM);
                    break;
                }
                // SAFETY: The bio is ours with room for `n` pages; the page is ours and goes
                // into it.
                unsafe { shim::iovx_pt_bio_add(bio, page, bytes as u32, 0) };
                if !D::WRITES_MEMORY {
                    // SAFETY: The page is ours, `bytes` within it; the iterator is a source.
                    let c =
                        unsafe { shim::iovx_copy_page_from_iter(page, 0, bytes, iter.as_raw()) };
                    iter.note_advanced(c);
                    copied += c;
                    if c != bytes {
                        err = Err(EFAULT);
                        break;
                    }
                }
                left -= bytes;
            }
            if let Err(e) = err {
                // SAFETY: Not appended: ours alone, its bounce pages freed once here.
                let _ = unsafe { release_bio::<D>(bio, false, true, None) };
                let _ = iter.revert(copied);
                return Err(e);
            }
            // SAFETY: Made for this request, holding bounce pages.
            if let Err(e) = unsafe { self.append(bio, true) } {
                let _ = iter.revert(copied);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Runs the request on its queue and waits for it (`blk_execute_rq()`); gives the driver's
    /// [`Command::result`], or the error the request ended with. `EBUSY` if it was executed
    /// already (a request runs once).
    ///
    /// Process context: sleeps.
    pub fn execute(&mut self) -> Result<u32> {
        might_sleep();
        if self.executed {
            return Err(EBUSY);
        }
        self.executed = true;
        // SAFETY: `rq` is ours, allocated and not executed; its bios and their pages stay with
        // this value, which `execute` borrows until the request has completed.
        let r = unsafe { shim::iovx_pt_execute(self.rq.as_ptr()) };
        let cmd = self.command();
        if r != 0 {
            return Err(Error::from_errno(r));
        }
        Ok(cmd.result)
    }

    /// Whether the request was executed.
    pub fn is_executed(&self) -> bool {
        self.executed
    }

    /// Releases the data (copying a bounced read back into the iterator's memory), frees the
    /// request and gives its command. A bounced read whose copy back faults gives `EFAULT`,
    /// after releasing everything.
    ///
    /// Process context: may sleep.
    pub fn unmap(mut self) -> Result<Command> {
        might_sleep();
        let cmd = self.command();
        let r = self.release(true);
        drop(self);
        r.map(|()| cmd)
    }

    /// Releases every bio of the mapping once and forgets them; the copy back of a bounced read
    /// happens if `copy_back` and the request was executed.
    fn release(&mut self, copy_back: bool) -> Result {
        let head = core::mem::take(&mut self.head);
        let mapping = core::mem::replace(&mut self.mapping, Mapping::None);
        let iter = self.iter.take();
        if head.is_null() {
            return Ok(());
        }
        // SAFETY: The request is ours (type invariant) and not in flight (`execute()` waits);
        // its bios are about to be released, so it must not point to them any more.
        unsafe { shim::iovx_pt_rq_forget_bios(self.rq.as_ptr()) };
        // SAFETY: The chain is this value's, as the type invariant says for `mapping`, no
        // longer used by the request (forgotten above, executed or never to be), released once.
        unsafe { release_chain(head, mapping, iter, self.executed, copy_back) }
    }

    /// The data of a request that has ended: the request forgets its bios, which go with the
    /// mapping and the iterator into the value returned; the request itself is left to the
    /// block layer, which frees it when its `end_io` returns `RQ_END_IO_FREE`.
    ///
    /// Any context (the end of a request may run in interrupt context): takes no lock, does
    /// not sleep.
    ///
    /// # Safety
    ///
    /// Called from the `end_io` of this request, which was executed (`blk_execute_rq_nowait()`)
    /// and returns `RQ_END_IO_FREE`; `executed` is set; `own_bio` is not (no bio of the chain
    /// is in the request, which the block layer frees).
    unsafe fn end(mut self) -> Ended<'a, 'data, D> {
        // SAFETY: The request has ended (safety requirements): the block layer is done with
        // its bios, which must not be reached through it any more.
        unsafe { shim::iovx_pt_rq_forget_bios(self.rq.as_ptr()) };
        // INVARIANT: The chain, its mapping and its iterator move as the type invariant of
        // `PtRequest` says of them, of an executed request.
        let ended = Ended {
            head: core::mem::take(&mut self.head),
            mapping: core::mem::replace(&mut self.mapping, Mapping::None),
            iter: self.iter.take(),
        };
        // The request is the block layer's to free: `drop` (which would free it) does not run.
        // Nothing else of `self` needs a release (the fields left are a pointer and markers).
        core::mem::forget(self);
        ended
    }
}

/// Releases every bio of a chain once: bounce pages copied back into `iter` if `copy_back` and
/// `executed` (a read) and freed; pinned pages unpinned, dirtied first if `executed` (a read);
/// the kernel's mapping by `blk_rq_unmap_user()`.
///
/// # Safety
///
/// `head` is a chain of bios holding pages as [`PtRequest`]'s type invariant says for `mapping`
/// (and `iter` its iterator), no longer used by the block layer nor reachable through a request;
/// `executed` says whether the request ran; released once. Process context.
unsafe fn release_chain<D: Direction>(
    head: *mut bindings::bio,
    mapping: Mapping,
    iter: Option<&mut IovIter<'_, D>>,
    executed: bool,
    copy_back: bool,
) -> Result {
    if head.is_null() {
        return Ok(());
    }
    if mapping == Mapping::Kernel {
        // SAFETY: The chain was made by `blk_rq_map_user_iov()` for the request and is released
        // once, here; the request is executed or never will be (safety requirements).
        let r = unsafe { shim::iovx_pt_unmap_user_c(head) };
        return if r == 0 {
            Ok(())
        } else {
            Err(Error::from_errno(r))
        };
    }
    let dirty = D::WRITES_MEMORY && executed;
    let mut to = if mapping == Mapping::Bounced && D::WRITES_MEMORY && copy_back && executed {
        iter
    } else {
        None
    };
    let mut r = Ok(());
    let mut bio = head;
    while !bio.is_null() {
        // SAFETY: The chain's bios are ours (safety requirements); each is released once.
        let next = unsafe { (*bio).bi_next };
        // SAFETY: As above; `to` is the iterator the bounce pages go back to.
        let rb = unsafe { release_bio(bio, dirty, mapping == Mapping::Bounced, to.as_deref_mut()) };
        if r.is_ok() {
            r = rb;
        }
        bio = next;
    }
    r
}

/// The data of a passthrough request that has ended and been freed (by the block layer, at its
/// end): the bios of its mapping, with the mapping's kind and iterator, to be released in
/// process context.
///
/// # Invariants
///
/// `head`, `mapping` and `iter` are as [`PtRequest`]'s type invariant says of an executed
/// request's; no request refers to the chain any more; it is released once, by
/// [`Ended::release`] or `drop`.
struct Ended<'a, 'data, D: Direction> {
    head: *mut bindings::bio,
    mapping: Mapping,
    iter: Option<&'a mut IovIter<'data, D>>,
}

impl<D: Direction> Ended<'_, '_, D> {
    /// How the data was mapped.
    fn mapping(&self) -> Mapping {
        self.mapping
    }

    /// Bio segments of the mapped data.
    fn nr_segments(&self) -> usize {
        // SAFETY: The chain is ours (type invariant).
        unsafe { nr_segments(self.head) }
    }

    /// Releases the chain once (a bounced read copied back if `copy_back`).
    ///
    /// Process context: may sleep.
    fn release(mut self, copy_back: bool) -> Result {
        might_sleep();
        let head = core::mem::take(&mut self.head);
        let iter = self.iter.take();
        // SAFETY: The chain is ours, of an executed request that no longer refers to it (type
        // invariant); `head` is taken, so `drop` does not release it again.
        unsafe { release_chain(head, self.mapping, iter, true, copy_back) }
    }
}

impl<D: Direction> Drop for Ended<'_, '_, D> {
    /// Releases the chain: no copy back of a bounce of the Rust mapping; the kernel's mapping
    /// is released by `blk_rq_unmap_user()`, which copies a bounced read back whenever the
    /// releasing task has an address space. May sleep.
    fn drop(&mut self) {
        let head = core::mem::take(&mut self.head);
        let iter = self.iter.take();
        // SAFETY: As in `release`.
        let _ = unsafe { release_chain(head, self.mapping, iter, true, false) };
    }
}

/// Bio segments of a chain.
///
/// # Safety
///
/// `head` is null or a chain of bios (by `bi_next`), valid for the call.
unsafe fn nr_segments(head: *mut bindings::bio) -> usize {
    let mut n = 0;
    let mut bio = head;
    while !bio.is_null() {
        // SAFETY: A bio of the chain (safety requirements).
        unsafe {
            n += (*bio).bi_vcnt as usize;
            bio = (*bio).bi_next;
        }
    }
    n
}

/// Whether a chain of `blk_rq_map_user_iov()` copies the memory (`bio_copy_user_iov()`) instead
/// of mapping it.
///
/// # Safety
///
/// `head` is null or a chain of bios made by `blk_rq_map_user_iov()`, valid for the call.
unsafe fn chain_is_copy(head: *mut bindings::bio) -> bool {
    let mut bio = head;
    while !bio.is_null() {
        // SAFETY: A bio of the chain (safety requirements).
        if unsafe { shim::iovx_pt_bio_is_copy(bio) } {
            return true;
        }
        // SAFETY: As above.
        bio = unsafe { (*bio).bi_next };
    }
    false
}

/// Whether `iter` is an array iterator without a single segment, whose first segment
/// `iov_iter_alignment()` and `iov_iter_gap_alignment()` would read all the same. An owned
/// IOVEC iterator always has one ([`IovIter::iovec`] gives an empty array a static empty
/// segment); a KVEC or BVEC one over an empty array, or one lent by the kernel, may not.
fn no_first_segment<D: Direction>(iter: &IovIter<'_, D>) -> bool {
    matches!(iter.kind(), Kind::Iovec | Kind::Kvec | Kind::Bvec) && iter.nr_segs() == 0
}

/// Releases the pages of a bio of a [`PtRequest`] and frees it: bounce pages copied back into
/// `to` (if any) and freed, pinned pages unpinned (dirtied first if `dirty`), listed ones left.
/// `EFAULT` if a copy back fell short.
///
/// # Safety
///
/// `bio` was made by `iovx_pt_bio_alloc()` (or by `iovx_pt_bio_init_inline()` in a request that
/// is still allocated), is no longer used by the block layer, and holds
/// pages as [`PtRequest`]'s invariant says for a bounced (`bounced`) or direct mapping; it is
/// released once. With `dirty`, the pages are those of a read into pinned memory (process
/// context).
unsafe fn release_bio<D: Direction>(
    bio: *mut bindings::bio,
    dirty: bool,
    bounced: bool,
    mut to: Option<&mut IovIter<'_, D>>,
) -> Result {
    let mut r = Ok(());
    // SAFETY: `bio` is valid until freed below (safety requirements).
    let n = unsafe { (*bio).bi_vcnt } as usize;
    if bounced {
        for i in 0..n {
            // SAFETY: `i < bi_vcnt`: a segment of the bio holding a bounce page of ours.
            let v = unsafe { *(*bio).bi_io_vec.add(i) };
            if let Some(it) = to.as_deref_mut() {
                if r.is_ok() {
                    // SAFETY: The page is ours, the range within it; the iterator is a
                    // destination (a read's).
                    let c = unsafe {
                        shim::iovx_copy_page_to_iter(
                            v.bv_page,
                            v.bv_offset as usize,
                            v.bv_len as usize,
                            it.as_raw(),
                        )
                    };
                    it.note_advanced(c);
                    if c != v.bv_len as usize {
                        r = Err(EFAULT);
                    }
                }
            }
            // SAFETY: The page was allocated for this bio and is freed once, here.
            unsafe { shim::iovx_bounce_page_free(v.bv_page) };
        }
    } else {
        // SAFETY: As above.
        let pinned = unsafe { shim::iovx_pt_bio_pinned(bio) };
        if pinned {
            // SAFETY: One pin per page of each segment (`BIO_PAGE_PINNED`), dropped once here,
            // folio by folio, after dirtying the folios of a read.
            let pages = unsafe { shim::iovx_bio_release_pages(bio, dirty) } as usize;
            note_released(Mode::Pinned, pages, dirty);
        } else if n > 0 {
            // SAFETY: As above: the pages the segments list, counted once per segment.
            let pages = unsafe { listed_pages(bio) };
            note_released(Mode::Listed, pages, false);
        }
    }
    // SAFETY: A bio of `iovx_pt_bio_alloc()` or `iovx_pt_bio_init_inline()`, freed (the latter
    // only uninitialised) once, here.
    unsafe { shim::iovx_pt_bio_free(bio) };
    r
}

impl<'a, 'data, D: Direction> PtRequest<'a, 'data, D> {
    /// Maps all of `iter` with the kernel's own `blk_rq_map_user_iov()`, as a driver in C would
    /// (kernel memory is then always bounced). The errors are the kernel's; `EBUSY` if data is
    /// mapped already or the request was executed.
    ///
    /// Process context: may sleep.
    pub fn map_c(&mut self, iter: &'a mut IovIter<'data, D>) -> Result {
        map_c(self, iter)
    }
}

fn map_c<'a, 'data, D: Direction>(
    rq: &mut PtRequest<'a, 'data, D>,
    iter: &'a mut IovIter<'data, D>,
) -> Result {
    might_sleep();
    if rq.mapping != Mapping::None || rq.executed {
        return Err(EBUSY);
    }
    // `blk_rq_map_user_iov()` refuses an empty iterator with `EINVAL` too, but only after
    // `iov_iter_alignment()` has read its first segment.
    if no_first_segment(iter) {
        return Err(EINVAL);
    }
    // SAFETY: `rq.rq` is ours, not executed, with no bio; `blk_rq_map_user_iov()` works on a
    // copy of the iterator, maps all of it or nothing, and leaves the release duty in the
    // request's bios, which `blk_rq_unmap_user()` takes.
    let r = unsafe { shim::iovx_pt_map_user_c(rq.rq.as_ptr(), iter.as_raw()) };
    if r != 0 {
        return Err(Error::from_errno(r));
    }
    // SAFETY: The request's bios, if any, were made just above.
    rq.head = unsafe { shim::iovx_pt_head(rq.rq.as_ptr()) };
    // INVARIANT: The chain is the kernel's mapping; the memory it may list or pin is borrowed
    // through `iter` for `'a`.
    rq.mapping = Mapping::Kernel;
    rq.iter = Some(iter);
    Ok(())
}

impl<D: Direction> Drop for PtRequest<'_, '_, D> {
    /// Releases what is mapped and frees the request: no copy back of a bounce of the Rust
    /// mapping; the kernel's mapping is released by `blk_rq_unmap_user()`, which copies a
    /// bounced read back (zeroes, if it never ran) whenever the dropping task has an address
    /// space. May sleep (a read's pinned
    /// pages are dirtied, taking their folio locks).
    fn drop(&mut self) {
        let _ = self.release(false);
        // SAFETY: The request is ours, not in flight (`execute` waits for it), freed once.
        unsafe { shim::iovx_pt_free(self.rq.as_ptr()) };
    }
}

// --- Running a request without waiting -----------------------------------------------------

/// The user memory of a passthrough request run without waiting: memory of the submitting
/// task, owned (the vector) by the request until it completes.
pub enum UserData {
    /// One buffer (a UBUF iterator).
    Buf {
        /// User address.
        addr: usize,
        /// Bytes.
        len: usize,
    },
    /// Several buffers (an IOVEC iterator), as `readv()` takes them.
    Vecs(KVec<UserVec>),
}

/// Which mapping a request run without waiting uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapWith {
    /// [`PtRequest::map`], bouncing as asked.
    Rust(Bounce),
    /// [`PtRequest::map_c`]: the kernel's `blk_rq_map_user_iov()`.
    Kernel,
}

/// What a request run without waiting did, given to its completion.
#[derive(Debug)]
pub struct AsyncOutcome {
    /// The driver's result ([`Command::result`]), or the error the request ended with, or the
    /// error of the release: `EFAULT` for a bounced read whose copy back faulted, or that runs
    /// outside the submitter's address space; `ECANCELED` for one whose submitter is exiting
    /// (nothing copied); that of `blk_rq_unmap_user()` with [`MapWith::Kernel`].
    pub result: Result<u32>,
    /// The command, with the driver's result.
    pub command: Command,
    /// How the data was mapped ([`Mapping::None`] if the submission failed).
    pub mapping: Mapping,
    /// Bio segments of the mapping.
    pub segments: usize,
}

/// A submission that failed: its error, and the completion given back, never called.
pub struct Rejected<F> {
    /// Why.
    pub error: Error,
    /// The completion, not called.
    pub done: F,
}

impl<F> core::fmt::Debug for Rejected<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.error.fmt(f)
    }
}

/// A passthrough request of user memory, mapped, with everything it maps.
///
/// # Invariants
///
/// - `rq` is `Some` until the request ends (its data then moves to `ended`) or an error before
///   the request ran drops it; while it is, `gate` is `Some`: a hold on the gate of the disk
///   whose queue the request is on (so the disk, its queue and tag set outlive it). It is
///   mapped from `*iter`.
/// - `ended` is the data of the request once it has ended and been freed, mapped from `*iter`.
/// - `iter` was made by `KBox::into_raw` and is freed by `drop`, after `rq` and `ended` are
///   gone; it walks user memory of `mm` through `vecs` (if any), whose buffer does not move
///   while `vecs` is kept, and which is freed after `iter`.
/// - `mm` is the address space of the submitting task, grabbed (`mmgrab()`, so that the
///   pointer names that address space until dropped) and dropped once by `drop`; it is only
///   compared with the current task's, never entered. `gate`, if `Some`, is a hold
///   (`iovx_gate_hold()`) released once, by whoever takes it or by `drop`.
struct Prepared<D: Direction + 'static> {
    rq: Option<PtRequest<'static, 'static, D>>,
    ended: Option<Ended<'static, 'static, D>>,
    iter: NonNull<IovIter<'static, D>>,
    _vecs: Option<KVec<UserVec>>,
    mm: NonNull<bindings::mm_struct>,
    gate: Option<NonNull<core::ffi::c_void>>,
}

impl<D: Direction + 'static> Drop for Prepared<D> {
    fn drop(&mut self) {
        // The request first (releasing what it maps, freeing it on the held queue), or the data
        // of the ended one, then their iterator, then (field drop) the vector it walked.
        drop(self.rq.take());
        drop(self.ended.take());
        // SAFETY: Made by `KBox::into_raw`, no longer referred to (the request is gone).
        drop(unsafe { KBox::from_raw(self.iter.as_ptr()) });
        if let Some(gate) = self.gate.take() {
            // SAFETY: The hold taken at submission, released once.
            unsafe { shim::iovx_gate_unhold(gate.as_ptr()) };
        }
        // SAFETY: Grabbed at submission, dropped once.
        unsafe { shim::iovx_mm_drop(self.mm.as_ptr()) };
    }
}

/// A request run by [`submit_async`], with its completion.
struct AsyncOp<D: Direction + 'static, F> {
    p: Prepared<D>,
    done: Option<F>,
}

// SAFETY: The op is handed once from the submitter to the worker that completes it; nothing else
// refers to it meanwhile. Its iterator walks user memory that the worker never touches (no
// mapping that copies to user memory is run this way, and the worker has no address space); its
// request and pages may be released from any process context; `F` is `Send`.
unsafe impl<D: Direction + 'static, F: Send> Send for AsyncOp<D, F> {}

/// Maps `data` (user memory of the current task) into a passthrough request carrying `cmd` on
/// `queue` and runs it without waiting (`blk_execute_rq_nowait()`). When the request has
/// ended, a worker of the module, in process context, releases what it mapped exactly once
/// (pinned pages dirtied for a read and unpinned, bounce pages of a write freed), frees the
/// request, lets the disk go, and then calls `done` once with the outcome. The disk cannot be
/// deleted before that (dropping its [`Disk`](super::blk::Disk) waits), and the module not
/// unloaded ([`drain_async`] at exit waits).
///
/// The worker is shared by every such request and never touches user memory: a read that is
/// bounced (the memory does not meet the queue's alignment, or [`Bounce::Always`]) must be
/// copied back in the submitter's own context, so it is refused here with `EOPNOTSUPP` (run it
/// with [`submit_uring`], whose completion runs in the submitting task, or with a
/// [`PtRequest`] that waits); so is any mapping [`MapWith::Kernel`] bounces, read or write (its
/// `blk_rq_unmap_user()` copies, or fails, in the context it runs in). A bounced write copies
/// at submission and is run. The decision is the mapping's own, made as it maps: the request
/// is mapped, found bounced, released and refused (a Rust bounce is not copied back; a bounced
/// read of the kernel's mapping is, by `blk_rq_unmap_user()`, as zeroes into the caller's
/// buffer, which it may write); when the queue's limits already say so, as they do unless they
/// change meanwhile, it is refused before anything is taken.
///
/// Gives the mapping made and its segments. On an error (those of [`PtRequest::new`],
/// [`PtRequest::map`] and [`PtRequest::map_c`]; `EOPNOTSUPP` as above; `ENXIO` if the disk is
/// being deleted; `EINVAL` without a user address space) nothing is left taken and `done` is
/// given back, not called.
///
/// Process context: may sleep.
pub fn submit_async<D, F>(
    queue: Queue<'_>,
    cmd: Command,
    data: UserData,
    how: MapWith,
    done: F,
) -> core::result::Result<(Mapping, usize), Rejected<F>>
where
    D: Direction + 'static,
    F: FnOnce(AsyncOutcome) + Send + 'static,
{
    might_sleep();
    // The completion is kept apart until the request has started, so that an error gives it
    // back.
    let p = match prepare::<D>(queue, cmd, data, how, false, false) {
        Ok(p) => p,
        Err(error) => return Err(Rejected { error, done }),
    };
    let mut op = match KBox::new(AsyncOp { p, done: None }, GFP_KERNEL) {
        Ok(op) => op,
        Err(e) => {
            return Err(Rejected {
                error: e.into(),
                done,
            })
        }
    };
    let Some(rq) = op.p.rq.as_mut() else {
        return Err(Rejected {
            error: EINVAL,
            done,
        });
    };
    let shown = (rq.mapping(), rq.nr_segments());
    let raw_rq = rq.rq.as_ptr();
    // The device may use the data from now on: the request is released as executed.
    rq.executed = true;
    op.done = Some(done);
    let op = KBox::into_raw(op);
    // SAFETY: `raw_rq` is the op's request, mapped and not executed; from here the op belongs
    // to the completion, which the module's worker calls once with it after the request ended.
    let r =
        unsafe { shim::iovx_pt_execute_nowait(raw_rq, Some(complete_async::<D, F>), op.cast()) };
    if r != 0 {
        // SAFETY: Not started: the op is still ours.
        let mut op = unsafe { KBox::from_raw(op) };
        if let Some(rq) = op.p.rq.as_mut() {
            rq.executed = false;
        }
        let done = op.done.take();
        drop(op);
        // `done` was put in the op just above: `None` does not happen.
        return match done {
            Some(done) => Err(Rejected {
                error: Error::from_errno(r),
                done,
            }),
            None => Ok(shown),
        };
    }
    Ok(shown)
}

/// The request of user memory `data` carrying `cmd` on `queue`, mapped as `how` says, its
/// request allocated without waiting for a tag if `nowait` (`EAGAIN` if none is free). Unless
/// `copy_back_in_task` (the completion runs in the submitting task), a mapping that bounces a
/// read, or any that the kernel's mapping bounces, is refused with `EOPNOTSUPP`: after mapping,
/// by what the mapping made (released without a copy back), and before anything is taken when
/// the queue's limits already tell.
fn prepare<D: Direction + 'static>(
    queue: Queue<'_>,
    cmd: Command,
    data: UserData,
    how: MapWith,
    copy_back_in_task: bool,
    nowait: bool,
) -> Result<Prepared<D>> {
    // SAFETY: The disk is live (`Queue` invariant).
    let gate = NonNull::new(unsafe { shim::iovx_gate_hold(queue.disk.as_ptr()) }).ok_or(ENXIO)?;
    // SAFETY: Process context.
    let Some(mm) = NonNull::new(unsafe { shim::iovx_mm_grab_current() }) else {
        // SAFETY: Taken above, released once.
        unsafe { shim::iovx_gate_unhold(gate.as_ptr()) };
        return Err(EINVAL);
    };
    let (iter, vecs) = match data {
        UserData::Buf { addr, len } => (IovIter::<D>::ubuf(addr, len), None),
        UserData::Vecs(v) => {
            // SAFETY: The vector's buffer stays where it is while the vector is kept by the op
            // (moving a `KVec` does not move its elements), which outlives the iterator.
            let s: &'static [UserVec] = unsafe { core::slice::from_raw_parts(v.as_ptr(), v.len()) };
            (IovIter::<D>::iovec(s), Some(v))
        }
    };
    let iter = match iter.and_then(|it| KBox::new(it, GFP_KERNEL).map_err(Into::into)) {
        Ok(it) => it,
        Err(e) => {
            // SAFETY: Taken above, released once each; no iterator refers to the vector.
            unsafe {
                shim::iovx_gate_unhold(gate.as_ptr());
                shim::iovx_mm_drop(mm.as_ptr());
            }
            return Err(e);
        }
    };
    // INVARIANT: `rq` comes next; the iterator, the vector, the mm and the hold are the op's,
    // and on any error below dropping the op releases them (and the request) once.
    let mut p = Prepared::<D> {
        rq: None,
        ended: None,
        // SAFETY: `KBox::into_raw` gives a non-null pointer.
        iter: unsafe { NonNull::new_unchecked(KBox::into_raw(iter)) },
        _vecs: vecs,
        mm,
        gate: Some(gate),
    };
    // SAFETY: The gate's hold keeps the disk, its queue and tag set until the op lets it go:
    // at the request's end, after which `del_gendisk()` still waits for the block layer to
    // free it (the request holds the queue's usage count), or when the op is dropped, after
    // the request is freed.
    let q: Queue<'static> = unsafe { Queue::from_raw(queue.disk.as_ptr()) };
    // SAFETY: The iterator is the op's, freed only after the request and its data
    // (`Prepared::drop`); the request is its only user from now on.
    let it: &'static mut IovIter<'static, D> = unsafe { &mut *p.iter.as_ptr() };
    if !copy_back_in_task {
        // What the queue's limits tell before anything is taken (the test `map()` and
        // `blk_rq_map_user_iov()` make for user memory); the mapping decides below.
        let bounces = match how {
            MapWith::Rust(Bounce::Always) => true,
            _ => PtRequest::<D>::needs_bounce(it, &q.limits()),
        };
        if bounces && (D::WRITES_MEMORY || how == MapWith::Kernel) {
            return Err(super::blk::not_supported());
        }
    }
    // Without the bio in the request: a request of `submit_uring` ends at its `end_io` and is
    // freed by the block layer before its chain is released (`PtRequest::end`); those of
    // `submit_async`, released before they are freed, share this preparation.
    let rq = p.rq.insert(PtRequest::alloc(q, cmd, nowait, false)?);
    match how {
        MapWith::Rust(b) => rq.map(it, b).map(|_| ())?,
        MapWith::Kernel => rq.map_c(it)?,
    }
    if !copy_back_in_task {
        let copies = match rq.mapping() {
            Mapping::Bounced => D::WRITES_MEMORY,
            // SAFETY: The request's chain, made by `blk_rq_map_user_iov()`.
            Mapping::Kernel => unsafe { chain_is_copy(rq.head) },
            _ => false,
        };
        if copies {
            // Dropping `p` releases the request, not executed: a Rust bounce is not copied back;
            // `blk_rq_unmap_user()` copies the zeroes of the kernel's bounced read into memory
            // borrowed for writing.
            return Err(super::blk::not_supported());
        }
    }
    Ok(p)
}

/// The completion of a request run by [`submit_async`], from the module's worker.
///
/// # Safety
///
/// Called once, in process context (a kernel thread without an address space of its own),
/// with the `AsyncOp<D, F>` given to `iovx_pt_execute_nowait()`, whose request has ended with
/// `error`.
unsafe extern "C" fn complete_async<D, F>(ctx: *mut core::ffi::c_void, error: core::ffi::c_int)
where
    D: Direction + 'static,
    F: FnOnce(AsyncOutcome) + Send + 'static,
{
    // SAFETY: By the safety requirements, the op is ours now.
    let mut op = unsafe { KBox::from_raw(ctx.cast::<AsyncOp<D, F>>()) };
    // A submitted op has its request (type invariant): this return, which drops `done` without
    // calling it, does not happen.
    let Some(mut rq) = op.p.rq.take() else {
        return;
    };
    let command = rq.command();
    let (mapping, segments) = (rq.mapping(), rq.nr_segments());
    // Nothing is copied back here, whatever the mapping (`prepare()` refused every mapping
    // that would copy): the release unpins (dirtying a read's pages) or frees a write's bounce
    // pages.
    let released = rq.release(false);
    drop(rq);
    let result = if error != 0 {
        Err(Error::from_errno(error))
    } else {
        released.map(|()| command.result)
    };
    let done = op.done.take();
    // The iterator, the vector, the hold on the disk and the mm go before the completion runs:
    // it may drop the disk.
    drop(op);
    if let Some(done) = done {
        done(AsyncOutcome {
            result,
            command,
            mapping,
            segments,
        });
    }
}

/// `ECANCELED`.
fn ecanceled() -> Error {
    Error::from_errno(-(bindings::ECANCELED as i32))
}

/// A request run by [`submit_uring`], with the command it answers; `command` and `error` are
/// those of the request, recorded at its end.
struct UringOp<D: Direction + 'static, F> {
    p: Prepared<D>,
    pending: Option<PendingCmd>,
    answer: Option<F>,
    command: Command,
    error: i32,
}

// SAFETY: The op is handed once from the submitter to the end of its request (which only moves
// pointers and records values) and then to the task work of the same command, which runs in the
// submitting task (whose address space its iterator walks) or, the task exiting, in io_uring's
// fallback worker, which does not copy; `PendingCmd` and `F` are `Send`.
unsafe impl<D: Direction + 'static, F: Send> Send for UringOp<D, F> {}

/// Maps `data` (user memory of the current task) into a passthrough request carrying `command`
/// on `queue` and runs it without waiting, to answer the io_uring command `cmd` from its
/// completion, as NVMe's generic character devices do. The command is pended
/// ([`UringCmd::pend`]) once the request is mapped, just before it runs; the callback then
/// returns whatever it likes (io_uring gets `-EIOCBQUEUED`).
///
/// The request does not outlive its end: there, in whatever context the driver ends it, the
/// status and the driver's [`Command`] are recorded, the request forgets its bios (kept by
/// the operation), the block layer frees it (`RQ_END_IO_FREE`: its tag and the queue's usage
/// count go back at once) and the hold on the disk is let go; then the completion is queued as
/// task work of the task that submitted the command (`io_uring_cmd_do_in_task_lazy()`). So a
/// submitter that does not run its task work (it sleeps, or its ring defers the work until it
/// waits for completions) keeps pages and memory of its own, never a tag or the disk. There, in
/// process context and in the submitter's own address space, the completion releases the
/// data exactly once (a bounced read copied back like any `copy_to_user()`, a fault making it
/// `EFAULT`; pinned pages dirtied and unpinned; the kernel's mapping by `blk_rq_unmap_user()`),
/// and answers the command once with what `answer` makes of the outcome (the result and the
/// second value of the completion entry). If the task is exiting (`IO_URING_F_TASK_DEAD`), a
/// bounced read of the Rust mapping is not copied back: its pages are freed and it ends
/// `ECANCELED`.
///
/// Issued from a context that must not block ([`UringCmd::nonblock`]), the request is
/// allocated without waiting for a tag: `EAGAIN` if none is free, which the callback returns
/// to io_uring so that its worker issues the command again.
///
/// Gives the mapping made and its segments. On an error (those of [`PtRequest::new`],
/// [`PtRequest::map`] and [`PtRequest::map_c`]; `EAGAIN` as above; `ENXIO` if the disk is
/// being deleted; `EINVAL` without a user address space; `EBUSY` if the command was pended
/// already) nothing is left taken, the command is not pended and `answer` is given back: the
/// callback answers with the error.
///
/// Process context: may sleep.
pub fn submit_uring<D, F>(
    cmd: &UringCmd<'_>,
    queue: Queue<'_>,
    command: Command,
    data: UserData,
    how: MapWith,
    answer: F,
) -> core::result::Result<(Mapping, usize), (Error, F)>
where
    D: Direction + 'static,
    F: FnOnce(AsyncOutcome) -> (i32, u64) + Send + 'static,
{
    might_sleep();
    // A command pended already is refused before anything is taken (`pend()` below would).
    if cmd.is_pended() {
        return Err((EBUSY, answer));
    }
    let p = match prepare::<D>(queue, command, data, how, true, cmd.nonblock()) {
        Ok(p) => p,
        Err(e) => return Err((e, answer)),
    };
    // The op is made before it takes the answer, so that a failure gives it back.
    let mut op = match KBox::new(
        UringOp {
            p,
            pending: None,
            answer: None,
            command,
            error: 0,
        },
        GFP_KERNEL,
    ) {
        Ok(op) => op,
        Err(e) => return Err((e.into(), answer)),
    };
    let pending = match cmd.pend() {
        Ok(pending) => pending,
        Err(e) => return Err((e, answer)),
    };
    let raw_cmd = pending.as_raw();
    op.pending = Some(pending);
    op.answer = Some(answer);
    // A prepared op has its request (type invariant): this return, which answers the command
    // `ECANCELED` as the op is dropped, does not happen.
    let Some(rq) = op.p.rq.as_mut() else {
        return Ok((Mapping::None, 0));
    };
    let shown = (rq.mapping(), rq.nr_segments());
    let raw_rq = rq.rq.as_ptr();
    // The device may use the data from now on: the request is released as executed.
    rq.executed = true;
    let op = KBox::into_raw(op);
    // SAFETY: `raw_rq` is the op's request, mapped and not executed; `raw_cmd` the command the
    // op answers, kept by io_uring until then. From here the op belongs to the request's end,
    // called once with it from the request's `end_io`, and then to the completion, which the
    // command's task work calls once with it. Neither runs the op's code before the other is
    // done with it; this function no longer touches the op (nor `cmd`, now pended).
    unsafe {
        shim::iovx_pt_execute_uring(
            raw_rq,
            raw_cmd,
            Some(end_uring::<D, F>),
            Some(complete_uring::<D, F>),
            op.cast(),
        )
    };
    Ok(shown)
}

/// The end of a request run by [`submit_uring`], from its `end_io`, which then returns
/// `RQ_END_IO_FREE` and queues the command's task work: records the status and the command,
/// takes the request's data, and lets the disk go.
///
/// # Safety
///
/// Called once, from the `end_io` of the request of the `UringOp<D, F>` `ctx` given to
/// `iovx_pt_execute_uring()`, which ended with `error`; any context (interrupt included). The
/// task work of the command runs after this returns, not before.
unsafe extern "C" fn end_uring<D, F>(ctx: *mut core::ffi::c_void, error: core::ffi::c_int)
where
    D: Direction + 'static,
    F: FnOnce(AsyncOutcome) -> (i32, u64) + Send + 'static,
{
    // SAFETY: By the safety requirements, the op is the end's until it returns; nothing else
    // refers to it meanwhile.
    let op = unsafe { &mut *ctx.cast::<UringOp<D, F>>() };
    op.error = error;
    if let Some(rq) = op.p.rq.take() {
        op.command = rq.command();
        // SAFETY: From the end_io of this request, executed (set before it was run), which
        // returns `RQ_END_IO_FREE`. Takes no lock and does not sleep.
        op.p.ended = Some(unsafe { rq.end() });
    }
    // The request is done with the disk's queue (the block layer frees it next, which
    // `del_gendisk()` waits for): the hold goes here, not in the task work, which may run
    // much later or, while its task sleeps, not at all.
    if let Some(gate) = op.p.gate.take() {
        // SAFETY: The hold taken at submission, released once. An atomic decrement and
        // `wake_up_var()` (an irq-safe waitqueue lock): any context.
        unsafe { shim::iovx_gate_unhold(gate.as_ptr()) };
    }
}

/// The completion of a request run by [`submit_uring`], from the task work of its command.
///
/// # Safety
///
/// Called once, from the task work of the op's command `ioucmd` (`iovx_pt_execute_uring()`)
/// with the issue flags it was given: in the submitting task, or with `IO_URING_F_TASK_DEAD`
/// while it exits or in io_uring's fallback worker; with the `UringOp<D, F>` given to
/// `iovx_pt_execute_uring()`, after [`end_uring`] returned for it.
unsafe extern "C" fn complete_uring<D, F>(
    ctx: *mut core::ffi::c_void,
    ioucmd: *mut bindings::io_uring_cmd,
    issue_flags: core::ffi::c_uint,
) where
    D: Direction + 'static,
    F: FnOnce(AsyncOutcome) -> (i32, u64) + Send + 'static,
{
    // SAFETY: By the safety requirements, the op is ours now.
    let op = unsafe { KBox::from_raw(ctx.cast::<UringOp<D, F>>()) };
    // SAFETY: The task work of `ioucmd`, with its flags.
    unsafe { InTask::with(issue_flags, ioucmd, |tw| finish_uring(op, tw)) }
}

/// The completion of an op of [`submit_uring`] in its command's task work `tw`: releases the
/// data (a bounced read copied back in the submitter's own address space), then answers.
fn finish_uring<D, F>(mut op: KBox<UringOp<D, F>>, tw: &InTask<'_>)
where
    D: Direction + 'static,
    F: FnOnce(AsyncOutcome) -> (i32, u64) + Send + 'static,
{
    // A submitted op has its command, answer and ended request (set before it was run, and at
    // its end): these returns do not happen (dropping the command answers it `ECANCELED`).
    let (Some(pending), Some(answer)) = (op.pending.take(), op.answer.take()) else {
        return;
    };
    let Some(ended) = op.p.ended.take() else {
        return;
    };
    let command = op.command;
    let (mapping, segments) = (ended.mapping(), ended.nr_segments());
    // A bounced read of the Rust mapping is copied back only by the task that submitted it, in
    // its own address space (the fallback worker has none; a task exiting gets nothing back).
    // The kernel's `blk_rq_unmap_user()` copies to whatever address space runs it, as for
    // NVMe's commands: the exiting task's own, or none in the fallback worker (`EINTR`).
    let dead = tw.task_dead();
    // SAFETY: Compares pointers; the op keeps its mm grabbed.
    let own_mm = unsafe { shim::iovx_mm_is_current(op.p.mm.as_ptr()) };
    let released = if mapping == Mapping::Bounced && D::WRITES_MEMORY && (dead || !own_mm) {
        drop(ended);
        Err(if dead { ecanceled() } else { EFAULT })
    } else {
        ended.release(true)
    };
    let result = if op.error != 0 {
        Err(Error::from_errno(op.error))
    } else {
        released.map(|()| command.result)
    };
    // The iterator, the vector and the mm go before the answer, after which the command's file
    // (and so the module) may go.
    drop(op);
    let (res, res2) = answer(AsyncOutcome {
        result,
        command,
        mapping,
        segments,
    });
    pending.done_in_task(res, res2, tw);
}

/// Waits until every request run by [`submit_async`] has completed, and then for the module's
/// worker to be done. A module that uses [`submit_async`] must call it at exit, after its
/// disks are gone: its completions run the module's code. Called from a completion, it
/// returns at once (it would wait for itself). Submissions may follow: they make a new worker.
///
/// Process context: sleeps.
pub fn drain_async() {
    might_sleep();
    // SAFETY: Process context.
    unsafe { shim::iovx_pt_async_exit() };
}

/// Requests run by [`submit_async`] not completed yet.
pub fn async_in_flight() -> usize {
    // SAFETY: Reads a counter.
    unsafe { shim::iovx_pt_async_inflight() as usize }
}
