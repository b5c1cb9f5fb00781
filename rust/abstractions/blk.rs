// SPDX-License-Identifier: GPL-2.0

//! A blk-mq disk whose requests a [`Driver`] serves by copying data, and the segment view of
//! a request.
//!
//! C headers: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h),
//! [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)
//!
//! Linux 6.12's `kernel::block::mq` offers no data access, no error completion and no way to
//! submit bios to the disk it makes, so this module builds the tag set and the gendisk over the
//! raw API (in the shape of the in-tree abstraction) and adds what a RAM disk needs: the request's
//! operation, position and single-page segments, copies between segments and the driver's pages,
//! discard and write-zeroes limits, and a delayed completion mode in which the transfer itself
//! happens when the request completes, as with a DMA engine.

use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::{
    bindings, error::from_err_ptr, page::Page, page::PAGE_SIZE, prelude::*, types::Opaque,
    types::ScopeGuard,
};

use super::shim;

/// The operation of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read sectors.
    Read,
    /// Write sectors.
    Write,
    /// Flush the volatile write cache.
    Flush,
    /// Discard sectors (their contents become undefined; here: zero).
    Discard,
    /// Write zeroes to sectors.
    WriteZeroes,
    /// Anything else; failed with `EOPNOTSUPP`.
    Other,
}

/// What a disk driver does with the requests of its disk.
pub trait Driver: Send + Sync + Sized + 'static {
    /// Carries out `rq` (all of it) and says how it went. Called in process context with
    /// preemption possibly disabled: it must not sleep.
    fn transfer(&self, rq: &Request<'_>) -> Result;
}

/// A request being served, lent to [`Driver::transfer`].
///
/// # Invariants
///
/// `raw` is a started request owned by the driver for `'a`, not yet ended.
pub struct Request<'a> {
    raw: *mut bindings::request,
    _p: PhantomData<&'a ()>,
}

impl Request<'_> {
    /// The operation.
    pub fn op(&self) -> Op {
        // SAFETY: `raw` is a valid request (type invariant). `req_op()`: the low bits of the
        // flags.
        let op = unsafe { (*self.raw).cmd_flags } & ((1 << bindings::REQ_OP_BITS) - 1);
        match op {
            bindings::req_op_REQ_OP_READ => Op::Read,
            bindings::req_op_REQ_OP_WRITE => Op::Write,
            bindings::req_op_REQ_OP_FLUSH => Op::Flush,
            bindings::req_op_REQ_OP_DISCARD => Op::Discard,
            bindings::req_op_REQ_OP_WRITE_ZEROES => Op::WriteZeroes,
            _ => Op::Other,
        }
    }

    /// Whether the request asks for forced unit access.
    pub fn is_fua(&self) -> bool {
        // SAFETY: `raw` is a valid request (type invariant).
        unsafe { (*self.raw).cmd_flags & (1 << bindings::req_flag_bits___REQ_FUA) != 0 }
    }

    /// The first sector (of 512 bytes).
    pub fn sector(&self) -> u64 {
        // SAFETY: `raw` is a valid request (type invariant). `blk_rq_pos()`.
        unsafe { (*self.raw).__sector }
    }

    /// Bytes the request covers.
    pub fn len(&self) -> usize {
        // SAFETY: `raw` is a valid request (type invariant). `blk_rq_bytes()`.
        unsafe { (*self.raw).__data_len as usize }
    }

    /// Whether the request covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` for each single-page data segment, in order (`rq_for_each_segment()`), and
    /// stops at the first error.
    pub fn for_each_segment(&self, mut f: impl FnMut(&mut Segment<'_>) -> Result) -> Result {
        // SAFETY: `raw` is a valid request (type invariant), and so is its first bio if any.
        // As `rq_for_each_segment()`: from the first bio's position.
        let mut it = unsafe {
            let bio = (*self.raw).bio;
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
            let mut bv = core::mem::MaybeUninit::<bindings::bio_vec>::uninit();
            // SAFETY: `it` was initialised above and walks this request's bios, which the
            // request keeps; `bv` is written when `true` is returned.
            if !unsafe { shim::iovx_rq_iter_next(&mut it, bv.as_mut_ptr()) } {
                return Ok(());
            }
            // SAFETY: `bv` was written by the call above.
            let bv = unsafe { bv.assume_init() };
            // INVARIANT: The segment lies within one page of the request's data, which stays
            // valid until the request ends, after `f` returns.
            let mut seg = Segment {
                bv,
                _p: PhantomData,
            };
            f(&mut seg)?;
        }
    }
}

/// One single-page piece of a request's data.
///
/// # Invariants
///
/// `bv` describes `bv_len` bytes at `bv_offset` within page `bv_page`, all within that page,
/// which is valid memory for `'a`. The memory belongs to whoever issued the I/O (a pinned user
/// page, a page-cache page, kernel memory); it is only ever accessed with raw copies, never
/// through Rust references, as a DMA engine would access it.
pub struct Segment<'a> {
    bv: bindings::bio_vec,
    _p: PhantomData<&'a ()>,
}

fn check_range(offset: usize, len: usize) -> Result {
    match offset.checked_add(len) {
        Some(end) if end <= PAGE_SIZE => Ok(()),
        _ => Err(EINVAL),
    }
}

impl Segment<'_> {
    /// Bytes in the segment.
    pub fn len(&self) -> usize {
        self.bv.bv_len as usize
    }

    /// Whether the segment is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Maps the segment's page and gives `f` the address of byte `at` of the segment, after
    /// checking that `at..at + len` lies within the segment.
    fn with_mapped<R>(
        &self,
        at: usize,
        len: usize,
        f: impl FnOnce(*mut u8) -> Result<R>,
    ) -> Result<R> {
        let off = self.page_offset(at, len)?;
        // SAFETY: `bv_page` is valid (type invariant); the mapping is undone below.
        let va = unsafe { shim::iovx_kmap_local_page(self.bv.bv_page) };
        // SAFETY: `off` (`bv_offset + at`) is within the mapped page (type invariant and the
        // check).
        let r = f(unsafe { va.cast::<u8>().add(off) });
        // SAFETY: `va` was mapped just above in this context.
        unsafe { shim::iovx_kunmap_local(va) };
        r
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

    /// Copies `len` bytes of the segment from byte `at` into `page` at `offset` (the data of a
    /// write). `EINVAL` if a range is out of bounds.
    #[inline]
    pub fn copy_to_page(&self, at: usize, page: &mut Page, offset: usize, len: usize) -> Result {
        check_range(offset, len)?;
        let from = self.page_offset(at, len)?;
        // SAFETY: Both ranges were checked to lie within their pages; `page` is borrowed
        // mutably, so nothing else accesses it; the segment's page is valid (type invariant) and
        // a different page from `page`, which belongs to the driver.
        unsafe { shim::iovx_copy_page(page.as_ptr(), offset, self.bv.bv_page, from, len) };
        Ok(())
    }

    /// Copies `len` bytes of `page` at `offset` into the segment at byte `at` (the data of a
    /// read). `EINVAL` if a range is out of bounds.
    #[inline]
    pub fn copy_from_page(&mut self, at: usize, page: &Page, offset: usize, len: usize) -> Result {
        check_range(offset, len)?;
        let to = self.page_offset(at, len)?;
        // SAFETY: Both ranges were checked to lie within their pages; the segment's page is
        // valid (type invariant) and only ever accessed with raw copies; `page` is only read here
        // while writers hold it mutably elsewhere.
        unsafe { shim::iovx_copy_page(self.bv.bv_page, to, page.as_ptr(), offset, len) };
        Ok(())
    }

    /// Copies `len` bytes of the segment from byte `at` into `out` (`len` is `out.len()`).
    /// `EINVAL` if the range is out of bounds.
    pub fn copy_to_slice(&self, at: usize, out: &mut [u8]) -> Result {
        let len = out.len();
        self.with_mapped(at, len, |src| {
            // SAFETY: `src` is valid for `len` bytes (`with_mapped`'s check); `out` is distinct
            // Rust memory.
            unsafe { core::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), len) };
            Ok(())
        })
    }

    /// Copies `data` into the segment at byte `at`. `EINVAL` if the range is out of bounds.
    pub fn copy_from_slice(&mut self, at: usize, data: &[u8]) -> Result {
        let len = data.len();
        self.with_mapped(at, len, |dst| {
            // SAFETY: `dst` is valid for writes of `len` bytes (`with_mapped`'s check) and is
            // not Rust memory.
            unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), dst, len) };
            Ok(())
        })
    }

    /// Fills `len` bytes of the segment from byte `at` with zeroes (a read of never-written
    /// sectors). `EINVAL` if the range is out of bounds.
    pub fn zero(&mut self, at: usize, len: usize) -> Result {
        let off = self.page_offset(at, len)?;
        // SAFETY: The range lies within the segment's page (checked), which is valid (type
        // invariant).
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
    // SAFETY: The range is within the page, which is borrowed mutably.
    unsafe { page.fill_zero_raw(offset, len) }
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
    /// microseconds after it was queued, from a worker, instead of at once.
    pub delay_us: u64,
}

/// Per-request driver data (`blk_mq_rq_to_pdu()`).
#[repr(C)]
struct Pdu {
    work: Opaque<bindings::delayed_work>,
}

/// What the queue's `queuedata` points to.
struct Shared<T: Driver> {
    driver: T,
    delay_us: u64,
}

/// A registered disk served by a `T`.
///
/// # Invariants
///
/// `disk` is a live gendisk added with `device_add_disk()`, whose queue uses `tag_set` and whose
/// `queuedata` is `shared`, both live until `drop` has deleted the disk. Its operations table is
/// a `KBox` owned by the gendisk itself: made in `new`, freed by its `free_disk` callback when the
/// last reference to the gendisk goes (an open block device may hold one past `drop`); the table
/// names the module as owner, so the module stays while the disk is open. `lbs` is the logical
/// block size.
pub struct Disk<T: Driver> {
    disk: NonNull<bindings::gendisk>,
    tag_set: Pin<KBox<Opaque<bindings::blk_mq_tag_set>>>,
    shared: Pin<KBox<Shared<T>>>,
    lbs: u32,
}

// SAFETY: The gendisk, tag set and operations table may be used and torn down from any thread;
// the driver is `Send + Sync`.
unsafe impl<T: Driver> Send for Disk<T> {}
// SAFETY: Shared access only reads the pointers and calls thread-safe block layer functions.
unsafe impl<T: Driver> Sync for Disk<T> {}

struct Vtable<T: Driver>(PhantomData<T>);

impl<T: Driver> Vtable<T> {
    const OPS: bindings::blk_mq_ops = bindings::blk_mq_ops {
        queue_rq: Some(Self::queue_rq),
        init_request: Some(Self::init_request),
        // SAFETY: All-zero is "not implemented" for every other callback.
        ..unsafe { core::mem::zeroed() }
    };

    /// Serves the request now, or arms its delayed completion.
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
        // SAFETY: `rq` is a valid request that blk-mq hands to the driver.
        unsafe { bindings::blk_mq_start_request(rq) };
        // SAFETY: `queuedata` is the `Shared<T>` of the disk, which outlives its requests.
        let shared = unsafe { &*(*(*rq).q).queuedata.cast::<Shared<T>>() };
        if shared.delay_us > 0 {
            // SAFETY: The PDU of every request of this tag set is a `Pdu` whose work was
            // initialised by `init_request`; the request is ours until it is ended.
            unsafe {
                let pdu = shim::iovx_rq_pdu(rq).cast::<Pdu>();
                shim::iovx_delayed_work_queue((*pdu).work.get(), shared.delay_us);
            }
        } else {
            // SAFETY: `rq` was started above and is not ended yet.
            unsafe { Self::serve(shared, rq) };
        }
        bindings::BLK_STS_OK as _
    }

    /// Transfers the request's data and ends it.
    ///
    /// # Safety
    ///
    /// `rq` is a started, not yet ended request of `shared`'s disk; it is ended here.
    #[inline]
    unsafe fn serve(shared: &Shared<T>, rq: *mut bindings::request) {
        // INVARIANT: `rq` is started and ends only after `transfer` returns.
        let req = Request {
            raw: rq,
            _p: PhantomData,
        };
        let status = match shared.driver.transfer(&req) {
            Ok(()) => bindings::BLK_STS_OK as u8,
            // SAFETY: Pure conversion.
            Err(e) => unsafe { shim::iovx_errno_to_blk_status(e.to_errno()) },
        };
        // SAFETY: The request is ended exactly once, here.
        unsafe { bindings::blk_mq_end_request(rq, status as _) };
    }

    /// The delayed completion: transfer and end, from a worker.
    ///
    /// # Safety
    ///
    /// Called by the workqueue with the `work_struct` of a `Pdu` queued by `queue_rq`.
    unsafe extern "C" fn delayed(work: *mut bindings::work_struct) {
        // SAFETY: `work` is the `work` of a `delayed_work` that is the first field of a `Pdu`
        // (`repr(C)`), which is the PDU of a request.
        let rq = unsafe { shim::iovx_rq_from_pdu(shim::iovx_to_delayed_work(work).cast()) };
        // SAFETY: As in `queue_rq`.
        let shared = unsafe { &*(*(*rq).q).queuedata.cast::<Shared<T>>() };
        // SAFETY: The request was started by `queue_rq` and is ended only here.
        unsafe { Self::serve(shared, rq) };
    }

    /// Initialises the PDU of each request when the tag set is made.
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
        }
        0
    }
}

use kernel::ffi;

impl<T: Driver> Disk<T> {
    /// Makes and registers disk `name` (e.g. `iovx0`) served by `driver`, owned by `module`
    /// (which cannot be unloaded while the disk is open).
    pub fn new(
        name: &CStr,
        config: Config,
        driver: T,
        module: &'static ThisModule,
    ) -> Result<Self> {
        let lbs = config.logical_block_size;
        if lbs != 512 && lbs != 4096 {
            return Err(EINVAL);
        }
        if config.hw_queues == 0 || config.queue_depth == 0 {
            return Err(EINVAL);
        }
        let shared = KBox::pin(
            Shared {
                driver,
                delay_us: config.delay_us,
            },
            GFP_KERNEL,
        )?;
        let fops = KBox::into_raw(KBox::new(
            bindings::block_device_operations {
                owner: module.as_ptr(),
                free_disk: Some(free_disk),
                // SAFETY: All-zero is "no callbacks".
                ..unsafe { core::mem::zeroed() }
            },
            GFP_KERNEL,
        )?);
        let free_fops = ScopeGuard::new(move || {
            // SAFETY: `fops` came from `KBox::into_raw` above and no added disk uses it.
            drop(unsafe { KBox::from_raw(fops) })
        });
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
        let free_set = ScopeGuard::new(move || {
            // SAFETY: The tag set was allocated above and has no queue.
            unsafe { bindings::blk_mq_free_tag_set(set) }
        });

        // SAFETY: All-zero queue limits mean "defaults" to the block layer.
        let mut lim: bindings::queue_limits = unsafe { core::mem::zeroed() };
        lim.logical_block_size = lbs;
        lim.physical_block_size = lbs;
        lim.io_min = lbs;
        lim.max_hw_discard_sectors = u32::MAX >> 9;
        lim.max_write_zeroes_sectors = u32::MAX >> 9;
        lim.discard_granularity = PAGE_SIZE as u32;
        lim.max_hw_sectors = 2048;
        // Memory has no scatter-gather limit: as many segments as a request of the largest size
        // can have (one per sector), so that the block layer never splits a bio for its count.
        lim.max_segments = 2048;
        // Memory for O_DIRECT needs to be aligned to 512 bytes, as on most disks.
        lim.dma_alignment = 511;
        // SAFETY: `lim` is a valid queue_limits.
        unsafe { shim::iovx_queue_limits_features(&mut lim, true, true) };

        let queuedata = (&*shared as *const Shared<T>).cast_mut().cast();
        // SAFETY: `set` is an allocated tag set; `lim` is valid for the call; `queuedata` lives
        // as long as the disk (it is kept in the returned `Disk`).
        let disk = from_err_ptr(unsafe { shim::iovx_blk_mq_alloc_disk(set, &mut lim, queuedata) })?;
        let put = ScopeGuard::new(move || {
            // SAFETY: The disk was allocated above and not added.
            unsafe { bindings::put_disk(disk) }
        });
        let bytes = name.as_bytes_with_nul();
        // SAFETY: `disk` is valid; `disk_name` is a fixed array that the name must fit.
        unsafe {
            let dst = &mut (*disk).disk_name;
            if bytes.len() > dst.len() {
                return Err(EINVAL);
            }
            for (d, s) in dst.iter_mut().zip(bytes) {
                *d = *s as _;
            }
            (*disk).fops = fops;
            bindings::set_capacity(disk, config.capacity_sectors);
        }
        // SAFETY: `disk` is fully set up.
        kernel::error::to_result(unsafe {
            bindings::device_add_disk(core::ptr::null_mut(), disk, core::ptr::null_mut())
        })?;
        // From here on the gendisk owns `fops` (freed by `free_disk`).
        free_fops.dismiss();
        put.dismiss();
        free_set.dismiss();
        // INVARIANT: The disk was added with this tag set and queuedata.
        Ok(Self {
            // SAFETY: `from_err_ptr` returned a non-error pointer, which is not null.
            disk: unsafe { NonNull::new_unchecked(disk) },
            tag_set,
            shared,
            lbs,
        })
    }

    /// The logical block size.
    pub fn logical_block_size(&self) -> u32 {
        self.lbs
    }

    /// The driver serving the disk.
    pub fn driver(&self) -> &T {
        &self.shared.driver
    }

    /// The gendisk, for the bio layer.
    pub(crate) fn as_raw(&self) -> *mut bindings::gendisk {
        self.disk.as_ptr()
    }
}

/// `free_disk` of every disk made here: frees the operations table with the gendisk.
///
/// # Safety
///
/// Called by the block layer once, when the last reference to an added gendisk goes.
unsafe extern "C" fn free_disk(disk: *mut bindings::gendisk) {
    // SAFETY: The table was made by `KBox::into_raw` in `Disk::new` for this disk only, and the
    // block layer does not use it after this call.
    drop(unsafe { KBox::from_raw((*disk).fops.cast_mut()) });
}

impl<T: Driver> Drop for Disk<T> {
    fn drop(&mut self) {
        // SAFETY: The disk is live (type invariant); deleting it waits for its I/O to finish,
        // then the last reference is dropped; only then is the tag set freed.
        unsafe {
            bindings::del_gendisk(self.disk.as_ptr());
            bindings::put_disk(self.disk.as_ptr());
            bindings::blk_mq_free_tag_set(self.tag_set.get());
        }
    }
}
