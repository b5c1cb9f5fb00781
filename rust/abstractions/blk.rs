// SPDX-License-Identifier: GPL-2.0

//! A disk whose requests a [`Driver`] serves by copying data, and the typed view of a request:
//! data only from the reads and writes that carry it. The disk is blk-mq, or bio-based
//! ([`Config::bio_based`]: served from `submit_bio`, each bio lent to the driver as a
//! [`Request`]).
//!
//! C headers: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h),
//! [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)
//!
//! Linux 6.12's `kernel::block::mq` offers no data access, no error completion and no way to
//! submit bios to the disk it makes, so this module builds the tag set and the gendisk over the
//! raw API (in the shape of the in-tree abstraction) and adds what a RAM disk needs: the request's
//! operation and, for reads and writes only, its single-page segments typed by direction; copies
//! between segments and the driver's pages done in C; a way to say "busy, try again later";
//! discard and write-zeroes limits; and a delayed completion mode in which the transfer itself
//! happens when the request completes, as with a DMA engine, from a workqueue of the disk's own.
//!
//! # Contexts
//!
//! - [`Driver::transfer`] runs in atomic context: from `queue_rq`, which blk-mq calls under
//!   `rcu_read_lock()` (the queue is not `BLK_MQ_F_BLOCKING`), or, with a delay, from a worker of
//!   the disk's workqueue. It must not sleep; nothing in this module that it can reach sleeps.
//!   On a bio-based disk it runs from `submit_bio`, in the submitter's context, inside an RCU
//!   read-side section as `queue_rq` does, so the same rule is checked the same way.
//! - [`Disk::new`] and dropping a [`Disk`] sleep (process context); both call `might_sleep()`,
//!   so the debug kernel reports a call from atomic context, such as from `transfer`.
//! - "Must not sleep" is a rule of the API, not of its types: as in the kernel's own Rust code,
//!   nothing stops a `transfer` from calling something that sleeps (waiting for a bio, which on
//!   a bio-based disk submitting to itself is only queued on the task's `bio_list` and so waits
//!   for ever; or breaking `blk_mq_quiesce_queue()`'s guarantee on blk-mq). The debug kernel's
//!   `might_sleep()` checks report it, which is why the bio-based call is in an RCU section.
//!
//! # Unload
//!
//! Dropping a [`Disk`] deletes the gendisk (which returns once every request has ended and no
//! `queue_rq` or `submit_bio` runs any more, and after which no bio reaches `submit_bio`), then
//! drains and destroys the disk's workqueue (so no worker is still returning through the
//! module's code), then frees the tag set. The gendisk's operations table is a `static` of the
//! module whose other callback, `ioctl`, runs on an open device (the module held) and reaches
//! the driver through a gate that the drop closes first, so a gendisk that outlives the
//! [`Disk`] never calls into its driver. See `Documentation/blk.rst`.

use super::iov::{Dest, Direction, Source};
use super::passthrough::{Command, Limits as PtLimits, Queue};
use super::shim;
use super::task::might_sleep;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::{
    bindings, error::from_err_ptr, ffi, page::Page, page::PAGE_SIZE, prelude::*, types::Opaque,
    types::ScopeGuard,
};

/// A request being served, lent to [`Driver::transfer`]: a blk-mq request, or the bio itself
/// on a bio-based disk ([`Config::bio_based`]).
///
/// Its data is reached through [`Request::op`], which gives segments for reads and writes only.
///
/// # Invariants
///
/// Either `rq` is a request of a queue made by [`Disk::new`], handed to the driver by `queue_rq`
/// and not yet ended, for `'a`, and `bio`, `opf`, `sector` and `len` are its first bio (null if
/// it has none), `cmd_flags`, `__sector` and `__data_len`; or `rq` is null and `bio` is a bio
/// handed to a bio-based disk made by [`Disk::new`] through its `submit_bio`, alone (`bi_next`
/// null) and not yet ended, for `'a`, and `opf`, `sector` and `len` are its `bi_opf`,
/// `bi_iter.bi_sector` and `bi_iter.bi_size`.
pub struct Request<'a> {
    rq: *mut bindings::request,
    bio: *mut bindings::bio,
    opf: u32,
    sector: u64,
    len: u32,
    _p: PhantomData<&'a ()>,
}

/// The operation of a request, with what each operation carries.
///
/// Only [`Op::Read`] and [`Op::Write`] give access to data: a discard, a write-zeroes or a flush
/// request has no data pages (a discard bio's `bi_io_vec` is NULL), so it has no segments to ask
/// for.
pub enum Op<'r> {
    /// Read sectors: the driver fills the segments.
    Read(Data<'r, Dest>),
    /// Write sectors: the driver takes the data from the segments.
    Write(Data<'r, Source>),
    /// Flush the volatile write cache. Carries no data and no position.
    Flush,
    /// Discard sectors (their contents become undefined; here: zero).
    Discard(Range),
    /// Write zeroes to sectors.
    WriteZeroes(Range),
    /// A passthrough command that reads from the device (`REQ_OP_DRV_IN`): the driver fills the
    /// segments, if any.
    DrvIn(Passthrough<'r, Dest>),
    /// A passthrough command that writes to the device (`REQ_OP_DRV_OUT`): the driver takes the
    /// data from the segments, if any.
    DrvOut(Passthrough<'r, Source>),
    /// Anything else (zone and secure-erase operations, which these disks do not announce, and
    /// driver operations not made by this layer); it carries nothing a driver can reach. Fail it with [`not_supported`].
    Other,
}

/// The sectors a discard or write-zeroes request covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// The first sector (of 512 bytes).
    pub sector: u64,
    /// Bytes covered.
    pub len: usize,
}

impl<'a> Request<'a> {
    /// A blk-mq request.
    ///
    /// # Safety
    ///
    /// `rq` is a request of a queue made by [`Disk::new`], handed to the driver by `queue_rq`,
    /// that is not ended for `'a`.
    #[inline]
    unsafe fn of_rq(rq: *mut bindings::request) -> Self {
        // INVARIANT: By the safety requirements; the fields are the request's.
        // SAFETY: `rq` is a valid request.
        unsafe {
            Self {
                rq,
                bio: (*rq).bio,
                opf: (*rq).cmd_flags,
                sector: (*rq).__sector,
                len: (*rq).__data_len,
                _p: PhantomData,
            }
        }
    }

    /// The bio handed to a bio-based disk.
    ///
    /// # Safety
    ///
    /// `bio` is a bio handed to a bio-based disk made by [`Disk::new`] by its `submit_bio`,
    /// alone (`bi_next` null), that is not ended for `'a`.
    #[inline]
    unsafe fn of_bio(bio: *mut bindings::bio) -> Self {
        // INVARIANT: By the safety requirements; the fields are the bio's.
        // SAFETY: `bio` is a valid bio.
        unsafe {
            Self {
                rq: core::ptr::null_mut(),
                bio,
                opf: (*bio).bi_opf,
                sector: (*bio).bi_iter.bi_sector,
                len: (*bio).bi_iter.bi_size,
                _p: PhantomData,
            }
        }
    }

    /// The operation, and for reads and writes the data.
    #[inline]
    pub fn op(&self) -> Op<'_> {
        // `req_op()` / `bio_op()`: the low bits of the flags.
        let op = self.opf & ((1 << bindings::REQ_OP_BITS) - 1);
        match op {
            // SAFETY: The operation is a read.
            bindings::req_op_REQ_OP_READ => Op::Read(unsafe { self.data() }),
            // SAFETY: The operation is a write.
            bindings::req_op_REQ_OP_WRITE => Op::Write(unsafe { self.data() }),
            bindings::req_op_REQ_OP_FLUSH => Op::Flush,
            bindings::req_op_REQ_OP_DISCARD => Op::Discard(self.range()),
            bindings::req_op_REQ_OP_WRITE_ZEROES => Op::WriteZeroes(self.range()),
            // INVARIANT: The operation is a passthrough read of a blk-mq request, with a
            // command in the PDU. (A bio-based disk gets none: its bios come from
            // `submit_bio()`, which refuses these operations; `Other` if one came.)
            bindings::req_op_REQ_OP_DRV_IN if !self.rq.is_null() => Op::DrvIn(Passthrough {
                raw: self.rq,
                _p: PhantomData,
            }),
            // INVARIANT: The operation is a passthrough write of a blk-mq request, with a
            // command in the PDU.
            bindings::req_op_REQ_OP_DRV_OUT if !self.rq.is_null() => Op::DrvOut(Passthrough {
                raw: self.rq,
                _p: PhantomData,
            }),
            _ => Op::Other,
        }
    }

    /// The data of a read or a write, walked in the direction `D`.
    ///
    /// # Safety
    ///
    /// `D` is [`Dest`] if the operation is `REQ_OP_READ` or `REQ_OP_DRV_IN`, [`Source`] if it
    /// is `REQ_OP_WRITE` or `REQ_OP_DRV_OUT` (the invariant of [`Data`]).
    #[inline]
    unsafe fn data<D: Direction>(&self) -> Data<'a, D> {
        Data {
            bio: self.bio,
            sector: self.sector,
            len: self.len,
            _p: PhantomData,
        }
    }

    /// Whether the request asks for forced unit access.
    pub fn is_fua(&self) -> bool {
        self.opf & (1 << bindings::req_flag_bits___REQ_FUA) != 0
    }

    /// Whether the request must not wait (`REQ_NOWAIT`).
    #[inline]
    fn is_nowait(&self) -> bool {
        self.opf & (1 << bindings::req_flag_bits___REQ_NOWAIT) != 0
    }

    /// The first sector (of 512 bytes). Meaningless for a flush.
    #[inline]
    pub fn sector(&self) -> u64 {
        self.sector
    }

    /// Bytes the request covers (none for a flush).
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the request covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many of the request's bios the block layer split off a larger bio to fit the
    /// queue's limits (`bio_split()` makes the piece it submits first a clone, `BIO_CLONED`;
    /// the rest of the original bio follows as a bio of its own). No stacking driver sits on
    /// these disks, so no other bio reaching them is a clone. (A bio-based disk is given one
    /// bio at a time: 1 if it is such a piece.)
    #[inline]
    pub fn split_pieces(&self) -> usize {
        let mut n = 0;
        // SAFETY: `bio` is null or a valid bio (type invariant); a request's bios, chained by
        // `bi_next`, are kept by the request until it ends, after this borrow; a bio-based
        // disk's bio is alone.
        unsafe {
            let mut bio = self.bio;
            while !bio.is_null() {
                if (*bio).bi_flags & (1 << bindings::BIO_CLONED) != 0 {
                    n += 1;
                }
                bio = (*bio).bi_next;
            }
        }
        n
    }

    fn range(&self) -> Range {
        Range {
            sector: self.sector(),
            len: self.len(),
        }
    }
}

/// The data of a read (`D` is [`Dest`]: the driver writes the segments) or of a write (`D` is
/// [`Source`]: the driver reads them), borrowed from the request for `'r`.
///
/// # Invariants
///
/// `bio` is null or the first bio of a [`Request`] as in its invariant (of a blk-mq request, or
/// the bio of a bio-based disk), valid with the bios chained to it by `bi_next` for `'r`, and
/// `sector` and `len` are the request's position and bytes. The operation is `REQ_OP_READ` or
/// `REQ_OP_DRV_IN` if `D` is [`Dest`] and `REQ_OP_WRITE` or `REQ_OP_DRV_OUT` if `D` is
/// [`Source`]: the bios carry data pages in `bi_io_vec` (`bi_iter.bi_size` bytes of them, none
/// for an empty bio), writable by the device for a read.
pub struct Data<'r, D: Direction> {
    bio: *mut bindings::bio,
    sector: u64,
    len: u32,
    _p: PhantomData<(&'r (), D)>,
}

impl<D: Direction> Data<'_, D> {
    /// The first sector (of 512 bytes).
    pub fn sector(&self) -> u64 {
        self.sector
    }

    /// Bytes to transfer. May be zero: then there are no segments.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there is nothing to transfer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` for each single-page data segment, in order (`rq_for_each_segment()`), and
    /// stops at the first error. Each call walks the request from its start.
    pub fn for_each_segment<E>(
        &self,
        mut f: impl FnMut(&mut Segment<'_, D>) -> Result<(), E>,
    ) -> Result<(), E> {
        // SAFETY: `bio` is null or a valid bio (type invariant). As `rq_for_each_segment()`:
        // from the first bio's position.
        let mut it = unsafe {
            let bio = self.bio;
            bindings::req_iterator {
                bio,
                iter: if bio.is_null() {
                    core::mem::zeroed()
                } else {
                    (*bio).bi_iter
                },
            }
        };
        loop {
            // Without a call, the usual cases: a segment within one page, not started, taken
            // whole (the shim's first case), and the end of the last bio.
            // SAFETY: `it.bio` is null or one of the request's bios, valid for the borrow. While
            // its `bi_size` is non-zero, `bi_idx` indexes a segment of its `bi_io_vec` (it
            // carries data: a read or a write, whose iterator advances through its vector) and
            // `bi_bvec_done` says how much of that segment is done; `it` is advanced as
            // `bio_advance_iter_single()` would for the whole segment.
            let fast = unsafe {
                if it.bio.is_null() {
                    return Ok(());
                }
                if it.iter.bi_size == 0 {
                    if (*it.bio).bi_next.is_null() {
                        return Ok(());
                    }
                    None
                } else if it.iter.bi_bvec_done == 0 {
                    let v = *(*it.bio).bi_io_vec.add(it.iter.bi_idx as usize);
                    if v.bv_len <= it.iter.bi_size
                        && v.bv_offset as usize + v.bv_len as usize <= PAGE_SIZE
                    {
                        it.iter.bi_idx += 1;
                        it.iter.bi_size -= v.bv_len;
                        it.iter.bi_sector += u64::from(v.bv_len >> 9);
                        Some(v)
                    } else {
                        None
                    }
                } else {
                    None
                }
            };
            let bv = match fast {
                Some(v) => v,
                None => {
                    let mut bv = core::mem::MaybeUninit::<bindings::bio_vec>::uninit();
                    // SAFETY: `it` was initialised above and walks the request's bios, which
                    // stay valid for the borrow; they carry data (type invariant: a read or a
                    // write), so their `bi_io_vec` lists `bi_size` bytes of pages. `bv` is
                    // written when `true` is returned.
                    if !unsafe { shim::iovx_rq_iter_next(&mut it, bv.as_mut_ptr()) } {
                        return Ok(());
                    }
                    // SAFETY: `bv` was written by the call above.
                    unsafe { bv.assume_init() }
                }
            };
            // INVARIANT: The segment lies within one page of the request's data, which stays
            // valid until the request ends, after `f` returns; the direction is the request's.
            let mut seg = Segment {
                bv,
                _p: PhantomData,
            };
            f(&mut seg)?;
        }
    }
}

// --- Passthrough requests (see passthrough.rs) ---------------------------------------------

/// A passthrough request being served: its [`Command`] and its data, borrowed for `'r`.
///
/// # Invariants
///
/// `raw` is a request as in [`Request`]'s invariant, valid for `'r`, whose operation is
/// `REQ_OP_DRV_IN` if `D` is [`Dest`] and `REQ_OP_DRV_OUT` if `D` is [`Source`], allocated by
/// [`PtRequest::new`](super::passthrough::PtRequest::new), which wrote a [`Command`] in its PDU
/// (every PDU's command is initialised by `init_request`, so any other request of such an
/// operation shows a zero one); the submitter reads the command again only after the request has
/// ended.
pub struct Passthrough<'r, D: Direction> {
    raw: *mut bindings::request,
    _p: PhantomData<(&'r (), D)>,
}

impl<'r, D: Direction> Passthrough<'r, D> {
    /// The command.
    pub fn command(&self) -> Command {
        // SAFETY: The PDU holds a command (type invariant), which only the driver touches until
        // the request ends.
        unsafe { pdu_command(self.raw).read() }
    }

    /// Sets the command's result, which the submitter reads once the request has ended.
    pub fn set_result(&self, result: u32) {
        // SAFETY: As in `command`; the driver serves the request from one thread at a time.
        unsafe { (*pdu_command(self.raw)).result = result };
    }

    /// The data, walked as a read's ([`Dest`]) or a write's ([`Source`]); empty for a command
    /// without data.
    pub fn data(&self) -> Data<'_, D> {
        // SAFETY: A request handed to the driver and not ended for `'r` (type invariant).
        let rq = unsafe { Request::of_rq(self.raw) };
        // SAFETY: A passthrough request of the direction `D` (type invariant), whose bios the
        // request keeps for the borrow of `self`.
        unsafe { rq.data() }
    }

    /// The limits of the request's queue.
    pub fn limits(&self) -> PtLimits {
        // SAFETY: The request's queue belongs to a live disk made by `Disk::new`, which lives
        // while its requests do.
        unsafe { Queue::from_raw((*(*self.raw).q).disk) }.limits()
    }
}

/// The command in the PDU of a request of a disk made by [`Disk::new`].
///
/// # Safety
///
/// `rq` is a valid request of such a disk.
pub(crate) unsafe fn pdu_command(rq: *mut bindings::request) -> *mut Command {
    // SAFETY: The PDU of every request of the tag set is a `Pdu` (its `cmd_size`).
    unsafe {
        let pdu = shim::iovx_rq_pdu(rq).cast::<Pdu>();
        (*pdu).cmd.get()
    }
}

/// The bio in the PDU of a request of a disk made by [`Disk::new`], and its
/// [`PT_INLINE_VECS`] segments: memory of the request's, uninitialised until a passthrough
/// mapping initialises it, valid as long as the request is allocated.
///
/// # Safety
///
/// `rq` is a valid request of such a disk.
pub(crate) unsafe fn pdu_pt_bio(
    rq: *mut bindings::request,
) -> (*mut bindings::bio, *mut bindings::bio_vec) {
    // SAFETY: The PDU of every request of the tag set is a `Pdu` (its `cmd_size`).
    unsafe {
        let pdu = shim::iovx_rq_pdu(rq).cast::<Pdu>();
        ((*pdu).pt_bio.get(), (*pdu).pt_vecs.get().cast())
    }
}

// --- End of passthrough requests ----------------------------------------------------------

/// One single-page piece of a request's data: of a read if `D` is [`Dest`], of a write if `D` is
/// [`Source`].
///
/// # Invariants
///
/// `bv` describes `bv_len` bytes at `bv_offset` within page `bv_page`, all within that page,
/// which is valid memory for `'a` (writable if `D` is [`Dest`]). The memory belongs to whoever
/// issued the I/O (a pinned user page, a page-cache page, kernel memory) and others may access
/// it concurrently, so it is only ever accessed by copies done in C, never through Rust
/// references or Rust copies, as a DMA engine would access it.
pub struct Segment<'a, D: Direction> {
    bv: bindings::bio_vec,
    _p: PhantomData<(&'a (), D)>,
}

/// Checks that `offset..offset + len` lies within a page.
fn check_range(offset: usize, len: usize) -> Result {
    match offset.checked_add(len) {
        Some(end) if end <= PAGE_SIZE => Ok(()),
        _ => Err(EINVAL),
    }
}

impl<D: Direction> Segment<'_, D> {
    /// Bytes in the segment.
    pub fn len(&self) -> usize {
        self.bv.bv_len as usize
    }

    /// Whether the segment is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks that `at..at + len` lies within the segment and gives the offset of byte `at` in
    /// the segment's page.
    #[inline]
    fn page_offset(&self, at: usize, len: usize) -> Result<usize> {
        match at.checked_add(len) {
            Some(end) if end <= self.len() => Ok(self.bv.bv_offset as usize + at),
            _ => Err(EINVAL),
        }
    }
}

impl Segment<'_, Source> {
    /// Copies `len` bytes of the segment from byte `at` into `page` at `offset` (the data of a
    /// write). `EINVAL` if a range is out of bounds.
    #[inline]
    pub fn copy_to_page(&self, at: usize, page: &mut Page, offset: usize, len: usize) -> Result {
        check_range(offset, len)?;
        let from = self.page_offset(at, len)?;
        // SAFETY: Both ranges were checked to lie within their pages; `page` is borrowed
        // mutably, so nothing else accesses it; the segment's page is valid (type invariant) and
        // a different page from `page`, which belongs to the driver. The copy is done in C, so a
        // concurrent writer of the segment's page gives torn bytes, not a Rust data race; it
        // copies bytes only, no state of either page (such as arm64's memory tags).
        unsafe { shim::iovx_copy_page(page.as_ptr(), offset, self.bv.bv_page, from, len) };
        Ok(())
    }

    /// Copies `out.len()` bytes of the segment from byte `at` into `out`. `EINVAL` if the range
    /// is out of bounds.
    pub fn copy_to_slice(&self, at: usize, out: &mut [u8]) -> Result {
        let len = out.len();
        let from = self.page_offset(at, len)?;
        // SAFETY: The range lies within the segment's page (checked), which is valid (type
        // invariant); `out` is Rust memory borrowed mutably for `len` bytes. The copy is done in
        // C (`memcpy_from_page()`), so a concurrent writer of the segment's page is no data race
        // in Rust's model.
        unsafe { shim::iovx_memcpy_from_page(out.as_mut_ptr(), self.bv.bv_page, from, len) };
        Ok(())
    }
}

impl Segment<'_, Dest> {
    /// Copies `len` bytes of `page` at `offset` into the segment at byte `at` (the data of a
    /// read). `EINVAL` if a range is out of bounds.
    #[inline]
    pub fn copy_from_page(&mut self, at: usize, page: &Page, offset: usize, len: usize) -> Result {
        check_range(offset, len)?;
        let to = self.page_offset(at, len)?;
        // SAFETY: Both ranges were checked to lie within their pages; the segment's page is
        // valid and writable (type invariant: a read) and only ever accessed with copies in C,
        // which copy bytes only, no page state (such as arm64's memory tags); `page` is borrowed
        // shared, so safe code cannot write it meanwhile.
        unsafe { shim::iovx_copy_page(self.bv.bv_page, to, page.as_ptr(), offset, len) };
        Ok(())
    }

    /// Copies `data` into the segment at byte `at`. `EINVAL` if the range is out of bounds.
    pub fn copy_from_slice(&mut self, at: usize, data: &[u8]) -> Result {
        let len = data.len();
        let to = self.page_offset(at, len)?;
        // SAFETY: The range lies within the segment's page (checked), which is valid and
        // writable (type invariant: a read); `data` is Rust memory valid for `len` bytes. The
        // copy is done in C (`memcpy_to_page()`).
        unsafe { shim::iovx_memcpy_to_page(self.bv.bv_page, to, data.as_ptr(), len) };
        Ok(())
    }

    /// Fills `len` bytes of the segment from byte `at` with zeroes (a read of never-written
    /// sectors). `EINVAL` if the range is out of bounds.
    pub fn zero(&mut self, at: usize, len: usize) -> Result {
        let off = self.page_offset(at, len)?;
        // SAFETY: The range lies within the segment's page (checked), which is valid and
        // writable (type invariant: a read); the page is cleared in C.
        unsafe { shim::iovx_zero_page(self.bv.bv_page, off, len) };
        Ok(())
    }
}

/// The error for an operation a driver does not support (`EOPNOTSUPP`, which the block layer
/// turns into `BLK_STS_NOTSUPP`).
pub fn not_supported() -> Error {
    Error::from_errno(-(bindings::EOPNOTSUPP as i32))
}

/// Zeroes `len` bytes of `page` at `offset`. `EINVAL` if the range is not within the page.
pub fn zero_page_range(page: &mut Page, offset: usize, len: usize) -> Result {
    check_range(offset, len)?;
    // SAFETY: The range is within the page, which is borrowed mutably: nothing else accesses it.
    unsafe { shim::iovx_zero_page(page.as_ptr(), offset, len) };
    Ok(())
}

/// Why [`Driver::transfer`] did not carry out a request.
#[derive(Debug)]
pub enum Failure {
    /// Not now, for lack of something that comes back, such as memory (a `GFP_NOWAIT`
    /// allocation failed). The request is tried again later, from its start, and nothing reaches
    /// the submitter; any part already transferred is transferred again, which block I/O
    /// allows. The layer hands it back to blk-mq (`BLK_STS_RESOURCE` from `queue_rq`, before the
    /// request is started) or, when the transfer is delayed, tries again after the delay. On a
    /// bio-based disk the layer offers the bio again after `msleep(1)`, or, for a bio that may
    /// not wait (`REQ_NOWAIT`), ends it with `BLK_STS_AGAIN`.
    ///
    /// There is no limit on the retries: a driver that is busy for ever keeps its requests (and
    /// on a bio-based disk the submitting task, which holds the queue) waiting for ever, and the
    /// disk's deletion with them. `Busy` is for a shortage that passes.
    Busy,
    /// The request fails with this error, which ends it (`errno_to_blk_status()`).
    Error(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self::Error(e)
    }
}

/// What a disk driver does with the requests of its disk.
pub trait Driver: Send + Sync + Sized + 'static {
    /// Carries out `rq` (all of it) and says how it went.
    ///
    /// Atomic context: called from `queue_rq` under `rcu_read_lock()` (with preemption disabled
    /// on a kernel without preemptible RCU), or, for a disk with a delay, from a worker of the
    /// disk's workqueue. It must not sleep (no `GFP_KERNEL` allocation, no mutex); the debug
    /// kernel reports a sleeping call. On a bio-based disk it is called from `submit_bio`, in
    /// the submitter's context, and must not sleep either (a `REQ_NOWAIT` bio may not wait).
    /// It may be called again for the same request after it returned [`Failure::Busy`].
    fn transfer(&self, rq: &Request<'_>) -> Result<(), Failure>;

    /// An ioctl on the disk's block device (`block_device_operations.ioctl`), one the block
    /// layer does not handle itself: `cmd` and its argument (for most commands a user address).
    /// `writable` says whether the device was opened for writing. `queue` is the disk's, for
    /// passthrough requests; the disk is not deleted while this runs.
    ///
    /// Process context: may sleep. By default: `ENOTTY`.
    fn ioctl(&self, queue: Queue<'_>, writable: bool, cmd: u32, arg: usize) -> Result<isize> {
        let _ = (queue, writable, cmd, arg);
        Err(ENOTTY)
    }
}

/// The shape of a disk.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Size in 512-byte sectors.
    pub capacity_sectors: u64,
    /// Logical (and physical) block size: 512 or 4096.
    pub logical_block_size: u32,
    /// Hardware queues.
    pub hw_queues: u32,
    /// Requests per hardware queue.
    pub queue_depth: u32,
    /// When non-zero, a request's data is transferred and the request completed this many
    /// microseconds after it was queued, from a worker of the disk's own workqueue, instead of
    /// at once. Zero for a bio-based disk.
    pub delay_us: u64,
    /// Bio-based: the driver serves each bio as it is submitted (`submit_bio` in the gendisk's
    /// operations, as brd does, or null_blk with `queue_mode=0`), without blk-mq's requests,
    /// tags and hardware queues (`hw_queues` and `queue_depth` are then not used). Such a disk
    /// has no volatile write cache (the block layer completes flushes itself) and no
    /// passthrough requests (`EOPNOTSUPP`); it keeps I/O statistics as a blk-mq disk does,
    /// while `queue/iostats` is on.
    pub bio_based: bool,
}

/// Queue limits lower than the driver's defaults, so that the block layer splits bios that
/// exceed them (`bio_split_to_limits()`). Zero keeps a default. A bio-based disk with the
/// defaults splits nothing, as brd: its driver gets bios of any size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Largest request in 512-byte sectors (`max_hw_sectors`): 8 (a page) to 2048, a multiple
    /// of the logical block size. Default 2048 (1 MiB).
    pub max_sectors: u32,
    /// Most data segments per request (`max_segments`): 1 to 2048. Default 2048.
    pub max_segments: u32,
    /// Largest data segment in bytes (`max_segment_size`): at least the page size, which 6.12
    /// requires. Default the block layer's (64 KiB).
    pub max_segment_size: u32,
}

/// The default largest request, in sectors.
const MAX_SECTORS: u32 = 2048;

impl Limits {
    /// Checks the limits against the block size and what 6.12's `blk_validate_limits()` accepts
    /// (it warns and fails on a segment size below the page size or a request below a page).
    fn check(&self, lbs: u32) -> Result {
        let lbs_sectors = lbs >> 9;
        let s = self.max_sectors;
        if s != 0
            && (s < (PAGE_SIZE >> 9) as u32
                || s > MAX_SECTORS
                || s.checked_rem(lbs_sectors) != Some(0))
        {
            return Err(EINVAL);
        }
        if self.max_segments > MAX_SECTORS {
            return Err(EINVAL);
        }
        if self.max_segment_size != 0 && (self.max_segment_size as usize) < PAGE_SIZE {
            return Err(EINVAL);
        }
        Ok(())
    }
}

/// Segments of the bio in a request's driver data ([`pdu_pt_bio`]).
pub(crate) const PT_INLINE_VECS: usize = 4;

/// Per-request driver data (`blk_mq_rq_to_pdu()`).
#[repr(C)]
struct Pdu {
    work: Opaque<bindings::delayed_work>,
    /// The command of a passthrough request.
    cmd: Opaque<Command>,
    /// A bio for the first pages of a passthrough request's data, and its segments.
    pt_bio: Opaque<bindings::bio>,
    pt_vecs: Opaque<[bindings::bio_vec; PT_INLINE_VECS]>,
}

/// The delayed completion mode of a disk.
///
/// # Invariants
///
/// `wq` is a workqueue made by `iovx_alloc_workqueue()` for this disk, live until the disk's
/// `drop` destroys it.
struct Delay {
    wq: NonNull<bindings::workqueue_struct>,
    us: u64,
}

/// What the queue's `queuedata` points to.
struct Shared<T: Driver> {
    driver: T,
    delay: Option<Delay>,
    /// Bio-based with lowered limits: bios are split to them (`bio_split_to_limits()`).
    split: bool,
}

/// A registered disk served by a `T`.
///
/// # Invariants
///
/// `inner` is an [`Inner`] made by [`Disk::new`] (a `KBox` turned into a raw pointer), owned by
/// this value until `drop` closes its gate; from then on by whoever runs its teardown (`drop`
/// itself, or the last ioctl inside the gate).
pub struct Disk<T: Driver> {
    inner: NonNull<Inner<T>>,
}

/// What a [`Disk`] owns.
///
/// # Invariants
///
/// `disk` is a live gendisk added with `device_add_disk()`, whose queue uses `tag_set` (blk-mq)
/// or has none (bio-based), and whose `queuedata` is `shared`, all live until the teardown has
/// deleted the disk. Its operations table is the `static` `Vtable::<T>::BDEV_OPS` for blk-mq
/// (only an `ioctl` callback) or `Vtable::<T>::BIO_OPS` if bio-based (`submit_bio` and
/// `ioctl`), the module as owner, so the module stays while the disk is open. The workqueue of `shared.delay`, if any, is
/// destroyed by the teardown after the disk is deleted. `lbs` is the logical block size. `gate`
/// is an ioctl gate (`iovx_gate_new()`) published in the gendisk's `private_data`, whose data is
/// `shared` and whose teardown is `Vtable::<T>::teardown` of this value; the [`Disk`]'s `drop`
/// closes it before anything else.
struct Inner<T: Driver> {
    disk: NonNull<bindings::gendisk>,
    tag_set: Option<Pin<KBox<Opaque<bindings::blk_mq_tag_set>>>>,
    shared: Pin<KBox<Shared<T>>>,
    lbs: u32,
    gate: NonNull<ffi::c_void>,
}

// SAFETY: The gendisk, tag set and workqueue may be used and torn down from any thread; the
// driver is `Send + Sync`.
unsafe impl<T: Driver> Send for Disk<T> {}
// SAFETY: Shared access only reads the pointers, reads the driver (`Sync`) and calls thread-safe
// block layer functions.
unsafe impl<T: Driver> Sync for Disk<T> {}

struct Vtable<T: Driver>(PhantomData<T>);

impl<T: Driver> Vtable<T> {
    /// The operations table of every gendisk of a `T`: a `static` of the module (a promoted
    /// constant), so that the block layer may read it (`fops->owner` at open and close,
    /// `fops->free_disk` when the last reference to the gendisk goes) whenever it likes while
    /// the module is loaded. Its only callback is `ioctl` (a bio-based disk's table,
    /// [`Self::BIO_OPS`], adds `submit_bio`), which the block layer calls on an
    /// open file of the disk (so with a reference on the module, its owner) and which reaches
    /// the driver through the disk's gate only: a gendisk that outlives its [`Disk`] finds the
    /// gate closed and runs no driver code. It names the module as owner, so the module cannot
    /// be unloaded while the disk is open.
    const BDEV_OPS: bindings::block_device_operations = bindings::block_device_operations {
        owner: &raw mut bindings::__this_module,
        ioctl: Some(Self::ioctl),
        // SAFETY: All-zero is "no callbacks" for every other one.
        ..unsafe { core::mem::zeroed() }
    };

    /// The operations table of a bio-based disk: [`Self::BDEV_OPS`] and `submit_bio`, which
    /// the block layer calls only between `bio_queue_enter()` and `blk_queue_exit()`, so never
    /// once `del_gendisk()` has returned (it freezes the queue, waiting for the calls inside,
    /// and marks it dying, so that later bios fail before the call).
    const BIO_OPS: bindings::block_device_operations = bindings::block_device_operations {
        owner: &raw mut bindings::__this_module,
        submit_bio: Some(Self::submit_bio),
        ioctl: Some(Self::ioctl),
        // SAFETY: All-zero is "no callbacks" for every other one.
        ..unsafe { core::mem::zeroed() }
    };

    /// `block_device_operations.submit_bio` of a bio-based disk: lends the bio to the driver
    /// (in an RCU read-side section, as blk-mq's `queue_rq`), then ends it, once, with the
    /// driver's status. A busy driver is asked again after a millisecond (the submitter may
    /// sleep: blk-mq's own submission waits for a tag), unless the bio must not wait
    /// (`REQ_NOWAIT`), which then fails with `BLK_STS_AGAIN`.
    ///
    /// # Safety
    ///
    /// Called by the block layer with a bio for a bio-based disk made by [`Disk::new`] for `T`,
    /// with the disk's queue entered.
    unsafe extern "C" fn submit_bio(bio: *mut bindings::bio) {
        // SAFETY: `bio` is valid for the call, and so are its block device, gendisk and queue.
        let q = unsafe { (*(*(*bio).bi_bdev).bd_disk).queue };
        // SAFETY: The queue's `queuedata` is the `Shared<T>` of the disk, which the teardown
        // frees only after `del_gendisk()`, which waits for this call to leave the queue.
        let shared = unsafe { &*(*q).queuedata.cast::<Shared<T>>() };
        let bio = if shared.split {
            // SAFETY: `bio` is a bio submitted to this disk, not ended. Gives it, or the first
            // piece of it that fits the limits (the rest resubmitted), or null if it was ended
            // (invalid for the limits).
            unsafe { bindings::bio_split_to_limits(bio) }
        } else {
            bio
        };
        if bio.is_null() {
            return;
        }
        // I/O statistics while the queue keeps them (`blk_queue_io_stat()`, `queue/iostats`).
        // SAFETY: `bio` (the one given, or the piece split off it, of the same disk) is a valid
        // bio of this disk, not ended; the queue is live.
        let acct = unsafe {
            if (*q).limits.features & shim::IOVX_BLK_FEAT_IO_STAT != 0 {
                Some(shim::iovx_bio_acct_start(bio))
            } else {
                None
            }
        };
        let status = {
            // SAFETY: `bio` was handed to this disk, alone (`submit_bio_noacct()` takes each
            // bio off its list before the call), and is ended only below, after this borrow.
            let req = unsafe { Request::of_bio(bio) };
            loop {
                // In an RCU read-side section, as blk-mq calls `queue_rq`: the driver may not
                // sleep, and the debug kernel reports a call that does (`might_sleep()`), such
                // as a bio submitted and waited for, which from here would only be queued on
                // this task's `bio_list` until this call returns.
                // SAFETY: No precondition; left right after the call.
                unsafe { shim::iovx_rcu_read_lock() };
                let r = shared.driver.transfer(&req);
                // SAFETY: Entered just above.
                unsafe { shim::iovx_rcu_read_unlock() };
                match r {
                    Ok(()) => break bindings::BLK_STS_OK as u8,
                    Err(Failure::Error(e)) => {
                        // SAFETY: Pure conversion.
                        break unsafe { shim::iovx_errno_to_blk_status(e.to_errno()) };
                    }
                    Err(Failure::Busy) if req.is_nowait() => {
                        // SAFETY: Pure conversion.
                        break unsafe {
                            shim::iovx_errno_to_blk_status(-(bindings::EAGAIN as i32))
                        };
                    }
                    // SAFETY: The submitter's context, which may sleep for a bio that may wait.
                    Err(Failure::Busy) => unsafe { bindings::msleep(1) },
                }
            }
        };
        // SAFETY: The bio is ours until it is ended, once, here; nothing refers to it after.
        // Its statistics, if started above, end first.
        unsafe {
            if let Some(start) = acct {
                shim::iovx_bio_acct_end(bio, start);
            }
            // Only an error is written: a bio chained to this one (a piece split off it, the
            // previous bio of a discard) may have failed already and written its error here.
            if status != bindings::BLK_STS_OK as u8 {
                (*bio).bi_status = status;
            }
            bindings::bio_endio(bio);
        }
    }

    /// `block_device_operations.ioctl`: hands the call to the driver if the disk's gate is open.
    ///
    /// # Safety
    ///
    /// Called by the block layer with a valid `bdev` of a gendisk made by [`Disk::new`] for `T`,
    /// opened (so the module, its owner, is held).
    unsafe extern "C" fn ioctl(
        bdev: *mut bindings::block_device,
        mode: bindings::blk_mode_t,
        cmd: ffi::c_uint,
        arg: ffi::c_ulong,
    ) -> ffi::c_int {
        // SAFETY: `bdev` is valid for the call; its gendisk stays allocated while it is open.
        let disk = unsafe { (*bdev).bd_disk };
        // SAFETY: `disk` is valid; its `private_data` is a gate or NULL.
        let gate = unsafe { shim::iovx_gate_enter(disk) };
        if gate.is_null() {
            return -(bindings::ENXIO as ffi::c_int);
        }
        // SAFETY: The gate is entered: its data is the `Shared<T>` of a `Disk` whose teardown
        // runs only once this call has left the gate (by this call itself if it is the last).
        let shared = unsafe { &*shim::iovx_gate_data(gate).cast::<Shared<T>>() };
        // SAFETY: As above: the disk stays live until the gate is left.
        let queue = unsafe { Queue::from_raw(disk) };
        // SAFETY: Pure test of a flag.
        let writable = unsafe { shim::iovx_blk_open_write(mode) };
        let r = shared.driver.ioctl(queue, writable, cmd, arg);
        // SAFETY: Entered above, left once; `shared` is not used after. If the driver dropped
        // its `Disk` meanwhile, this runs its teardown (process context).
        unsafe { shim::iovx_gate_exit(gate) };
        match r {
            Ok(v) => v.try_into().unwrap_or(ffi::c_int::MAX),
            Err(e) => e.to_errno(),
        }
    }

    /// The teardown the gate runs when the last ioctl leaves it after the [`Disk`] was
    /// dropped.
    ///
    /// # Safety
    ///
    /// Called by the gate once, with the `Inner<T>` it was armed with, after the gate was
    /// closed and left by every ioctl; process context.
    unsafe extern "C" fn teardown(ctx: *mut ffi::c_void) {
        // SAFETY: By the safety requirements.
        unsafe { Inner::<T>::teardown(ctx.cast()) };
    }

    const OPS: bindings::blk_mq_ops = bindings::blk_mq_ops {
        queue_rq: Some(Self::queue_rq),
        init_request: Some(Self::init_request),
        // SAFETY: All-zero is "not implemented" for every other callback.
        ..unsafe { core::mem::zeroed() }
    };

    /// Serves the request now (starting it only once the driver took it), or starts it and arms
    /// its delayed completion.
    ///
    /// # Safety
    ///
    /// Called by blk-mq with a valid `bd` for a request of a queue made by [`Disk::new`].
    unsafe extern "C" fn queue_rq(
        _hctx: *mut bindings::blk_mq_hw_ctx,
        bd: *const bindings::blk_mq_queue_data,
    ) -> bindings::blk_status_t {
        // SAFETY: `bd` is valid for the call.
        let rq = unsafe { (*bd).rq };
        // SAFETY: `queuedata` is the `Shared<T>` of the disk, which outlives its requests.
        let shared = unsafe { &*(*(*rq).q).queuedata.cast::<Shared<T>>() };
        if let Some(delay) = &shared.delay {
            // SAFETY: `rq` is a valid request that blk-mq hands to the driver.
            unsafe { bindings::blk_mq_start_request(rq) };
            // SAFETY: The PDU of every request of this tag set is a `Pdu` whose work was
            // initialised by `init_request`; the request is ours until it is ended; the
            // workqueue is live while the disk's requests are (`Delay` invariant).
            unsafe {
                let pdu = shim::iovx_rq_pdu(rq).cast::<Pdu>();
                shim::iovx_queue_delayed_work(delay.wq.as_ptr(), (*pdu).work.get(), delay.us);
            }
            return bindings::BLK_STS_OK as _;
        }
        // SAFETY: `rq` was handed to the driver and is not ended.
        match unsafe { Self::transfer(shared, rq) } {
            // Not started: blk-mq keeps the request and dispatches it again later.
            // SAFETY: No precondition.
            None => unsafe { shim::iovx_blk_sts_resource() },
            Some(status) => {
                // SAFETY: `rq` is ours; it is started once, then ended once.
                unsafe {
                    bindings::blk_mq_start_request(rq);
                    bindings::blk_mq_end_request(rq, status);
                }
                bindings::BLK_STS_OK as _
            }
        }
    }

    /// Lends the request to the driver and gives the status to end it with, or `None` if the
    /// driver is busy.
    ///
    /// # Safety
    ///
    /// `rq` is a request of `shared`'s disk handed to the driver by `queue_rq`, not yet ended.
    #[inline]
    unsafe fn transfer(shared: &Shared<T>, rq: *mut bindings::request) -> Option<u8> {
        // SAFETY: `rq` is the driver's and ends only after `transfer` returns.
        let req = unsafe { Request::of_rq(rq) };
        match shared.driver.transfer(&req) {
            Ok(()) => Some(bindings::BLK_STS_OK as u8),
            Err(Failure::Busy) => None,
            // SAFETY: Pure conversion.
            Err(Failure::Error(e)) => Some(unsafe { shim::iovx_errno_to_blk_status(e.to_errno()) }),
        }
    }

    /// The delayed completion: transfer and end, from a worker of the disk's workqueue; if the
    /// driver is busy, the same again after the delay.
    ///
    /// # Safety
    ///
    /// Called by the workqueue with the `work_struct` of a `Pdu` queued by `queue_rq`.
    unsafe extern "C" fn delayed(work: *mut bindings::work_struct) {
        // SAFETY: `work` is the `work` of a `delayed_work` that is the first field of a `Pdu`
        // (`repr(C)`), which is the PDU of a request.
        let dw = unsafe { shim::iovx_to_delayed_work(work) };
        // SAFETY: As above.
        let rq = unsafe { shim::iovx_rq_from_pdu(dw.cast()) };
        // SAFETY: As in `queue_rq`.
        let shared = unsafe { &*(*(*rq).q).queuedata.cast::<Shared<T>>() };
        // SAFETY: The request was started by `queue_rq` and is ended only here.
        match unsafe { Self::transfer(shared, rq) } {
            // SAFETY: The request is ended exactly once, here.
            Some(status) => unsafe { bindings::blk_mq_end_request(rq, status) },
            None => {
                if let Some(delay) = &shared.delay {
                    // SAFETY: The work is not pending (it is running), the request is still
                    // ours, and the workqueue is live while the request is (`Delay` invariant).
                    unsafe { shim::iovx_queue_delayed_work(delay.wq.as_ptr(), dw, delay.us) };
                }
            }
        }
    }

    /// Initialises the PDU of each request when the tag set (or a scheduler's) is made.
    ///
    /// # Safety
    ///
    /// Called by blk-mq with a request of a tag set whose `cmd_size` is that of `Pdu`.
    unsafe extern "C" fn init_request(
        _set: *mut bindings::blk_mq_tag_set,
        rq: *mut bindings::request,
        _hctx_idx: ffi::c_uint,
        _numa_node: ffi::c_uint,
    ) -> ffi::c_int {
        // SAFETY: The PDU is `cmd_size` bytes, the size of a `Pdu`.
        unsafe {
            let pdu = shim::iovx_rq_pdu(rq).cast::<Pdu>();
            shim::iovx_delayed_work_init((*pdu).work.get(), Some(Self::delayed));
            // Initialised once for all: a passthrough request's is rewritten when it is made.
            (*pdu).cmd.get().write(Command::default());
        }
        0
    }
}

impl<T: Driver> Disk<T> {
    /// Makes and registers disk `name` (e.g. `iovx0`) served by `driver`. The module cannot be
    /// unloaded while the disk is open.
    ///
    /// Process context: may sleep.
    pub fn new(name: &CStr, config: Config, driver: T) -> Result<Self> {
        Self::with_limits(name, config, Limits::default(), driver)
    }

    /// As [`Disk::new`], with queue limits lowered to `limits`. `EINVAL` for limits the block
    /// layer would refuse ([`Limits`]).
    ///
    /// Process context: may sleep.
    pub fn with_limits(name: &CStr, config: Config, limits: Limits, driver: T) -> Result<Self> {
        might_sleep();
        let lbs = config.logical_block_size;
        if lbs != 512 && lbs != 4096 {
            return Err(EINVAL);
        }
        limits.check(lbs)?;
        if config.bio_based {
            // No requests to delay.
            if config.delay_us != 0 {
                return Err(EINVAL);
            }
        } else if config.hw_queues == 0 || config.queue_depth == 0 {
            return Err(EINVAL);
        }
        let bytes = name.as_bytes_with_nul();
        if bytes.len() > bindings::DISK_NAME_LEN as usize {
            return Err(EINVAL);
        }
        let delay = if config.delay_us > 0 {
            // SAFETY: `name` is a NUL-terminated string; process context.
            let wq = unsafe { shim::iovx_alloc_workqueue(name.as_char_ptr()) };
            // INVARIANT: A workqueue made for this disk; destroyed on failure below or by `drop`.
            Some(Delay {
                wq: NonNull::new(wq).ok_or(ENOMEM)?,
                us: config.delay_us,
            })
        } else {
            None
        };
        let wq = delay.as_ref().map(|d| d.wq);
        let destroy_wq = ScopeGuard::new(move || {
            if let Some(wq) = wq {
                // SAFETY: The workqueue was made above and no disk uses it.
                unsafe { bindings::destroy_workqueue(wq.as_ptr()) };
            }
        });
        let shared = KBox::pin(
            Shared {
                driver,
                delay,
                split: config.bio_based && limits != Limits::default(),
            },
            GFP_KERNEL,
        )?;
        let tag_set = if config.bio_based {
            None
        } else {
            let tag_set = KBox::pin(Opaque::<bindings::blk_mq_tag_set>::uninit(), GFP_KERNEL)?;
            let set = tag_set.get();
            // SAFETY: `set` is valid for writes; all-zero is the starting state of a tag set.
            unsafe {
                core::ptr::write_bytes(set, 0, 1);
                (*set).ops = &Vtable::<T>::OPS;
                (*set).nr_hw_queues = config.hw_queues;
                (*set).queue_depth = config.queue_depth;
                (*set).numa_node = bindings::NUMA_NO_NODE;
                (*set).cmd_size = core::mem::size_of::<Pdu>() as _;
                (*set).flags = bindings::BLK_MQ_F_SHOULD_MERGE;
            }
            // SAFETY: `set` is initialised as blk-mq expects.
            kernel::error::to_result(unsafe { bindings::blk_mq_alloc_tag_set(set) })?;
            Some(tag_set)
        };
        let set = tag_set.as_ref().map(|t| t.get());
        let free_set = ScopeGuard::new(move || {
            if let Some(set) = set {
                // SAFETY: The tag set was allocated above and has no queue.
                unsafe { bindings::blk_mq_free_tag_set(set) }
            }
        });

        // SAFETY: All-zero queue limits mean "defaults" to the block layer.
        let mut lim: bindings::queue_limits = unsafe { core::mem::zeroed() };
        lim.logical_block_size = lbs;
        lim.physical_block_size = lbs;
        lim.io_min = lbs;
        lim.max_hw_discard_sectors = u32::MAX >> 9;
        lim.max_write_zeroes_sectors = u32::MAX >> 9;
        lim.discard_granularity = PAGE_SIZE as u32;
        lim.max_hw_sectors = MAX_SECTORS;
        // Memory has no scatter-gather limit: as many segments as a request of the largest size
        // can have (one per sector), so that the block layer never splits a bio for its count.
        lim.max_segments = MAX_SECTORS as u16;
        // Lowered limits, if asked for (checked above): the block layer splits bios to them.
        if limits.max_sectors != 0 {
            lim.max_hw_sectors = limits.max_sectors;
        }
        if limits.max_segments != 0 {
            // At most `MAX_SECTORS` (checked above): fits.
            lim.max_segments = limits.max_segments as u16;
        }
        lim.max_segment_size = limits.max_segment_size;
        // Memory for O_DIRECT needs to be aligned to 512 bytes, as on most disks.
        lim.dma_alignment = 511;
        // A write cache and FUA that the driver sees as flushes (blk-mq), or none (bio-based: the
        // block layer completes flushes and drops FUA, as for brd), `REQ_NOWAIT` bios and I/O
        // statistics (which blk-mq disks have anyway).
        let bio_based = config.bio_based;
        // SAFETY: `lim` is a valid queue_limits.
        unsafe { shim::iovx_queue_limits_features(&mut lim, bio_based) };

        let queuedata = (&*shared as *const Shared<T>).cast_mut().cast();
        let disk = match set {
            // SAFETY: `set` is an allocated tag set; `lim` is valid for the call; `queuedata`
            // lives as long as the disk (it is kept in the returned `Disk`).
            Some(set) => unsafe { shim::iovx_blk_mq_alloc_disk(set, &mut lim, queuedata) },
            // SAFETY: `lim` is valid for the call; `queuedata` lives as long as the disk (it is
            // kept in the returned `Disk`).
            None => unsafe { shim::iovx_blk_alloc_disk(&mut lim, queuedata) },
        };
        let disk = from_err_ptr(disk)?;
        let put = ScopeGuard::new(move || {
            // SAFETY: The disk was allocated above and not added.
            unsafe { bindings::put_disk(disk) }
        });
        let ops: &'static bindings::block_device_operations = if bio_based {
            &Vtable::<T>::BIO_OPS
        } else {
            &Vtable::<T>::BDEV_OPS
        };
        // SAFETY: `disk` is valid; `disk_name` is a fixed array of `DISK_NAME_LEN` bytes, which
        // the name fits (checked above).
        unsafe {
            for (d, s) in (*disk).disk_name.iter_mut().zip(bytes) {
                *d = *s as _;
            }
            (*disk).fops = ops;
            bindings::set_capacity(disk, config.capacity_sectors);
        }
        // The ioctl gate, open from the start; closed first on failure (before the disk is put).
        let shared_ptr = (&*shared as *const Shared<T>).cast_mut().cast();
        // SAFETY: Process context; `shared` outlives the gate (closed before it is dropped).
        let gate = unsafe { shim::iovx_gate_new(shared_ptr, Some(Vtable::<T>::teardown)) };
        let gate = NonNull::new(gate).ok_or(ENOMEM)?;
        // SAFETY: `disk` is valid and not added; the gate is ours.
        unsafe { shim::iovx_gate_open(disk, gate.as_ptr()) };
        let close = ScopeGuard::new(move || {
            // SAFETY: The gate was opened on `disk` above and is closed once. The disk was not
            // added, so no ioctl is inside and the gate is freed here (the result is true).
            let _ = unsafe { shim::iovx_gate_close(disk, gate.as_ptr()) };
        });
        // The box first, so that its failure leaves the tag set and the driver where the guards
        // above expect them (dropped after the guards, not before).
        let inner = KBox::<Inner<T>>::new_uninit(GFP_KERNEL)?;
        let inner = KBox::write(
            inner,
            Inner {
                // SAFETY: `from_err_ptr` returned a non-error pointer, which is not null.
                disk: unsafe { NonNull::new_unchecked(disk) },
                tag_set,
                shared,
                lbs,
                gate,
            },
        );
        let inner = KBox::into_raw(inner);
        // SAFETY: The gate is ours; `inner` is what its teardown takes once the disk is added.
        unsafe { shim::iovx_gate_arm(gate.as_ptr(), inner.cast()) };
        // SAFETY: `disk` is fully set up.
        let added = kernel::error::to_result(unsafe {
            bindings::device_add_disk(core::ptr::null_mut(), disk, core::ptr::null_mut())
        });
        if let Err(e) = added {
            // In order: the gate (freed, no teardown: the disk was never added), the disk, the
            // tag set, the workqueue, then what the box owns.
            drop(close);
            drop(put);
            drop(free_set);
            drop(destroy_wq);
            // SAFETY: Made by `KBox::into_raw` above; nothing else refers to it any more.
            drop(unsafe { KBox::from_raw(inner) });
            return Err(e);
        }
        close.dismiss();
        put.dismiss();
        free_set.dismiss();
        destroy_wq.dismiss();
        // INVARIANT: The disk was added with this tag set, queuedata and operations table; its
        // gate tears `inner` down.
        Ok(Self {
            // SAFETY: `KBox::into_raw` gives a non-null pointer.
            inner: unsafe { NonNull::new_unchecked(inner) },
        })
    }

    fn inner(&self) -> &Inner<T> {
        // SAFETY: `inner` is ours and live until `drop` (type invariant).
        unsafe { self.inner.as_ref() }
    }

    /// The logical block size.
    pub fn logical_block_size(&self) -> u32 {
        self.inner().lbs
    }

    /// The driver serving the disk.
    pub fn driver(&self) -> &T {
        &self.inner().shared.driver
    }

    /// The gendisk, for the bio layer.
    pub(crate) fn as_raw(&self) -> *mut bindings::gendisk {
        self.inner().disk.as_ptr()
    }
}

/// A reference to the gendisk of a [`Disk`] that does not keep the [`Disk`] (for KUnit): its
/// ioctl can be called after the [`Disk`] is gone, and then finds the gate closed.
///
/// # Invariants
///
/// `disk` is a gendisk made by [`Disk::new`] on which this value holds a reference.
#[cfg(iovx_kunit)]
pub struct GendiskRef {
    disk: NonNull<bindings::gendisk>,
}

#[cfg(iovx_kunit)]
impl<T: Driver> Disk<T> {
    /// A reference to the gendisk.
    pub fn gendisk_ref(&self) -> GendiskRef {
        // SAFETY: The gendisk is live; the reference taken is dropped by `GendiskRef::drop`.
        let disk = unsafe { shim::iovx_kunit_disk_get(self.as_raw()) };
        // INVARIANT: Referenced just above.
        GendiskRef {
            // SAFETY: The gendisk of a `Disk` is not null.
            disk: unsafe { NonNull::new_unchecked(disk) },
        }
    }
}

#[cfg(iovx_kunit)]
impl GendiskRef {
    /// Calls the disk's `block_device_operations.ioctl` on its whole-disk device, as the block
    /// layer would for a file opened for reading, and gives what it returns.
    ///
    /// Process context: may sleep (the driver's ioctl, and the disk's teardown if the driver
    /// drops its own [`Disk`]).
    pub fn ioctl(&self, cmd: u32, arg: usize) -> i32 {
        might_sleep();
        // SAFETY: The gendisk and its `part0` are live while referenced; its operations table
        // is the module's `BDEV_OPS`, whose ioctl takes any command and argument.
        unsafe { shim::iovx_kunit_disk_ioctl(self.disk.as_ptr(), cmd, arg as _) }
    }
}

#[cfg(iovx_kunit)]
impl Drop for GendiskRef {
    fn drop(&mut self) {
        // SAFETY: The reference taken by `gendisk_ref`, dropped once.
        unsafe { shim::iovx_kunit_disk_put(self.disk.as_ptr()) };
    }
}

impl<T: Driver> Inner<T> {
    /// Deletes the disk, waiting for its I/O to end, and frees everything. Process context:
    /// sleeps.
    ///
    /// # Safety
    ///
    /// `this` was made by `KBox::into_raw` in [`Disk::new`]; its gate is closed and was left by
    /// every ioctl; it is torn down once.
    unsafe fn teardown(this: *mut Self) {
        might_sleep();
        // SAFETY: By the safety requirements, the box is ours now.
        let this = unsafe { KBox::from_raw(this) };
        // SAFETY: The disk is live (type invariant). `del_gendisk()` returns once every request
        // has ended and no `queue_rq` or `submit_bio` runs (and no bio reaches `submit_bio`
        // after it); a delayed worker may still be returning from
        // `delayed` after ending the last request, which destroying the workqueue waits for
        // (no work is pending: a request's work is queued only while the request is not ended).
        // Then the last reference of the driver to the gendisk goes, then the tag set.
        unsafe {
            bindings::del_gendisk(this.disk.as_ptr());
            // Reads of the disk's bios may wait for the re-dirtying worker of bio.rs.
            super::bio::flush_redirty();
            if let Some(delay) = &this.shared.delay {
                bindings::destroy_workqueue(delay.wq.as_ptr());
            }
            bindings::put_disk(this.disk.as_ptr());
            if let Some(set) = &this.tag_set {
                bindings::blk_mq_free_tag_set(set.get());
            }
        }
        // The driver goes last, with the box.
    }
}

impl<T: Driver> Drop for Disk<T> {
    /// Closes the ioctl gate (waiting for passthrough requests in flight without a caller) and
    /// deletes the disk, waiting for its I/O to end. If an ioctl of the disk is running (the
    /// driver may drop its own disk from `Driver::ioctl`), the deletion is left to the last
    /// ioctl to return, which runs it before it returns to the block layer. Process context:
    /// sleeps.
    fn drop(&mut self) {
        might_sleep();
        let inner = self.inner.as_ptr();
        // SAFETY: The gate was opened by `new` and is closed once, here: no ioctl enters and no
        // request takes a hold any more; none is held when this returns.
        let now = unsafe { shim::iovx_gate_close((*inner).disk.as_ptr(), (*inner).gate.as_ptr()) };
        if now {
            // SAFETY: No ioctl is inside the closed gate; the box is torn down once, here.
            unsafe { Inner::teardown(inner) };
        }
        // Otherwise the gate runs `Vtable::teardown` when the last ioctl leaves it.
    }
}
