// SPDX-License-Identifier: GPL-2.0

//! Suite `iovx_passthrough`: passthrough requests with data mapped from UBUF, IOVEC, KVEC and
//! BVEC iterators, against a disk whose driver fills a `DrvIn` command's data with a pattern of
//! the disk position and checks a `DrvOut` command's data against it.
//!
//! The disk's queue has the RAM disk's limits: 1 MiB per request, 2048 segments, 512-byte DMA
//! alignment, no virtual boundary.

#![deny(unsafe_code)]

use super::bio::byte_at;
use crate::abstractions::blk::{
    not_supported, Config, Disk, Driver, Failure, Limits as BlkLimits, Op, Request,
};
use crate::abstractions::counters::COUNTERS;
use crate::abstractions::extract::ExtractFlags;
use crate::abstractions::gup::{pin_user_pages, Pin, UserMm};
use crate::abstractions::iov::{Bvec, Dest, IovIter, Kvec, Source, UserVec};
use crate::abstractions::kunit::{CaseResult, Test};
use crate::abstractions::pages::{Mode, PageSlot};
use crate::abstractions::passthrough::{
    async_in_flight, drain_async, submit_async, AsyncOutcome, Bounce, Command, Limits, MapWith,
    Mapping, PtRequest, Queue, UserData,
};
use crate::{kunit_assert, kunit_assert_eq, kunit_suite};
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
use kernel::sync::{new_condvar, new_mutex, Arc, CondVar, Mutex};
use kernel::{c_str, page::Page, page::PAGE_SIZE, prelude::*, uaccess::UserSlice};

/// Serves passthrough commands: `DrvIn` fills the data with `byte_at()` of the position from the
/// command's sector, `DrvOut` checks it; the result is the number of bytes.
struct PtDriver {
    mismatch: AtomicBool,
}

impl Driver for PtDriver {
    fn transfer(&self, rq: &Request<'_>) -> Result<(), Failure> {
        let mut buf = [0u8; 512];
        match rq.op() {
            Op::DrvIn(pt) => {
                let mut pos = pt.command().sector * 512;
                let data = pt.data();
                data.for_each_segment(|seg| {
                    let mut at = 0;
                    while at < seg.len() {
                        let n = (seg.len() - at).min(buf.len());
                        for (i, b) in buf[..n].iter_mut().enumerate() {
                            *b = byte_at(pos + i as u64);
                        }
                        seg.copy_from_slice(at, &buf[..n])?;
                        at += n;
                        pos += n as u64;
                    }
                    Ok::<(), Error>(())
                })?;
                pt.set_result(data.len() as u32);
                Ok(())
            }
            Op::DrvOut(pt) => {
                let mut pos = pt.command().sector * 512;
                let data = pt.data();
                data.for_each_segment(|seg| {
                    let mut at = 0;
                    while at < seg.len() {
                        let n = (seg.len() - at).min(buf.len());
                        seg.copy_to_slice(at, &mut buf[..n])?;
                        if buf[..n]
                            .iter()
                            .enumerate()
                            .any(|(i, b)| *b != byte_at(pos + i as u64))
                        {
                            self.mismatch.store(true, Relaxed);
                        }
                        at += n;
                        pos += n as u64;
                    }
                    Ok::<(), Error>(())
                })?;
                pt.set_result(data.len() as u32);
                Ok(())
            }
            _ => Err(EIO.into()),
        }
    }
}

fn pt_disk() -> Result<Disk<PtDriver>> {
    pt_disk_delayed(0)
}

/// The disk, completing each request `delay_us` after it was queued (0: at once).
fn pt_disk_delayed(delay_us: u64) -> Result<Disk<PtDriver>> {
    let config = Config {
        capacity_sectors: 64 << 11,
        logical_block_size: 512,
        hw_queues: 1,
        queue_depth: 16,
        delay_us,
        bio_based: false,
    };
    Disk::new(
        c_str!("iovxp0"),
        config,
        PtDriver {
            mismatch: AtomicBool::new(false),
        },
    )
}

fn cmd(sector: u64) -> Command {
    Command {
        opcode: 1,
        flags: 0,
        sector,
        result: 0,
    }
}

/// Writes `len` bytes of the pattern at `sector` into user memory at `addr`.
fn fill_user(addr: usize, len: usize, sector: u64) -> Result {
    let mut data = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    for (i, b) in data.iter_mut().enumerate() {
        *b = byte_at(sector * 512 + i as u64);
    }
    UserSlice::new(addr, len).writer().write_slice(&data)
}

/// Whether user memory at `addr` holds the pattern of `sector`.
fn user_has_pattern(addr: usize, len: usize, sector: u64) -> Result<bool> {
    let mut back = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    UserSlice::new(addr, len).reader().read_slice(&mut back)?;
    Ok(back
        .iter()
        .enumerate()
        .all(|(i, b)| *b == byte_at(sector * 512 + i as u64)))
}

/// Whether user memory at `addr` holds only zeroes.
fn user_is_zero(addr: usize, len: usize) -> Result<bool> {
    let mut back = KVec::from_elem(0xffu8, len, GFP_KERNEL)?;
    UserSlice::new(addr, len).reader().read_slice(&mut back)?;
    Ok(back.iter().all(|b| *b == 0))
}

/// A UBUF read: pinned, at most one segment per page (pages that happen to follow one another
/// in memory share one), the bytes the driver wrote, dirtied and unpinned once.
fn ubuf_read_pinned(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let len = 8 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    let before = COUNTERS.snapshot();
    let mut it = IovIter::<Dest>::ubuf(addr, len)?;
    let mut rq = PtRequest::new(Queue::of(&disk), cmd(40))?;
    kunit_assert_eq!(
        t,
        rq.map(&mut it, Bounce::IfNeeded)?,
        Mapping::Direct(Mode::Pinned)
    );
    kunit_assert_eq!(t, rq.len(), len);
    kunit_assert!(
        t,
        (1..=8).contains(&rq.nr_segments()),
        "{}",
        rq.nr_segments()
    );
    kunit_assert_eq!(t, rq.execute()?, len as u32);
    kunit_assert_eq!(t, rq.unmap()?.result, len as u32);
    kunit_assert!(t, user_has_pattern(addr, len, 40)?);
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned, d.dirtied), (8, 8, 8));
    Ok(())
}

/// An IOVEC write: pinned, unpinned clean, the driver sees the user's bytes.
fn iovec_write_pinned(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let len = 4 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    // Two pieces: 3 pages then 1, each 512-aligned.
    fill_user(addr, len, 8)?;
    let segs = [
        UserVec::new(addr, 3 * PAGE_SIZE),
        UserVec::new(addr + 3 * PAGE_SIZE, PAGE_SIZE),
    ];
    let before = COUNTERS.snapshot();
    let mut it = IovIter::<Source>::iovec(&segs)?;
    let mut rq = PtRequest::new(Queue::of(&disk), cmd(8))?;
    kunit_assert_eq!(
        t,
        rq.map(&mut it, Bounce::IfNeeded)?,
        Mapping::Direct(Mode::Pinned)
    );
    kunit_assert_eq!(t, rq.execute()?, len as u32);
    rq.unmap()?;
    kunit_assert!(t, !disk.driver().mismatch.load(Relaxed));
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned, d.dirtied), (4, 4, 0));
    Ok(())
}

/// A KVEC read is listed, not pinned, and fills the kernel buffer.
fn kvec_read_listed(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let mut buf = KVec::from_elem(0u8, 2 * PAGE_SIZE, GFP_KERNEL)?;
    let before = COUNTERS.snapshot();
    {
        let mut segs = [Kvec::<Dest>::new(&mut buf[..])];
        let mut it = IovIter::kvec(&mut segs)?;
        let mut rq = PtRequest::new(Queue::of(&disk), cmd(0))?;
        kunit_assert_eq!(
            t,
            rq.map(&mut it, Bounce::IfNeeded)?,
            Mapping::Direct(Mode::Listed)
        );
        rq.execute()?;
        rq.unmap()?;
    }
    kunit_assert!(
        t,
        buf.iter().enumerate().all(|(i, b)| *b == byte_at(i as u64))
    );
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, d.pinned, 0);
    kunit_assert_eq!(t, d.listed, d.unlisted);
    kunit_assert!(t, d.listed > 0);
    Ok(())
}

/// A BVEC write is listed and carries the page's bytes.
fn bvec_write_listed(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let mut page = Page::alloc_page(GFP_KERNEL)?;
    let mut data = [0u8; 1024];
    for (i, b) in data.iter_mut().enumerate() {
        *b = byte_at(1024 + i as u64);
    }
    {
        let mut fill = [Bvec::<Dest>::new(&mut page, 512, 1024)?];
        let mut it = IovIter::bvec(&mut fill)?;
        kunit_assert_eq!(t, it.copy_to_iter(&data), 1024);
    }
    let mut segs = [Bvec::<Source>::new(&page, 512, 1024)?];
    let mut it = IovIter::bvec(&mut segs)?;
    let mut rq = PtRequest::new(Queue::of(&disk), cmd(2))?;
    kunit_assert_eq!(
        t,
        rq.map(&mut it, Bounce::IfNeeded)?,
        Mapping::Direct(Mode::Listed)
    );
    kunit_assert_eq!(t, rq.execute()?, 1024);
    rq.unmap()?;
    kunit_assert!(t, !disk.driver().mismatch.load(Relaxed));
    Ok(())
}

/// Memory off the queue's 512-byte alignment is bounced, and only then: nothing is pinned, a
/// write's bytes reach the driver, a read's come back at unmap. `Bounce::Always` bounces
/// aligned memory too.
fn bounce_exactly_when_needed(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let q = Queue::of(&disk);
    let lim = q.limits();
    let len = 2 * PAGE_SIZE;
    let addr = t.vm_mmap(len + PAGE_SIZE, true, true)?;
    for (off, l, want) in [
        (0usize, len, false),
        (512, len, false),
        (8, len, true),
        (0, 1000, true),
        (1, 512, true),
    ] {
        let it = IovIter::<Dest>::ubuf(addr + off, l)?;
        kunit_assert!(
            t,
            PtRequest::needs_bounce(&it, &lim) == want,
            "off {} len {}: bounce expected {}",
            off,
            l,
            want
        );
    }
    // A misaligned read and write.
    let before = COUNTERS.snapshot();
    let mut it = IovIter::<Dest>::ubuf(addr + 8, len)?;
    let mut rq = PtRequest::new(q, cmd(16))?;
    kunit_assert_eq!(t, rq.map(&mut it, Bounce::IfNeeded)?, Mapping::Bounced);
    rq.execute()?;
    rq.unmap()?;
    kunit_assert!(t, user_has_pattern(addr + 8, len, 16)?);
    fill_user(addr + 8, len, 24)?;
    let mut it = IovIter::<Source>::ubuf(addr + 8, len)?;
    let mut rq = PtRequest::new(q, cmd(24))?;
    kunit_assert_eq!(t, rq.map(&mut it, Bounce::IfNeeded)?, Mapping::Bounced);
    rq.execute()?;
    rq.unmap()?;
    kunit_assert!(t, !disk.driver().mismatch.load(Relaxed));
    // Aligned, but asked to bounce.
    let mut it = IovIter::<Dest>::ubuf(addr, len)?;
    let mut rq = PtRequest::new(q, cmd(32))?;
    kunit_assert_eq!(t, rq.map(&mut it, Bounce::Always)?, Mapping::Bounced);
    rq.execute()?;
    rq.unmap()?;
    kunit_assert!(t, user_has_pattern(addr, len, 32)?);
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert!(t, d.pinned == 0 && d.listed == 0, "a bounce took pages");
    Ok(())
}

/// The queue's limits: more bytes than a request takes, or nothing at all, is `EINVAL`, with
/// nothing pinned; a mapped request refuses a second mapping.
fn limits_refused(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let q = Queue::of(&disk);
    let max = q.limits().max_bytes() as usize;
    kunit_assert_eq!(t, max, 1 << 20);
    let addr = t.vm_mmap(max + PAGE_SIZE, true, true)?;
    let before = COUNTERS.snapshot();
    let mut too_big = IovIter::<Dest>::ubuf(addr, max + 512)?;
    let mut too_big2 = IovIter::<Dest>::ubuf(addr, max + 512)?;
    let mut empty = IovIter::<Dest>::ubuf(addr, 0)?;
    let mut noseg = IovIter::<Dest>::iovec(&[])?;
    let mut it = IovIter::<Dest>::ubuf(addr, max)?;
    let mut again = IovIter::<Dest>::ubuf(addr, 512)?;
    let mut rq = PtRequest::new(q, cmd(0))?;
    kunit_assert_eq!(
        t,
        rq.map(&mut too_big, Bounce::IfNeeded).err(),
        Some(EINVAL)
    );
    kunit_assert_eq!(t, rq.map(&mut too_big2, Bounce::Always).err(), Some(EINVAL));
    kunit_assert_eq!(t, rq.mapping(), Mapping::None);
    kunit_assert_eq!(t, rq.map(&mut empty, Bounce::IfNeeded).err(), Some(EINVAL));
    kunit_assert_eq!(t, rq.map_c(&mut noseg).err(), Some(EINVAL));
    // Exactly the maximum fits, in at most one segment per page and at least one per 64 KiB
    // (the queue's segment size).
    kunit_assert_eq!(
        t,
        rq.map(&mut it, Bounce::IfNeeded)?,
        Mapping::Direct(Mode::Pinned)
    );
    kunit_assert!(
        t,
        (max / (64 << 10)..=max / PAGE_SIZE).contains(&rq.nr_segments()),
        "{} segments",
        rq.nr_segments()
    );
    kunit_assert_eq!(t, rq.map(&mut again, Bounce::IfNeeded).err(), Some(EBUSY));
    rq.execute()?;
    kunit_assert_eq!(t, rq.execute().err(), Some(EBUSY));
    rq.unmap()?;
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, d.pinned, d.unpinned);
    kunit_assert_eq!(t, d.pinned, (max / PAGE_SIZE) as u64);
    Ok(())
}

/// A fault half-way through a vector (a read-only piece for a read): `EFAULT`, and the pages
/// pinned for the pieces before it are unpinned; the request stays unmapped.
fn efault_mid_vector_releases(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let good = t.vm_mmap(4 * PAGE_SIZE, true, true)?;
    let ro = t.vm_mmap(PAGE_SIZE, true, false)?;
    let segs = [
        UserVec::new(good, 4 * PAGE_SIZE),
        UserVec::new(ro, PAGE_SIZE),
    ];
    let before = COUNTERS.snapshot();
    let mut it = IovIter::<Dest>::iovec(&segs)?;
    let mut rq = PtRequest::new(Queue::of(&disk), cmd(0))?;
    kunit_assert_eq!(t, rq.map(&mut it, Bounce::IfNeeded).err(), Some(EFAULT));
    kunit_assert_eq!(t, rq.mapping(), Mapping::None);
    kunit_assert_eq!(t, rq.nr_segments(), 0);
    drop(rq);
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert!(t, d.pinned >= 4, "the good pieces were not pinned first");
    kunit_assert_eq!(t, d.pinned, d.unpinned);
    kunit_assert_eq!(t, d.dirtied, 0);
    // The same bounced: the copy back at unmap faults.
    let segs2 = [UserVec::new(good + 8, PAGE_SIZE), UserVec::new(ro, 512)];
    let mut it2 = IovIter::<Dest>::iovec(&segs2)?;
    let mut rq = PtRequest::new(Queue::of(&disk), cmd(0))?;
    kunit_assert_eq!(t, rq.map(&mut it2, Bounce::IfNeeded)?, Mapping::Bounced);
    rq.execute()?;
    kunit_assert_eq!(t, rq.unmap().err(), Some(EFAULT));
    Ok(())
}

/// A mapped request dropped without being executed releases every page, clean: the counters
/// and the pages' own reference counts (looked at through pins of the test's) are back.
fn drop_mapped_releases(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let len = 16 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    fill_user(addr, len, 0)?;
    let mut hold: [PageSlot; 16] = core::array::from_fn(|_| PageSlot::EMPTY);
    let h = pin_user_pages::<Source>(&UserMm::current()?, addr, len, Pin::ShortTerm, &mut hold)?;
    let refs: i32 = h.pages().map(|p| p.ref_count()).sum();
    let before = COUNTERS.snapshot();
    {
        let mut it = IovIter::<Dest>::ubuf(addr, len)?;
        let mut rq = PtRequest::new(Queue::of(&disk), cmd(0))?;
        rq.map(&mut it, Bounce::IfNeeded)?;
        let mid = COUNTERS.snapshot().since(&before);
        kunit_assert_eq!(t, (mid.pinned, mid.unpinned), (16, 0));
    }
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned, d.dirtied), (16, 16, 0));
    kunit_assert_eq!(t, h.pages().map(|p| p.ref_count()).sum::<i32>(), refs);
    Ok(())
}

/// The kernel's mapping of the same read gives the same bytes, and releases its pins.
fn kernel_mapping_same_data(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let len = 4 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    let mut it = IovIter::<Dest>::ubuf(addr, len)?;
    let mut rq = PtRequest::new(Queue::of(&disk), cmd(48))?;
    rq.map_c(&mut it)?;
    kunit_assert_eq!(t, rq.mapping(), Mapping::Kernel);
    kunit_assert_eq!(t, rq.execute()?, len as u32);
    rq.unmap()?;
    kunit_assert!(t, user_has_pattern(addr, len, 48)?);
    Ok(())
}

/// Limits are made only by the checked constructor: bad block sizes, empty requests and
/// non-masks are `EINVAL`; the queue's own limits come through it.
fn limits_checked(t: &Test) -> CaseResult {
    for (bytes, segs, align, vb, lbs) in [
        (4096u32, 1u32, 511u64, 0u64, 0u32),
        (4096, 1, 511, 0, 1000),
        (4096, 1, 511, 0, 256),
        (256, 1, 511, 0, 512),
        (4096, 0, 511, 0, 512),
        (4096, 1, 500, 0, 512),
        (4096, 1, PAGE_SIZE as u64, 0, 512),
        (4096, 1, 511, 4000, 512),
        (4096, 1, 511, 1 << 20, 512),
    ] {
        kunit_assert!(
            t,
            Limits::new(bytes, segs, align, vb, lbs).err() == Some(EINVAL),
            "limits {} {} {} {} {} accepted",
            bytes,
            segs,
            align,
            vb,
            lbs
        );
    }
    let l = Limits::new(8192, 4, 3, 4095, 4096)?;
    kunit_assert_eq!(
        t,
        (
            l.max_bytes(),
            l.max_segments(),
            l.align(),
            l.virt_boundary(),
            l.logical_block_size().get()
        ),
        (8192, 4, 3, 4095, 4096)
    );
    let disk = pt_disk()?;
    let q = Queue::of(&disk).limits();
    kunit_assert_eq!(t, q, Limits::new(1 << 20, 2048, 511, 0, 512)?);
    Ok(())
}

/// An IOVEC iterator over an empty array has one (static, empty) segment, so the kernel's
/// walkers that read the first segment find one: the kernel's own mapping refuses it with
/// `EINVAL` after `iov_iter_alignment()` read it, and so does the Rust one.
fn empty_iovec_has_a_segment(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let q = Queue::of(&disk);
    let before = COUNTERS.snapshot();
    let mut it = IovIter::<Dest>::iovec(&[])?;
    kunit_assert_eq!(t, it.nr_segs(), 1);
    kunit_assert_eq!(t, it.len(), 0);
    kunit_assert!(t, !PtRequest::needs_bounce(&it, &q.limits()));
    let mut rq = PtRequest::new(q, cmd(0))?;
    kunit_assert_eq!(t, rq.map_c(&mut it).err(), Some(EINVAL));
    let mut it2 = IovIter::<Source>::iovec(&[])?;
    let mut rq2 = PtRequest::new(q, cmd(0))?;
    kunit_assert_eq!(t, rq2.map(&mut it2, Bounce::Always).err(), Some(EINVAL));
    kunit_assert_eq!(t, rq2.execute()?, 0);
    drop(rq);
    drop(rq2);
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.listed), (0, 0));
    Ok(())
}

/// A driver that holds the last reference to its own disk and drops it from its ioctl.
struct SelfOwner {
    me: Arc<Mutex<Option<Arc<Disk<SelfOwner>>>>>,
    gone: Arc<AtomicBool>,
}

const DROP_MYSELF: u32 = 0x4950;

impl Driver for SelfOwner {
    fn transfer(&self, _rq: &Request<'_>) -> Result<(), Failure> {
        Err(EIO.into())
    }

    fn ioctl(&self, queue: Queue<'_>, _w: bool, cmd: u32, _arg: usize) -> Result<isize> {
        if cmd != DROP_MYSELF {
            return Err(ENOTTY);
        }
        let me = self.me.lock().take();
        let had = me.is_some();
        // The last reference: the disk is dropped inside its own ioctl.
        drop(me);
        // The driver is still here while its call runs, and so is the queue it was lent.
        if self.gone.load(Relaxed) || queue.capacity() != 64 << 11 {
            return Err(EIO);
        }
        Ok(if had { 7 } else { 8 })
    }
}

impl Drop for SelfOwner {
    fn drop(&mut self) {
        self.gone.store(true, Relaxed);
    }
}

/// A driver whose ioctl drops the last reference to its own disk: the drop does not wait for
/// the ioctl it is called from; the disk is deleted and the driver dropped once the ioctl has
/// returned, before the call returns to the block layer. A later ioctl finds the gate closed.
fn driver_drops_own_disk_in_ioctl(t: &Test) -> CaseResult {
    let gone = Arc::new(AtomicBool::new(false), GFP_KERNEL)?;
    let me = Arc::pin_init(new_mutex!(None), GFP_KERNEL)?;
    let config = Config {
        capacity_sectors: 64 << 11,
        logical_block_size: 512,
        hw_queues: 1,
        queue_depth: 4,
        delay_us: 0,
        bio_based: false,
    };
    let disk = Arc::new(
        Disk::new(
            c_str!("iovxp1"),
            config,
            SelfOwner {
                me: me.clone(),
                gone: gone.clone(),
            },
        )?,
        GFP_KERNEL,
    )?;
    let gd = disk.gendisk_ref();
    kunit_assert_eq!(t, gd.ioctl(DROP_MYSELF, 0), 8);
    *me.lock() = Some(disk);
    kunit_assert!(t, !gone.load(Relaxed));
    kunit_assert_eq!(t, gd.ioctl(DROP_MYSELF, 0), 7);
    kunit_assert!(t, gone.load(Relaxed), "the driver outlived its ioctl");
    kunit_assert_eq!(t, gd.ioctl(DROP_MYSELF, 0), ENXIO.to_errno());
    kunit_assert!(t, me.lock().is_none());
    Ok(())
}

/// Where the completion of a request run without waiting leaves its outcome.
#[pin_data]
struct Waiter {
    #[pin]
    outcome: Mutex<Option<AsyncOutcome>>,
    #[pin]
    cv: CondVar,
}

impl Waiter {
    fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                outcome <- new_mutex!(None),
                cv <- new_condvar!(),
            }),
            GFP_KERNEL,
        )
    }

    /// The completion to give `submit_async`.
    fn done(self: &Arc<Self>) -> impl FnOnce(AsyncOutcome) + Send + 'static {
        let w = self.clone();
        move |o| {
            *w.outcome.lock() = Some(o);
            w.cv.notify_all();
        }
    }

    fn wait(&self) -> AsyncOutcome {
        let mut g = self.outcome.lock();
        loop {
            if let Some(o) = g.take() {
                return o;
            }
            self.cv.wait(&mut g);
        }
    }
}

/// Reads run without waiting, pinned (aligned; Rust and kernel mapping): the completion gets
/// the driver's result once, the user memory holds the driver's bytes, pinned pages are
/// dirtied and unpinned once. A read that would be bounced (misaligned, or
/// [`Bounce::Always`]; the kernel's mapping of misaligned memory) is refused at submission
/// with `EOPNOTSUPP`, the completion given back, nothing taken, the memory untouched: the
/// module's shared worker never copies into user memory.
fn async_reads(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let len = 4 * PAGE_SIZE;
    let addr = t.vm_mmap(len + PAGE_SIZE, true, true)?;
    for (i, (off, how, want)) in [
        (
            0usize,
            MapWith::Rust(Bounce::IfNeeded),
            Some(Mapping::Direct(Mode::Pinned)),
        ),
        (8, MapWith::Rust(Bounce::IfNeeded), None),
        (0, MapWith::Rust(Bounce::Always), None),
        (8, MapWith::Kernel, None),
        (0, MapWith::Kernel, Some(Mapping::Kernel)),
    ]
    .into_iter()
    .enumerate()
    {
        UserSlice::new(addr, len + PAGE_SIZE)
            .writer()
            .write_slice(&KVec::from_elem(0u8, len + PAGE_SIZE, GFP_KERNEL)?)?;
        let sector = 8 * (i as u64 + 1);
        let before = COUNTERS.snapshot();
        let w = Waiter::new()?;
        let r = submit_async::<Dest, _>(
            Queue::of(&disk),
            cmd(sector),
            UserData::Buf {
                addr: addr + off,
                len,
            },
            how,
            w.done(),
        );
        let Some(want) = want else {
            kunit_assert_eq!(t, r.err().map(|r| r.error), Some(not_supported()));
            kunit_assert_eq!(t, async_in_flight(), 0);
            let d = COUNTERS.snapshot().since(&before);
            kunit_assert_eq!(t, (d.pinned, d.unpinned, d.dirtied), (0, 0, 0));
            kunit_assert!(
                t,
                user_is_zero(addr, len + PAGE_SIZE)?,
                "case {}: a refused read wrote user memory",
                i
            );
            continue;
        };
        let (m, _) = r.map_err(|r| r.error)?;
        kunit_assert_eq!(t, m, want);
        let o = w.wait();
        kunit_assert_eq!(t, o.result, Ok(len as u32));
        kunit_assert_eq!(t, o.command.result, len as u32);
        kunit_assert!(
            t,
            user_has_pattern(addr + off, len, sector)?,
            "case {}: the driver's bytes did not come back",
            i
        );
        let d = COUNTERS.snapshot().since(&before);
        kunit_assert_eq!(t, d.pinned, d.unpinned);
        if want == Mapping::Direct(Mode::Pinned) {
            kunit_assert_eq!(t, (d.pinned, d.dirtied), (4, 4));
        }
    }
    kunit_assert_eq!(t, async_in_flight(), 0);
    Ok(())
}

/// A bounced write run without waiting (copied at submission; its pages freed by the worker,
/// which touches no user memory): the driver sees the user's bytes, no page is pinned.
fn async_write_bounced(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let len = 2 * PAGE_SIZE;
    let addr = t.vm_mmap(len + PAGE_SIZE, true, true)?;
    fill_user(addr + 8, len, 8)?;
    let before = COUNTERS.snapshot();
    let w = Waiter::new()?;
    let (m, _) = submit_async::<Source, _>(
        Queue::of(&disk),
        cmd(8),
        UserData::Buf {
            addr: addr + 8,
            len,
        },
        MapWith::Rust(Bounce::IfNeeded),
        w.done(),
    )
    .map_err(|r| r.error)?;
    kunit_assert_eq!(t, m, Mapping::Bounced);
    kunit_assert_eq!(t, w.wait().result, Ok(len as u32));
    kunit_assert!(t, !disk.driver().mismatch.load(Relaxed));
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned), (0, 0));
    kunit_assert_eq!(t, async_in_flight(), 0);
    Ok(())
}

/// A vectored write run without waiting: the driver sees the user's bytes, pins balance.
fn async_write_iovec(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let len = 4 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    fill_user(addr, len, 8)?;
    let mut v = KVec::new();
    v.push(UserVec::new(addr, 3 * PAGE_SIZE), GFP_KERNEL)?;
    v.push(UserVec::new(addr + 3 * PAGE_SIZE, PAGE_SIZE), GFP_KERNEL)?;
    let before = COUNTERS.snapshot();
    let w = Waiter::new()?;
    submit_async::<Source, _>(
        Queue::of(&disk),
        cmd(8),
        UserData::Vecs(v),
        MapWith::Rust(Bounce::IfNeeded),
        w.done(),
    )
    .map_err(|r| r.error)?;
    kunit_assert_eq!(t, w.wait().result, Ok(len as u32));
    kunit_assert!(t, !disk.driver().mismatch.load(Relaxed));
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned, d.dirtied), (4, 4, 0));
    Ok(())
}

/// Dropping the disk while a request runs without waiting (the disk completes it 200 ms after
/// it was queued) waits for it: the request completes with the driver's bytes, and is freed
/// before the tag set is (KASAN would see otherwise).
fn async_disk_drop_waits(t: &Test) -> CaseResult {
    let len = 2 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    for write in [false, true] {
        let disk = pt_disk_delayed(200_000)?;
        let w = Waiter::new()?;
        if write {
            fill_user(addr, len, 16)?;
            submit_async::<Source, _>(
                Queue::of(&disk),
                cmd(16),
                UserData::Buf { addr, len },
                MapWith::Rust(Bounce::Always),
                w.done(),
            )
            .map_err(|r| r.error)?;
        } else {
            submit_async::<Dest, _>(
                Queue::of(&disk),
                cmd(16),
                UserData::Buf { addr, len },
                MapWith::Rust(Bounce::IfNeeded),
                w.done(),
            )
            .map_err(|r| r.error)?;
        }
        kunit_assert_eq!(t, async_in_flight(), 1);
        drop(disk);
        let o = w.wait();
        kunit_assert_eq!(t, o.result, Ok(len as u32));
        if !write {
            kunit_assert!(t, user_has_pattern(addr, len, 16)?);
        }
    }
    kunit_assert_eq!(t, async_in_flight(), 0);
    Ok(())
}

/// Errors at submission are given back at once, the completion is never called, nothing is
/// left taken or in flight: a read into read-only memory (`EFAULT` half-way through a vector),
/// an empty buffer (`EINVAL`), more bytes than a request takes (`EINVAL`).
fn async_submit_errors(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let good = t.vm_mmap(4 * PAGE_SIZE, true, true)?;
    let ro = t.vm_mmap(PAGE_SIZE, true, false)?;
    let called = Arc::new(AtomicBool::new(false), GFP_KERNEL)?;
    let before = COUNTERS.snapshot();
    let mut v = KVec::new();
    v.push(UserVec::new(good, 4 * PAGE_SIZE), GFP_KERNEL)?;
    v.push(UserVec::new(ro, PAGE_SIZE), GFP_KERNEL)?;
    for (data, err) in [
        (UserData::Vecs(v), EFAULT),
        (UserData::Buf { addr: good, len: 0 }, EINVAL),
        (
            UserData::Buf {
                addr: good,
                len: (1 << 20) + 512,
            },
            EINVAL,
        ),
    ] {
        let c = called.clone();
        let r = submit_async::<Dest, _>(
            Queue::of(&disk),
            cmd(0),
            data,
            MapWith::Rust(Bounce::IfNeeded),
            move |_| c.store(true, Relaxed),
        );
        kunit_assert_eq!(t, r.err().map(|r| r.error), Some(err));
    }
    kunit_assert!(t, !called.load(Relaxed), "a failed submission completed");
    kunit_assert_eq!(t, async_in_flight(), 0);
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert!(t, d.pinned >= 4, "the good piece was not pinned first");
    kunit_assert_eq!(t, (d.pinned, d.dirtied), (d.unpinned, 0));
    Ok(())
}

/// `ITER_ALLOW_P2PDMA` is passed only for a queue that supports P2P DMA: not for the RAM
/// disk's, whose mapping then extracts with no flag (and pins as usual).
fn p2p_flag_only_for_p2p_queue(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let q = Queue::of(&disk);
    kunit_assert!(t, !q.supports_p2pdma());
    kunit_assert!(t, !ExtractFlags::NONE.allows_p2pdma());
    let len = 2 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    let mut it = IovIter::<Dest>::ubuf(addr, len)?;
    let mut rq = PtRequest::new(q, cmd(0))?;
    kunit_assert_eq!(
        t,
        rq.map(&mut it, Bounce::IfNeeded)?,
        Mapping::Direct(Mode::Pinned)
    );
    rq.execute()?;
    rq.unmap()?;
    Ok(())
}

/// `drain_async` called from a completion returns at once (waiting for the completion that
/// calls it would never end), and submissions after a drain complete (on a new worker).
fn async_drain_from_completion(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let len = PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    for _ in 0..2 {
        let w = Waiter::new()?;
        let done = w.done();
        submit_async::<Dest, _>(
            Queue::of(&disk),
            cmd(8),
            UserData::Buf { addr, len },
            MapWith::Rust(Bounce::IfNeeded),
            move |o| {
                drain_async();
                done(o)
            },
        )
        .map_err(|r| r.error)?;
        kunit_assert_eq!(t, w.wait().result, Ok(len as u32));
        kunit_assert!(t, user_has_pattern(addr, len, 8)?);
        drain_async();
        kunit_assert_eq!(t, async_in_flight(), 0);
    }
    Ok(())
}

/// A direct mapping of up to `PT_INLINE_VECS` pages takes the bio in the request's own driver
/// data: with the next fault injection point failing (`fail-nth`), mappings of 1 and 4 pages
/// reach none and succeed, bring the disk's bytes and release their pins; one of 5 pages
/// allocates its bio and fails with `ENOMEM`, nothing pinned afterwards. A request whose
/// mapping failed (`EFAULT` in its second segment) maps again into the same bio.
fn small_mapping_allocates_nothing(t: &Test) -> CaseResult {
    if t.fail_nth(0).is_none() {
        t.skip(c_str!("no fault injection"));
        return Ok(());
    }
    let disk = pt_disk()?;
    let len = 5 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    let before = COUNTERS.snapshot();
    for (pages, sector) in [(1usize, 8u64), (4, 16)] {
        let n = pages * PAGE_SIZE;
        // The pages are present and writable: pinning them allocates nothing.
        user_fill_zero(addr, n)?;
        let mut it = IovIter::<Dest>::ubuf(addr, n)?;
        let mut rq = PtRequest::new(Queue::of(&disk), cmd(sector))?;
        t.fail_nth(1);
        let r = rq.map(&mut it, Bounce::IfNeeded);
        let left = t.fail_nth(0);
        kunit_assert_eq!(t, (r, left), (Ok(Mapping::Direct(Mode::Pinned)), Some(1)));
        kunit_assert_eq!(t, rq.execute()?, n as u32);
        kunit_assert_eq!(t, rq.unmap()?.result, n as u32);
        kunit_assert!(t, user_has_pattern(addr, n, sector)?);
    }
    {
        user_fill_zero(addr, len)?;
        let mut it = IovIter::<Dest>::ubuf(addr, len)?;
        let mut rq = PtRequest::new(Queue::of(&disk), cmd(24))?;
        t.fail_nth(1);
        let r = rq.map(&mut it, Bounce::IfNeeded);
        let left = t.fail_nth(0);
        kunit_assert_eq!(t, (r, left), (Err(ENOMEM), Some(0)));
        kunit_assert_eq!(t, rq.mapping(), Mapping::None);
    }
    {
        let vecs = [UserVec::new(addr, PAGE_SIZE), UserVec::new(0, PAGE_SIZE)];
        let mut bad = IovIter::<Dest>::iovec(&vecs)?;
        let mut it = IovIter::<Dest>::ubuf(addr, 2 * PAGE_SIZE)?;
        let mut rq = PtRequest::new(Queue::of(&disk), cmd(32))?;
        kunit_assert_eq!(t, rq.map(&mut bad, Bounce::IfNeeded).err(), Some(EFAULT));
        kunit_assert_eq!(
            t,
            rq.map(&mut it, Bounce::IfNeeded)?,
            Mapping::Direct(Mode::Pinned)
        );
        kunit_assert_eq!(t, rq.execute()?, 2 * PAGE_SIZE as u32);
        kunit_assert_eq!(t, rq.unmap()?.result, 2 * PAGE_SIZE as u32);
        kunit_assert!(t, user_has_pattern(addr, 2 * PAGE_SIZE, 32)?);
    }
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert!(
        t,
        d.pinned == 8 && d.unpinned == d.pinned,
        "pins {:?}",
        (d.pinned, d.unpinned)
    );
    Ok(())
}

/// The disk of [`pt_disk`] with its queue's segment limits lowered (0 keeps a default).
fn pt_disk_limited(max_segments: u32, max_segment_size: u32) -> Result<Disk<PtDriver>> {
    let config = Config {
        capacity_sectors: 64 << 11,
        logical_block_size: 512,
        hw_queues: 1,
        queue_depth: 16,
        delay_us: 0,
        bio_based: false,
    };
    Disk::with_limits(
        c_str!("iovxp1"),
        config,
        BlkLimits {
            max_sectors: 0,
            max_segments,
            max_segment_size,
        },
        PtDriver {
            mismatch: AtomicBool::new(false),
        },
    )
}

/// Bytes of the buffers of [`large_folio_few_segments`]: more than `kmalloc()` takes from its
/// caches, so a buffer is one compound page of the page allocator, physically contiguous.
const BIG: usize = 256 << 10;

/// A kernel buffer in one large folio (a `kmalloc()` of 256 KiB) maps into as few segments as
/// the queue's segment size allows: 4 of 64 KiB by default, 1 with a segment size of 1 MiB;
/// the bytes are right both ways and every page listed is unlisted once.
fn large_folio_few_segments(t: &Test) -> CaseResult {
    for (seg_size, want) in [(0u32, BIG / (64 << 10)), (1 << 20, 1)] {
        let disk = pt_disk_limited(0, seg_size)?;
        let mut buf = KVec::from_elem(0u8, BIG, GFP_KERNEL)?;
        let before = COUNTERS.snapshot();
        {
            let mut segs = [Kvec::<Dest>::new(&mut buf[..])];
            let mut it = IovIter::kvec(&mut segs)?;
            let mut rq = PtRequest::new(Queue::of(&disk), cmd(8))?;
            kunit_assert_eq!(
                t,
                rq.map(&mut it, Bounce::IfNeeded)?,
                Mapping::Direct(Mode::Listed)
            );
            kunit_assert_eq!(t, (seg_size, rq.nr_segments()), (seg_size, want));
            kunit_assert_eq!(t, rq.execute()?, BIG as u32);
            rq.unmap()?;
        }
        kunit_assert!(
            t,
            buf.iter()
                .enumerate()
                .all(|(i, b)| *b == byte_at(8 * 512 + i as u64)),
            "the read brought other bytes"
        );
        {
            let mut segs = [Kvec::<Source>::new(&buf[..])];
            let mut it = IovIter::kvec(&mut segs)?;
            let mut rq = PtRequest::new(Queue::of(&disk), cmd(8))?;
            rq.map(&mut it, Bounce::IfNeeded)?;
            kunit_assert_eq!(t, rq.nr_segments(), want);
            kunit_assert_eq!(t, rq.execute()?, BIG as u32);
            rq.unmap()?;
        }
        kunit_assert!(t, !disk.driver().mismatch.load(Relaxed));
        let d = COUNTERS.snapshot().since(&before);
        kunit_assert_eq!(
            t,
            (d.listed, d.unlisted),
            (2 * (BIG / PAGE_SIZE) as u64, 2 * (BIG / PAGE_SIZE) as u64)
        );
        kunit_assert_eq!(t, d.pinned, 0);
    }
    Ok(())
}

/// `max_segments` counts segments as the block layer does, after merging: on a queue of 4
/// segments, 256 KiB of one large folio (64 pages, 4 segments) is accepted, one page more in a
/// second piece (5 segments) is `EINVAL`; so are 5 pieces of user memory that cannot share a
/// segment (each the middle half of a page of its own), 4 of them fit. Every pin is dropped and
/// every listing ended, refused or not.
fn segment_limit_after_merging(t: &Test) -> CaseResult {
    let disk = pt_disk_limited(4, 0)?;
    let big = KVec::from_elem(0u8, BIG, GFP_KERNEL)?;
    let more = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
    let before = COUNTERS.snapshot();
    {
        let mut segs = [Kvec::<Source>::new(&big[..])];
        let mut it = IovIter::kvec(&mut segs)?;
        let mut rq = PtRequest::new(Queue::of(&disk), cmd(0))?;
        kunit_assert_eq!(
            t,
            rq.map(&mut it, Bounce::IfNeeded)?,
            Mapping::Direct(Mode::Listed)
        );
        kunit_assert_eq!(t, rq.nr_segments(), 4);
        kunit_assert_eq!(t, rq.execute()?, BIG as u32);
        rq.unmap()?;
    }
    {
        let mut segs = [
            Kvec::<Source>::new(&big[..]),
            Kvec::<Source>::new(&more[..]),
        ];
        let mut it = IovIter::kvec(&mut segs)?;
        let mut rq = PtRequest::new(Queue::of(&disk), cmd(0))?;
        kunit_assert_eq!(t, rq.map(&mut it, Bounce::IfNeeded).err(), Some(EINVAL));
        kunit_assert_eq!(t, (rq.mapping(), rq.nr_segments()), (Mapping::None, 0));
    }
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert!(
        t,
        d.listed > 0 && d.listed == d.unlisted,
        "{:?}",
        (d.listed, d.unlisted)
    );
    let addr = t.vm_mmap(12 * PAGE_SIZE, true, true)?;
    user_fill_zero(addr, 12 * PAGE_SIZE)?;
    let piece = |i: usize| UserVec::new(addr + i * PAGE_SIZE + PAGE_SIZE / 4, PAGE_SIZE / 2);
    let five = [piece(0), piece(1), piece(2), piece(3), piece(4)];
    let before = COUNTERS.snapshot();
    {
        let mut it = IovIter::<Dest>::iovec(&five)?;
        let mut rq = PtRequest::new(Queue::of(&disk), cmd(16))?;
        kunit_assert_eq!(t, rq.map(&mut it, Bounce::IfNeeded).err(), Some(EINVAL));
        kunit_assert_eq!(t, rq.mapping(), Mapping::None);
    }
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert!(
        t,
        d.pinned > 0 && d.pinned == d.unpinned && d.dirtied == 0,
        "{:?}",
        (d.pinned, d.unpinned, d.dirtied)
    );
    {
        let mut it = IovIter::<Dest>::iovec(&five[..4])?;
        let mut rq = PtRequest::new(Queue::of(&disk), cmd(16))?;
        kunit_assert_eq!(
            t,
            rq.map(&mut it, Bounce::IfNeeded)?,
            Mapping::Direct(Mode::Pinned)
        );
        kunit_assert_eq!(t, rq.nr_segments(), 4);
        kunit_assert_eq!(t, rq.execute()?, 2 * PAGE_SIZE as u32);
        rq.unmap()?;
    }
    for (i, v) in five[..4].iter().enumerate() {
        let sector = 16 + (i * PAGE_SIZE / 2 / 512) as u64;
        kunit_assert!(
            t,
            user_has_pattern(v.addr(), v.len(), sector)?,
            "piece {}",
            i
        );
    }
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, d.pinned, d.unpinned);
    Ok(())
}

/// Pieces of a vector that go on in the same page, as `bio_add_hw_page()` merges them: three
/// pieces of one page, one after the other, are one segment; the page was pinned three times
/// and is unpinned three times (two of them as the pieces join the segment), which the page's
/// own reference count shows (looked at through a pin of the test's). Pieces of one page out
/// of order stay two segments, each with its pin. The bytes are right.
fn same_page_pieces_share_a_segment(t: &Test) -> CaseResult {
    let disk = pt_disk()?;
    let addr = t.vm_mmap(PAGE_SIZE, true, true)?;
    user_fill_zero(addr, PAGE_SIZE)?;
    let mut hold = [PageSlot::EMPTY];
    let h = pin_user_pages::<Source>(
        &UserMm::current()?,
        addr,
        PAGE_SIZE,
        Pin::ShortTerm,
        &mut hold,
    )?;
    let refs: i32 = h.pages().map(|p| p.ref_count()).sum();
    let in_order = [
        UserVec::new(addr, 512),
        UserVec::new(addr + 512, 512),
        UserVec::new(addr + 1024, PAGE_SIZE - 1024),
    ];
    let swapped = [
        UserVec::new(addr + PAGE_SIZE / 2, PAGE_SIZE / 2),
        UserVec::new(addr, PAGE_SIZE / 2),
    ];
    for (segs, want, sector) in [(&in_order[..], 1usize, 8u64), (&swapped[..], 2, 24)] {
        let before = COUNTERS.snapshot();
        let mut it = IovIter::<Dest>::iovec(segs)?;
        let mut rq = PtRequest::new(Queue::of(&disk), cmd(sector))?;
        kunit_assert_eq!(
            t,
            rq.map(&mut it, Bounce::IfNeeded)?,
            Mapping::Direct(Mode::Pinned)
        );
        kunit_assert_eq!(t, rq.nr_segments(), want);
        kunit_assert_eq!(t, rq.execute()?, PAGE_SIZE as u32);
        rq.unmap()?;
        let d = COUNTERS.snapshot().since(&before);
        kunit_assert_eq!(
            t,
            (d.pinned, d.unpinned),
            (segs.len() as u64, segs.len() as u64)
        );
        kunit_assert_eq!(t, h.pages().map(|p| p.ref_count()).sum::<i32>(), refs);
        let mut at = sector * 512;
        for v in segs {
            kunit_assert!(t, user_has_pattern(v.addr(), v.len(), at / 512)?);
            at += v.len() as u64;
        }
    }
    Ok(())
}

/// Writes zeroes over `len` bytes of user memory at `addr` (faulting its pages in, writable).
fn user_fill_zero(addr: usize, len: usize) -> Result {
    let zero = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    UserSlice::new(addr, len).writer().write_slice(&zero)
}

kunit_suite!(
    iovx_passthrough,
    [
        ubuf_read_pinned,
        iovec_write_pinned,
        kvec_read_listed,
        bvec_write_listed,
        bounce_exactly_when_needed,
        limits_refused,
        efault_mid_vector_releases,
        drop_mapped_releases,
        kernel_mapping_same_data,
        limits_checked,
        empty_iovec_has_a_segment,
        driver_drops_own_disk_in_ioctl,
        async_reads,
        async_write_bounced,
        async_write_iovec,
        async_disk_drop_waits,
        async_submit_errors,
        p2p_flag_only_for_p2p_queue,
        async_drain_from_completion,
        small_mapping_allocates_nothing,
        large_folio_few_segments,
        segment_limit_after_merging,
        same_page_pieces_share_a_segment,
    ]
);
