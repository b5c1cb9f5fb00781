// SPDX-License-Identifier: GPL-2.0

//! Suite `iovx_bio`: bios that own their pages, against a disk served by a test driver.
//!
//! The test driver fills reads with a pattern derived from the byte position on the disk, checks
//! that writes carry that same pattern, records whether any request was not a multiple of the
//! logical block size, and can be told to fail every request.

#![deny(unsafe_code)]

use crate::abstractions::bdev::Bdev;
use crate::abstractions::bio::{Bio, BioSlot, Completion, INLINE_VECS};
use crate::abstractions::blk::{Config, Disk, Driver, Failure, Limits, Op, Request};
use crate::abstractions::counters::{Snapshot, COUNTERS};
use crate::abstractions::direct_io::{submit_iter_wait, submit_iter_wait_inline, Waiter};
use crate::abstractions::gup::{get_user_pages, pin_user_pages, Pin, UserMm};
use crate::abstractions::iov::{Bvec, Dest, Direction, IovIter, Kvec, Source};
use crate::abstractions::kunit::{CaseResult, Test};
use crate::abstractions::pages::PageSlot;
use crate::abstractions::passthrough::{Command, PtRequest, Queue};
use crate::{kunit_assert, kunit_assert_eq, kunit_suite};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use kernel::{
    c_str,
    page::{Page, PAGE_SIZE},
    prelude::*,
    sync::Arc,
    uaccess::UserSlice,
};

pub(super) fn byte_at(pos: u64) -> u8 {
    (pos as u8).wrapping_mul(13) ^ (pos >> 9) as u8
}

pub(super) struct TestDriver {
    lbs: core::num::NonZeroUsize,
    pub(super) fail: AtomicBool,
    pub(super) mismatch: AtomicBool,
    misaligned: AtomicBool,
    pub(super) requests: AtomicUsize,
    /// Requests still to refuse as busy ([`Failure::Busy`]).
    busy: AtomicUsize,
    /// The largest request seen, in bytes.
    max_len: AtomicUsize,
    /// Requests that start below this sector fail (0: none).
    fail_below: AtomicU64,
}

impl Driver for TestDriver {
    fn transfer(&self, rq: &Request<'_>) -> Result<(), Failure> {
        self.requests.fetch_add(1, Relaxed);
        if self
            .busy
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Failure::Busy);
        }
        self.max_len.fetch_max(rq.len(), Relaxed);
        if rq.len() % self.lbs != 0 {
            self.misaligned.store(true, Relaxed);
        }
        if self.fail.load(Relaxed) || rq.sector() < self.fail_below.load(Relaxed) {
            return Err(EIO.into());
        }
        let mut pos = rq.sector().checked_mul(512).ok_or(EIO)?;
        let mut buf = [0u8; 512];
        match rq.op() {
            Op::Read(data) => data.for_each_segment(|seg| {
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
                Ok(())
            }),
            Op::Write(data) => data.for_each_segment(|seg| {
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
                Ok(())
            }),
            _ => Ok(()),
        }
    }
}

pub(super) fn test_disk(lbs: u32) -> Result<Disk<TestDriver>> {
    test_disk_delayed(lbs, 0)
}

pub(super) fn test_disk_delayed(lbs: u32, delay_us: u64) -> Result<Disk<TestDriver>> {
    test_disk_of(lbs, delay_us, false)
}

/// A bio-based disk ([`Config::bio_based`]) with the test driver.
pub(super) fn test_disk_bio(lbs: u32) -> Result<Disk<TestDriver>> {
    test_disk_of(lbs, 0, true)
}

fn test_disk_of(lbs: u32, delay_us: u64, bio_based: bool) -> Result<Disk<TestDriver>> {
    test_disk_limited(lbs, delay_us, bio_based, Limits::default())
}

fn test_disk_limited(
    lbs: u32,
    delay_us: u64,
    bio_based: bool,
    limits: Limits,
) -> Result<Disk<TestDriver>> {
    let config = Config {
        capacity_sectors: 64 << 11,
        logical_block_size: lbs,
        hw_queues: 1,
        queue_depth: 16,
        delay_us,
        bio_based,
    };
    let driver = TestDriver {
        lbs: core::num::NonZeroUsize::new(lbs as usize).ok_or(EINVAL)?,
        fail: AtomicBool::new(false),
        mismatch: AtomicBool::new(false),
        misaligned: AtomicBool::new(false),
        requests: AtomicUsize::new(0),
        busy: AtomicUsize::new(0),
        max_len: AtomicUsize::new(0),
        fail_below: AtomicU64::new(0),
    };
    Disk::with_limits(c_str!("iovxt0"), config, limits, driver)
}

/// `Disk::new` with each fault injection point it reaches failing in turn (`fail-nth`), up to
/// the first run that reaches no more: each run gives an error or a disk, and whatever it made
/// is released once (a use after free or a double free is reported by KASAN in the log).
///
/// Every point with the module parameter `full` (`make soak`); otherwise the first
/// `EVERY_POINT_UP_TO` (the driver's own allocations, the tag set, the queue and the gendisk)
/// and then every `SAMPLE_STRIDE`-th, the points of `add_disk()`'s sysfs and kobject
/// allocations, which all unwind through the same error path.
fn disk_new_under_each_fault(t: &Test) -> CaseResult {
    const EVERY_POINT_UP_TO: u32 = 64;
    const SAMPLE_STRIDE: u32 = 5;
    if t.fail_nth(0).is_none() {
        t.skip(c_str!("no fault injection"));
        return Ok(());
    }
    let step = if t.full() { 1 } else { SAMPLE_STRIDE };
    let mut failed = 0u32;
    let mut n = 0u32;
    while n < 4000 {
        n += if n < EVERY_POINT_UP_TO { 1 } else { step };
        t.fail_nth(n);
        let r = test_disk(512);
        let left = t.fail_nth(0).unwrap_or(0);
        if r.is_err() {
            failed += 1;
            // An error only from the failure injected.
            kunit_assert_eq!(t, left, 0);
        }
        drop(r);
        if left != 0 && n == 1 {
            // Sleeping allocations are not failed (`failslab/ignore-gfp-wait` is `Y`).
            t.skip(c_str!("no fault injection point reached"));
            return Ok(());
        }
        if left != 0 {
            // The n-th point was not reached: every point of `Disk::new` (or of the sample) has
            // failed once.
            kunit_assert!(t, failed > 0);
            return Ok(());
        }
    }
    kunit_assert!(t, false);
    Ok(())
}

fn slots<const N: usize>() -> [PageSlot; N] {
    core::array::from_fn(|_| PageSlot::EMPTY)
}

/// A read into pinned user pages: the bytes are the disk's, each page is dirtied, and each pin
/// taken for the I/O is dropped exactly once (the page's refcount is back where it was).
fn read_dirties_and_unpins(t: &Test) -> CaseResult {
    read_dirties_and_unpins_on(t, test_disk)
}

fn read_dirties_and_unpins_on(t: &Test, mk: fn(u32) -> Result<Disk<TestDriver>>) -> CaseResult {
    let disk = mk(512)?;
    let len = 8 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    UserSlice::new(addr, len)
        .writer()
        .write_slice(&KVec::from_elem(1u8, len, GFP_KERNEL)?)?;
    let mut hold = slots::<8>();
    let h = pin_user_pages::<Source>(&UserMm::current()?, addr, len, Pin::ShortTerm, &mut hold)?;
    let mut refs = KVec::new();
    for p in h.pages() {
        p.test_clear_dirty();
        refs.push(p.ref_count(), GFP_KERNEL)?;
    }
    let before = COUNTERS.snapshot();
    let mut it = IovIter::<Dest>::ubuf(addr, len)?;
    let done = submit_iter_wait(disk.target(), &mut it, 16, len)?;
    kunit_assert_eq!(t, done.bytes, len);
    let mut back = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    UserSlice::new(addr, len).reader().read_slice(&mut back)?;
    kunit_assert!(
        t,
        back.iter()
            .enumerate()
            .all(|(i, b)| *b == byte_at(16 * 512 + i as u64))
    );
    for (i, p) in h.pages().enumerate() {
        kunit_assert!(t, p.is_dirty(), "page {} not dirtied by the read", i);
        kunit_assert_eq!(t, p.ref_count(), refs[i]);
    }
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned, d.dirtied), (8, 8, 8));
    Ok(())
}

/// A write from pinned user pages carries the user's bytes and unpins without dirtying.
fn write_unpins_clean(t: &Test) -> CaseResult {
    write_unpins_clean_on(t, test_disk)
}

fn write_unpins_clean_on(t: &Test, mk: fn(u32) -> Result<Disk<TestDriver>>) -> CaseResult {
    let disk = mk(512)?;
    let len = 4 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    let mut data = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    for (i, b) in data.iter_mut().enumerate() {
        *b = byte_at(4096 + i as u64);
    }
    UserSlice::new(addr, len).writer().write_slice(&data)?;
    let mut hold = slots::<4>();
    let h = pin_user_pages::<Source>(&UserMm::current()?, addr, len, Pin::ShortTerm, &mut hold)?;
    let refs: i32 = h.pages().map(|p| p.ref_count()).sum();
    h.pages().for_each(|p| _ = p.test_clear_dirty());
    let before = COUNTERS.snapshot();
    let mut it = IovIter::<Source>::ubuf(addr, len)?;
    let done = submit_iter_wait(disk.target(), &mut it, 8, len)?;
    kunit_assert_eq!(t, done.bytes, len);
    kunit_assert!(
        t,
        !disk.driver().mismatch.load(Relaxed),
        "the disk saw other bytes"
    );
    kunit_assert!(t, !h.pages().any(|p| p.is_dirty()));
    kunit_assert_eq!(t, h.pages().map(|p| p.ref_count()).sum::<i32>(), refs);
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned, d.dirtied), (4, 4, 0));
    Ok(())
}

/// A failing disk: the error reaches the caller and every pin is still dropped once.
fn error_completion_releases(t: &Test) -> CaseResult {
    error_completion_releases_on(t, test_disk)
}

fn error_completion_releases_on(t: &Test, mk: fn(u32) -> Result<Disk<TestDriver>>) -> CaseResult {
    let disk = mk(512)?;
    disk.driver().fail.store(true, Relaxed);
    let len = 3 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    UserSlice::new(addr, len)
        .writer()
        .write_slice(&KVec::from_elem(7u8, len, GFP_KERNEL)?)?;
    let mut hold = slots::<3>();
    let h = pin_user_pages::<Source>(&UserMm::current()?, addr, len, Pin::ShortTerm, &mut hold)?;
    let refs: i32 = h.pages().map(|p| p.ref_count()).sum();
    let before = COUNTERS.snapshot();
    let mut it = IovIter::<Dest>::ubuf(addr, len)?;
    kunit_assert_eq!(
        t,
        submit_iter_wait(disk.target(), &mut it, 0, len).err(),
        Some(EIO)
    );
    let mut it = IovIter::<Source>::ubuf(addr, len)?;
    kunit_assert_eq!(
        t,
        submit_iter_wait(disk.target(), &mut it, 0, len).err(),
        Some(EIO)
    );
    kunit_assert_eq!(t, h.pages().map(|p| p.ref_count()).sum::<i32>(), refs);
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned), (6, 6));
    Ok(())
}

/// Kernel memory (KVEC) goes through the same path, listed and never pinned.
fn kvec_read_is_listed(t: &Test) -> CaseResult {
    kvec_read_is_listed_on(t, test_disk)
}

fn kvec_read_is_listed_on(t: &Test, mk: fn(u32) -> Result<Disk<TestDriver>>) -> CaseResult {
    let disk = mk(512)?;
    let mut buf = KVec::from_elem(0u8, 3 * PAGE_SIZE, GFP_KERNEL)?;
    let before = COUNTERS.snapshot();
    {
        let mut segs = [Kvec::<Dest>::new(&mut buf[512..512 + 2 * PAGE_SIZE])];
        let mut it = IovIter::kvec(&mut segs)?;
        let done = submit_iter_wait(disk.target(), &mut it, 2, 2 * PAGE_SIZE)?;
        kunit_assert_eq!(t, done.bytes, 2 * PAGE_SIZE);
    }
    let ok = buf[512..512 + 2 * PAGE_SIZE]
        .iter()
        .enumerate()
        .all(|(i, b)| *b == byte_at(1024 + i as u64));
    kunit_assert!(t, ok, "KVEC read got other bytes");
    kunit_assert!(
        t,
        buf[..512].iter().all(|b| *b == 0),
        "bytes before the buffer were written"
    );
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned), (0, 0));
    kunit_assert!(t, d.listed > 0 && d.listed == d.unlisted);
    Ok(())
}

/// A large transfer on a 4096-byte-block disk from memory aligned to 512 but not to 4096: it is
/// split into several bios, each a whole number of blocks, and the bytes are right.
fn split_bios_block_aligned(t: &Test) -> CaseResult {
    split_bios_block_aligned_on(t, test_disk)
}

fn split_bios_block_aligned_on(t: &Test, mk: fn(u32) -> Result<Disk<TestDriver>>) -> CaseResult {
    use crate::abstractions::iov::UserVec;
    let disk = mk(4096)?;
    // 512 segments of one page each, 512 bytes into every other page of the mapping: a page
    // lies between two of them, so no two can share a bio segment and the 512 need more than
    // one bio (`BIO_MAX_VECS`, 256) however the memory is backed (base pages that happen to be
    // contiguous, a huge page) and whatever the page size.
    const N: usize = 512;
    let len = N * PAGE_SIZE;
    let map_len = 2 * N * PAGE_SIZE + PAGE_SIZE;
    let addr = t.vm_mmap(map_len, true, true)?;
    let seg_at = |i: usize| addr + 2 * i * PAGE_SIZE + 512;
    let zero = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
    let mut w = UserSlice::new(addr, map_len).writer();
    for _ in 0..map_len / PAGE_SIZE {
        w.write_slice(&zero)?;
    }
    let mut segs = KVec::with_capacity(N, GFP_KERNEL)?;
    for i in 0..N {
        segs.push(UserVec::new(seg_at(i), PAGE_SIZE), GFP_KERNEL)?;
    }
    let before = COUNTERS.snapshot();
    let mut it = IovIter::<Dest>::iovec(&segs)?;
    let done = submit_iter_wait(disk.target(), &mut it, 0, len)?;
    kunit_assert_eq!(t, done.bytes, len);
    kunit_assert!(t, done.bios >= 2, "{} bio(s)", done.bios);
    kunit_assert!(
        t,
        !disk.driver().misaligned.load(Relaxed),
        "a request was not whole blocks"
    );
    kunit_assert!(t, it.is_empty());
    let mut back = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
    for i in 0..N {
        UserSlice::new(seg_at(i), PAGE_SIZE)
            .reader()
            .read_slice(&mut back)?;
        let at = i * PAGE_SIZE;
        kunit_assert!(
            t,
            back.iter()
                .enumerate()
                .all(|(j, b)| *b == byte_at((at + j) as u64)),
            "wrong bytes in [{}, {})",
            at,
            at + PAGE_SIZE
        );
    }
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert!(t, d.pinned == d.unpinned && d.pinned >= N as u64);
    Ok(())
}

/// A bio refuses batches of another mode than its own (a referenced batch among pinned pages,
/// a pinned one among referenced pages, a listed one among pinned pages) and batches that do not
/// fit; each refused batch comes back intact.
fn bio_refuses_wrong_batches(t: &Test) -> CaseResult {
    let disk = test_disk(512)?;
    let addr = t.vm_mmap(8 * PAGE_SIZE, true, true)?;
    // Declared before the bio: a bio holding listed pages may not outlive their memory.
    let mut buf = [0u8; 512];
    let mut segs = [Kvec::<Dest>::new(&mut buf)];
    let mut s4 = slots::<1>();
    let mut s1 = slots::<1>();
    let mut big = slots::<8>();
    let mut fit = slots::<8>();
    let before = COUNTERS.snapshot();
    // The partition scan at add_disk() may have read the disk already.
    let requests = disk.driver().requests.load(Relaxed);
    // Small bios use the bio's inline vectors: the room is what the block layer gave.
    let mut bio = Bio::<Dest>::new(disk.target(), 0, 1)?;
    let room = bio.room();
    kunit_assert!(t, (1..8).contains(&room), "room {}", room);
    {
        // Pinned, then referenced: refused; referenced, then pinned: refused.
        let mut mixed = Bio::<Dest>::new(disk.target(), 0, 4)?;
        let mut sp = slots::<1>();
        let p = pin_user_pages::<Dest>(
            &UserMm::current()?,
            addr,
            PAGE_SIZE,
            Pin::ShortTerm,
            &mut sp,
        )?;
        kunit_assert!(t, mixed.add(p).is_ok());
        let r = get_user_pages::<Dest>(&UserMm::current()?, addr, PAGE_SIZE, &mut s1)?;
        let r = match mixed.add(r) {
            Err(r) => r,
            Ok(()) => {
                kunit_assert!(t, false, "a referenced batch joined pinned pages");
                return Ok(());
            }
        };
        kunit_assert_eq!(t, r.nr_pages(), 1);
        drop(mixed);
        let mut refd = Bio::<Dest>::new(disk.target(), 0, 4)?;
        kunit_assert!(t, refd.add(r).is_ok());
        let mut sp = slots::<1>();
        let p = pin_user_pages::<Dest>(
            &UserMm::current()?,
            addr,
            PAGE_SIZE,
            Pin::ShortTerm,
            &mut sp,
        )?;
        kunit_assert!(
            t,
            refd.add(p).is_err(),
            "a pinned batch joined referenced pages"
        );
        drop(refd);
    }
    let too_big = pin_user_pages::<Dest>(
        &UserMm::current()?,
        addr,
        (room + 1) * PAGE_SIZE,
        Pin::ShortTerm,
        &mut big,
    )?;
    kunit_assert!(
        t,
        bio.add(too_big).is_err(),
        "a batch larger than the room was taken"
    );
    let fits = pin_user_pages::<Dest>(
        &UserMm::current()?,
        addr,
        room * PAGE_SIZE,
        Pin::ShortTerm,
        &mut fit,
    )?;
    kunit_assert!(t, bio.add(fits).is_ok());
    kunit_assert_eq!(t, bio.room(), 0);
    let mut it = IovIter::kvec(&mut segs)?;
    let listed = it.extract(&mut s4, usize::MAX)?;
    kunit_assert!(
        t,
        bio.add(listed).is_err(),
        "a listed batch joined pinned ones"
    );
    // Never submitted: dropping the bio releases the pages it took.
    drop(bio);
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.referenced, d.unreferenced), (1, 1));
    let pinned = (2 * room + 1 + 2) as u64;
    kunit_assert_eq!(t, (d.pinned, d.unpinned), (pinned, pinned));
    kunit_assert_eq!(t, disk.driver().requests.load(Relaxed), requests);
    Ok(())
}

/// The same page pinned by two batches in one bio (two iovecs in one page) is unpinned twice.
fn same_page_twice_in_one_bio(t: &Test) -> CaseResult {
    use crate::abstractions::iov::UserVec;
    let disk = test_disk(512)?;
    let addr = t.vm_mmap(PAGE_SIZE, true, true)?;
    UserSlice::new(addr, PAGE_SIZE)
        .writer()
        .write_slice(&[0u8; 4096])?;
    let mut hold = slots::<1>();
    let h = pin_user_pages::<Source>(
        &UserMm::current()?,
        addr,
        PAGE_SIZE,
        Pin::ShortTerm,
        &mut hold,
    )?;
    let refs: i32 = h.pages().map(|p| p.ref_count()).sum();
    let segs = [UserVec::new(addr, 1024), UserVec::new(addr + 1024, 1024)];
    let mut it = IovIter::<Dest>::iovec(&segs)?;
    let done = submit_iter_wait(disk.target(), &mut it, 0, 2048)?;
    kunit_assert_eq!(t, (done.bytes, done.bios), (2048, 1));
    kunit_assert_eq!(t, h.pages().map(|p| p.ref_count()).sum::<i32>(), refs);
    Ok(())
}

/// With completion delayed (the transfer happens 20 ms after queueing, from a worker), the
/// synchronous path still returns only after every bio has completed: the bytes are there and
/// every pin has been dropped by the time it returns.
fn delayed_completion_is_waited_for(t: &Test) -> CaseResult {
    let disk = test_disk_delayed(512, 20_000)?;
    let mut buf = KVec::from_elem(0u8, 64 * 1024, GFP_KERNEL)?;
    {
        let mut segs = [Kvec::<Dest>::new(&mut buf)];
        let mut it = IovIter::kvec(&mut segs)?;
        let done = submit_iter_wait(disk.target(), &mut it, 0, 64 * 1024)?;
        kunit_assert_eq!(t, done.bytes, 64 * 1024);
    }
    kunit_assert!(
        t,
        buf.iter().enumerate().all(|(i, b)| *b == byte_at(i as u64))
    );
    let len = 16 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    let before = COUNTERS.snapshot();
    let mut it = IovIter::<Dest>::ubuf(addr, len)?;
    let done = submit_iter_wait(disk.target(), &mut it, 0, len)?;
    kunit_assert_eq!(t, done.bytes, len);
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned), (16, 16));
    let mut back = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    UserSlice::new(addr, len).reader().read_slice(&mut back)?;
    kunit_assert!(
        t,
        back.iter()
            .enumerate()
            .all(|(i, b)| *b == byte_at(i as u64))
    );
    Ok(())
}

/// The synchronous path with the bio on the caller's stack ([`BioSlot`]): a read into pinned user
/// pages spanning three pages gets the disk's bytes, dirties and unpins each page once; a write
/// from kernel memory lists its pages; a disk error comes back with the pins dropped; a transfer
/// needing more pages than the slot's segments is refused with nothing done (the iterator as it
/// was, nothing pinned), for the caller to take the general path; an inline bio dropped unsent
/// releases its pages; and a delayed completion is waited for.
fn inline_bio(t: &Test) -> CaseResult {
    use crate::abstractions::iov::UserVec;
    let disk = test_disk(512)?;
    let len = 2 * PAGE_SIZE;
    let map = t.vm_mmap(4 * PAGE_SIZE, true, true)?;
    UserSlice::new(map, 4 * PAGE_SIZE)
        .writer()
        .write_slice(&KVec::from_elem(3u8, 4 * PAGE_SIZE, GFP_KERNEL)?)?;
    let mut hold = slots::<4>();
    let h = pin_user_pages::<Source>(
        &UserMm::current()?,
        map,
        4 * PAGE_SIZE,
        Pin::ShortTerm,
        &mut hold,
    )?;
    let refs: i32 = h.pages().map(|p| p.ref_count()).sum();
    h.pages().for_each(|p| _ = p.test_clear_dirty());

    // Read at 512 bytes into the mapping: three pages.
    let before = COUNTERS.snapshot();
    let mut slot = BioSlot::new();
    let mut it = IovIter::<Dest>::ubuf(map + 512, len)?;
    let n = submit_iter_wait_inline(&mut slot, disk.target(), &mut it, 8, len)?;
    kunit_assert_eq!(t, n, Some(len));
    kunit_assert_eq!(t, it.len(), 0);
    let mut back = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    UserSlice::new(map + 512, len)
        .reader()
        .read_slice(&mut back)?;
    kunit_assert!(
        t,
        back.iter()
            .enumerate()
            .all(|(i, b)| *b == byte_at(8 * 512 + i as u64))
    );
    let dirty: KVec<bool> = {
        let mut v = KVec::new();
        for p in h.pages() {
            v.push(p.is_dirty(), GFP_KERNEL)?;
        }
        v
    };
    kunit_assert_eq!(t, &dirty[..], &[true, true, true, false][..]);
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned, d.dirtied), (3, 3, 3));

    // A write from kernel memory: listed, and the disk sees the bytes.
    let mut data = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
    for (i, b) in data.iter_mut().enumerate() {
        *b = byte_at(4096 + i as u64);
    }
    let before = COUNTERS.snapshot();
    {
        let mut segs = [Kvec::<Source>::new(&data)];
        let mut it = IovIter::kvec(&mut segs)?;
        let n = submit_iter_wait_inline(&mut slot, disk.target(), &mut it, 8, PAGE_SIZE)?;
        kunit_assert_eq!(t, n, Some(PAGE_SIZE));
    }
    kunit_assert!(
        t,
        !disk.driver().mismatch.load(Relaxed),
        "the disk saw other bytes"
    );
    listed_balanced(t, &before)?;

    // More pages than segments: refused, nothing held, the iterator unchanged.
    let segs: [UserVec; INLINE_VECS + 1] =
        core::array::from_fn(|i| UserVec::new(map + i * 512 + (i % 4) * PAGE_SIZE, 512));
    let before = COUNTERS.snapshot();
    let requests = disk.driver().requests.load(Relaxed);
    let mut it = IovIter::<Dest>::iovec(&segs)?;
    let want = it.len();
    let n = submit_iter_wait_inline(&mut slot, disk.target(), &mut it, 0, want)?;
    kunit_assert_eq!(t, n, None);
    kunit_assert_eq!(t, it.len(), want);
    kunit_assert_eq!(t, disk.driver().requests.load(Relaxed), requests);
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert!(
        t,
        d.pinned > 0 && d.pinned == d.unpinned,
        "pins {:?}",
        (d.pinned, d.unpinned)
    );
    // The general path takes it.
    let done = submit_iter_wait(disk.target(), &mut it, 0, want)?;
    kunit_assert_eq!(t, done.bytes, want);

    // Dropped unsent: its pages are released.
    let before = COUNTERS.snapshot();
    {
        let mut s = slots::<2>();
        let mut bio = Bio::<Source, _>::new_inline(&mut slot, disk.target(), 0);
        kunit_assert_eq!(t, bio.room(), INLINE_VECS);
        let b = pin_user_pages::<Source>(
            &UserMm::current()?,
            map,
            2 * PAGE_SIZE,
            Pin::ShortTerm,
            &mut s,
        )?;
        kunit_assert!(t, bio.add(b).is_ok());
        kunit_assert_eq!(t, bio.len(), 2 * PAGE_SIZE);
    }
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned, d.dirtied), (2, 2, 0));

    // A failing disk: the error, and every pin dropped.
    disk.driver().fail.store(true, Relaxed);
    let before = COUNTERS.snapshot();
    let mut it = IovIter::<Dest>::ubuf(map, len)?;
    kunit_assert_eq!(
        t,
        submit_iter_wait_inline(&mut slot, disk.target(), &mut it, 0, len).err(),
        Some(EIO)
    );
    disk.driver().fail.store(false, Relaxed);
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned), (2, 2));
    kunit_assert_eq!(t, h.pages().map(|p| p.ref_count()).sum::<i32>(), refs);
    drop(h);

    // Completion 20 ms later, from a worker: waited for. (One test disk at a time.)
    drop(disk);
    let slow = test_disk_delayed(512, 20_000)?;
    let mut buf = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
    {
        let mut segs = [Kvec::<Dest>::new(&mut buf)];
        let mut it = IovIter::kvec(&mut segs)?;
        let n = submit_iter_wait_inline(&mut slot, slow.target(), &mut it, 1, PAGE_SIZE)?;
        kunit_assert_eq!(t, n, Some(PAGE_SIZE));
    }
    kunit_assert!(
        t,
        buf.iter()
            .enumerate()
            .all(|(i, b)| *b == byte_at(512 + i as u64))
    );
    Ok(())
}

/// A pooled read bio of user pages pinned for writing (`pin_user_pages::<Dest>`), submitted
/// asynchronously with an `Arc` completion (`Bio::submit`, which takes only bios of `'static`
/// memory): the completion hears of it once, the bytes are the disk's, and every page is dirtied
/// and unpinned once, by the time the wait is over.
fn dest_pin_read_bio_submitted(t: &Test) -> CaseResult {
    let disk = test_disk(512)?;
    let len = 4 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    UserSlice::new(addr, len)
        .writer()
        .write_slice(&KVec::from_elem(0u8, len, GFP_KERNEL)?)?;
    let mut hold = slots::<4>();
    let h = pin_user_pages::<Source>(&UserMm::current()?, addr, len, Pin::ShortTerm, &mut hold)?;
    let refs: i32 = h.pages().map(|p| p.ref_count()).sum();
    h.pages().for_each(|p| _ = p.test_clear_dirty());
    let waiter = Arc::pin_init(Waiter::new(), GFP_KERNEL)?;
    let before = COUNTERS.snapshot();
    let mut s = slots::<4>();
    let batch = pin_user_pages::<Dest>(&UserMm::current()?, addr, len, Pin::ShortTerm, &mut s)?;
    let mut bio = Bio::<Dest>::new(disk.target(), 8, 4)?;
    if bio.add(batch).is_err() {
        kunit_assert!(t, false, "a destination batch was refused by a read bio");
    }
    kunit_assert_eq!(t, bio.len(), len);
    bio.submit(waiter.clone());
    let done = waiter.wait()?;
    kunit_assert_eq!(t, (done.bytes, done.bios), (len, 1));
    let mut back = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    UserSlice::new(addr, len).reader().read_slice(&mut back)?;
    kunit_assert!(
        t,
        back.iter()
            .enumerate()
            .all(|(i, b)| *b == byte_at(8 * 512 + i as u64)),
        "the read did not bring the disk's bytes"
    );
    kunit_assert!(t, h.pages().all(|p| p.is_dirty()));
    kunit_assert_eq!(t, h.pages().map(|p| p.ref_count()).sum::<i32>(), refs);
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned, d.dirtied), (4, 4, 4));
    Ok(())
}

/// Counts the bios that reported to it.
struct Heard(AtomicUsize);

impl Completion for Heard {
    fn bio_submitted(&self, _bytes: usize) {}
    fn bio_done(&self, _result: Result) {
        self.0.fetch_add(1, Relaxed);
    }
}

/// A write bio submitted asynchronously (`Bio::submit`) to a block device held by a `Bdev`
/// (the test disk opened by path, its completions 200 ms late), and the `Bdev` dropped at once:
/// the drop returns only after the bio has completed and reported, and its pages are unpinned.
fn bdev_drop_waits_for_bios(t: &Test) -> CaseResult {
    let disk = test_disk_delayed(512, 200_000)?;
    let bdev = Bdev::open(c_str!("/dev/iovxt0"))?;
    let len = 2 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    let heard = Arc::new(Heard(AtomicUsize::new(0)), GFP_KERNEL)?;
    let before = COUNTERS.snapshot();
    let mut s = slots::<2>();
    let batch = pin_user_pages::<Source>(&UserMm::current()?, addr, len, Pin::ShortTerm, &mut s)?;
    let mut bio = Bio::<Source>::new(bdev.target(), 8, 2)?;
    if bio.add(batch).is_err() {
        kunit_assert!(t, false, "a source batch was refused by a write bio");
    }
    bio.submit(heard.clone());
    drop(bdev);
    let heard = heard.0.load(Relaxed);
    kunit_assert!(
        t,
        heard == 1,
        "the Bdev went before its bio ({} heard)",
        heard
    );
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned), (2, 2));
    drop(disk);
    Ok(())
}

/// A source KVEC (kernel memory lent for reading) in an inline write bio: listed, the disk sees
/// its bytes, the buffer is untouched, nothing pinned.
fn source_kvec_write_bio(t: &Test) -> CaseResult {
    let disk = test_disk(512)?;
    let len = 2 * PAGE_SIZE;
    let mut data = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    for (i, b) in data.iter_mut().enumerate() {
        *b = byte_at(4096 + i as u64);
    }
    let requests = disk.driver().requests.load(Relaxed);
    let before = COUNTERS.snapshot();
    let mut segs = [Kvec::<Source>::new(&data)];
    let mut it = IovIter::kvec(&mut segs)?;
    let mut s = slots::<INLINE_VECS>();
    let batch = it.extract(&mut s, usize::MAX)?;
    kunit_assert_eq!(t, batch.len(), len);
    let mut slot = BioSlot::new();
    let mut bio = Bio::<Source, _>::new_inline(&mut slot, disk.target(), 8);
    if bio.add(batch).is_err() {
        kunit_assert!(t, false, "a source batch was refused by a write bio");
    }
    kunit_assert_eq!(t, bio.submit_wait()?, len);
    kunit_assert!(t, disk.driver().requests.load(Relaxed) > requests);
    kunit_assert!(
        t,
        !disk.driver().mismatch.load(Relaxed),
        "the disk saw other bytes"
    );
    kunit_assert!(
        t,
        data.iter()
            .enumerate()
            .all(|(i, b)| *b == byte_at(4096 + i as u64))
    );
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert!(
        t,
        d.pinned == 0 && d.listed > 0 && d.listed == d.unlisted,
        "{:?}",
        d
    );
    Ok(())
}

/// A sector past the disk, up to `u64::MAX`, is refused before anything is pinned or submitted:
/// `EINVAL` for a read or a range crossing the end, `ENOSPC` for a write starting past it (as
/// `blkdev_write_iter()`), with no overflow of the sector arithmetic; the iterator is untouched.
fn hostile_sector_refused(t: &Test) -> CaseResult {
    let disk = test_disk(512)?;
    let cap = disk.target().capacity();
    kunit_assert_eq!(t, cap, 64 << 11);
    let len = 2 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    let before = COUNTERS.snapshot();
    let requests = disk.driver().requests.load(Relaxed);
    for sector in [u64::MAX, u64::MAX - 1, u64::MAX >> 9, cap, cap - 1] {
        let mut it = IovIter::<Dest>::ubuf(addr, len)?;
        kunit_assert_eq!(
            t,
            submit_iter_wait(disk.target(), &mut it, sector, len).err(),
            Some(EINVAL)
        );
        kunit_assert_eq!(t, it.len(), len);
        let mut slot = BioSlot::new();
        kunit_assert_eq!(
            t,
            submit_iter_wait_inline(&mut slot, disk.target(), &mut it, sector, len).err(),
            Some(EINVAL)
        );
        let mut it = IovIter::<Source>::ubuf(addr, len)?;
        let want = if sector >= cap { ENOSPC } else { EINVAL };
        kunit_assert_eq!(
            t,
            submit_iter_wait(disk.target(), &mut it, sector, len).err(),
            Some(want)
        );
        kunit_assert_eq!(t, it.len(), len);
    }
    kunit_assert_eq!(t, COUNTERS.snapshot().since(&before).pinned, 0);
    kunit_assert_eq!(t, disk.driver().requests.load(Relaxed), requests);
    // The last whole sectors are fine.
    let mut it = IovIter::<Dest>::ubuf(addr, len)?;
    let sectors = (len / 512) as u64;
    kunit_assert_eq!(
        t,
        submit_iter_wait(disk.target(), &mut it, cap - sectors, len)?.bytes,
        len
    );
    Ok(())
}

/// Since `before`: pages were listed, as many unlisted, and none pinned.
fn listed_balanced(t: &Test, before: &Snapshot) -> CaseResult {
    let d = COUNTERS.snapshot().since(before);
    kunit_assert!(
        t,
        d.pinned == 0 && d.listed > 0 && d.listed == d.unlisted,
        "listed {:?}",
        (d.pinned, d.listed, d.unlisted)
    );
    Ok(())
}

/// Four freshly allocated pages.
fn four_pages() -> Result<[Page; 4]> {
    Ok([
        Page::alloc_page(GFP_KERNEL)?,
        Page::alloc_page(GFP_KERNEL)?,
        Page::alloc_page(GFP_KERNEL)?,
        Page::alloc_page(GFP_KERNEL)?,
    ])
}

/// Whether the next `len` bytes of `it` are the test disk's bytes from byte `pos` on (the
/// iterator advances past them).
fn holds_disk_bytes(it: &mut IovIter<'_, Source>, len: usize, pos: u64) -> Result<bool> {
    let mut back = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    Ok(it.copy_from_iter(&mut back) == len
        && back
            .iter()
            .enumerate()
            .all(|(i, b)| *b == byte_at(pos + i as u64)))
}

/// BVEC segments over four pages, the first from 512 bytes in, the last to 512 bytes before
/// its end.
fn bvec_segs<'a, D: Direction>(
    pages: &'a mut [Page; 4],
    mk: impl Fn(&'a mut Page, usize, usize) -> Result<Bvec<'a, D>>,
) -> Result<[Bvec<'a, D>; 4]> {
    let [p0, p1, p2, p3] = pages;
    Ok([
        mk(p0, 512, PAGE_SIZE - 512)?,
        mk(p1, 0, PAGE_SIZE)?,
        mk(p2, 0, PAGE_SIZE)?,
        mk(p3, 0, PAGE_SIZE - 512)?,
    ])
}

/// A BVEC iterator goes into one bio over its own segments, without extraction page by page
/// (`bio_iov_bvec_set()`): the bio has the iterator's four segments and no room for more, the
/// iterator advances past the bytes and can be reverted; reads through `submit_iter_wait`, of
/// the whole range and from 512 bytes into it (an offset into the iterator's first segment),
/// bring the disk's bytes in one bio each and a write carries them back; the pages are listed,
/// none pinned, and a length off the block size is refused as before (`EINVAL`, nothing
/// submitted).
fn bvec_iter_one_bio(t: &Test) -> CaseResult {
    let disk = test_disk(512)?;
    let mut pages = four_pages()?;
    let len = 4 * PAGE_SIZE - 1024;
    let before = COUNTERS.snapshot();
    let requests = disk.driver().requests.load(Relaxed);
    {
        let mut segs = bvec_segs(&mut pages, Bvec::<Dest>::new)?;
        let mut it = IovIter::bvec(&mut segs)?;
        let Some(bio) = Bio::new_bvec(disk.target(), 16, &mut it, len)? else {
            kunit_assert!(t, false, "the segments were not taken");
            return Ok(());
        };
        kunit_assert_eq!(t, (bio.nr_segments(), bio.len(), bio.room()), (4, len, 0));
        kunit_assert!(t, it.is_empty());
        drop(bio);
        kunit_assert!(t, it.revert(len).is_ok());
        kunit_assert_eq!(t, it.len(), len);
        // The whole range first, then from 512 bytes on (the iterator's offset into its first
        // segment), from the next sector: byte `k` of the range is the disk's `16 * 512 + k`
        // either way.
        let done = submit_iter_wait(disk.target(), &mut it, 16, len)?;
        kunit_assert_eq!(t, (done.bytes, done.bios), (len, 1));
        kunit_assert!(t, it.revert(len).is_ok());
        kunit_assert_eq!(t, it.advance(512), 512);
        let done = submit_iter_wait(disk.target(), &mut it, 17, len - 512)?;
        kunit_assert_eq!(t, (done.bytes, done.bios), (len - 512, 1));
    }
    {
        let mut segs = bvec_segs(&mut pages, |p, o, n| Bvec::<Source>::new(p, o, n))?;
        let mut it = IovIter::bvec(&mut segs)?;
        kunit_assert!(
            t,
            holds_disk_bytes(&mut it, len, 16 * 512)?,
            "the read did not bring the disk's bytes"
        );
    }
    {
        let mut segs = bvec_segs(&mut pages, |p, o, n| Bvec::<Source>::new(p, o, n))?;
        let mut it = IovIter::bvec(&mut segs)?;
        let done = submit_iter_wait(disk.target(), &mut it, 16, len)?;
        kunit_assert_eq!(t, (done.bytes, done.bios), (len, 1));
        kunit_assert!(
            t,
            !disk.driver().mismatch.load(Relaxed),
            "the disk saw other bytes"
        );
    }
    {
        let mut segs = bvec_segs(&mut pages, |p, o, n| Bvec::<Source>::new(p, o, n))?;
        let mut it = IovIter::bvec(&mut segs)?;
        let n = disk.driver().requests.load(Relaxed);
        kunit_assert_eq!(
            t,
            submit_iter_wait(disk.target(), &mut it, 16, len - 100).err(),
            Some(EINVAL)
        );
        kunit_assert_eq!(t, disk.driver().requests.load(Relaxed), n);
    }
    kunit_assert!(t, disk.driver().requests.load(Relaxed) > requests);
    listed_balanced(t, &before)?;
    Ok(())
}

/// Fails each allocation in turn (`fail-nth`, from the first up to `limit`) while `make` builds
/// a bio: `Some(error)` for the first attempt that gives an error, `None` if none did (every
/// fault injection point of `make` failed once, or `limit` was reached). `make` gives back
/// what it built and undoes what it took.
fn first_error_under_faults(
    t: &Test,
    limit: u32,
    mut make: impl FnMut() -> Result,
) -> Option<Error> {
    for n in 1..=limit {
        t.fail_nth(n);
        let r = make();
        let left = t.fail_nth(0).unwrap_or(0);
        if let Err(e) = r {
            return Some(e);
        }
        if left != 0 {
            // The n-th point was not reached: each point failed once, and nothing gave an error.
            return None;
        }
    }
    None
}

/// A BVEC bio (`Bio::new_bvec`) for a block device held by a `Bdev` (the test disk opened by
/// path, its completions 20 ms late) is counted in the `Bdev`'s bios in flight as a pooled bio
/// (`Bio::new`) is: a read and a write of a BVEC iterator through the `Bdev`'s target go in one
/// bio each and carry the disk's bytes, and the `Bdev` is then dropped (its wait for its bios
/// returns); the bio takes the record of the count when it is made, so with allocations failed
/// in turn `Bio::new_bvec` for the `Bdev`'s target fails with `ENOMEM` at one of them, taking
/// nothing from the iterator, as `Bio::new` for that target does, while for the disk's own
/// target (whose bios the disk's deletion waits for, uncounted) none makes it fail. Listed pages
/// balance, none is pinned.
fn bvec_bio_counted_on_bdev(t: &Test) -> CaseResult {
    let disk = test_disk_delayed(512, 20_000)?;
    let bdev = Bdev::open(c_str!("/dev/iovxt0"))?;
    let mut pages = four_pages()?;
    let len = 4 * PAGE_SIZE - 1024;
    let before = COUNTERS.snapshot();
    let requests = disk.driver().requests.load(Relaxed);
    {
        let mut segs = bvec_segs(&mut pages, Bvec::<Dest>::new)?;
        let mut it = IovIter::bvec(&mut segs)?;
        let done = submit_iter_wait(bdev.target(), &mut it, 16, len)?;
        kunit_assert_eq!(t, (done.bytes, done.bios, it.len()), (len, 1, 0));
    }
    {
        let mut segs = bvec_segs(&mut pages, |p, o, n| Bvec::<Source>::new(p, o, n))?;
        let mut it = IovIter::bvec(&mut segs)?;
        kunit_assert!(
            t,
            holds_disk_bytes(&mut it, len, 16 * 512)?,
            "the read did not bring the disk's bytes"
        );
        kunit_assert!(t, it.revert(len).is_ok());
        let done = submit_iter_wait(bdev.target(), &mut it, 16, len)?;
        kunit_assert_eq!(t, (done.bytes, done.bios, it.len()), (len, 1, 0));
        kunit_assert!(
            t,
            !disk.driver().mismatch.load(Relaxed),
            "the disk saw other bytes"
        );
    }
    kunit_assert!(t, disk.driver().requests.load(Relaxed) > requests);
    if t.fail_nth(0).is_some() {
        let mut segs = bvec_segs(&mut pages, |p, o, n| Bvec::<Source>::new(p, o, n))?;
        let mut it = IovIter::bvec(&mut segs)?;
        // A pooled bio for the `Bdev`'s target: its record of the count may fail.
        let pooled =
            first_error_under_faults(t, 64, || Bio::<Source>::new(bdev.target(), 16, 1).map(drop));
        if pooled.is_none() {
            // Sleeping allocations are not failed (`failslab/ignore-gfp-wait` is `Y`).
            t.skip(c_str!("no sleeping allocation failed"));
            return Ok(());
        }
        kunit_assert_eq!(t, pooled, Some(ENOMEM));
        let mut bvec = |target| {
            first_error_under_faults(t, 64, || {
                // Not taken, or not as the iterator holds it: `EINVAL`, which fails the case.
                let bio = Bio::new_bvec(target, 16, &mut it, len)?.ok_or(EINVAL)?;
                let whole = (bio.len(), bio.nr_segments()) == (len, 4);
                drop(bio);
                it.revert(len)?;
                if whole {
                    Ok(())
                } else {
                    Err(EINVAL)
                }
            })
        };
        let on_bdev = bvec(bdev.target());
        let on_disk = bvec(disk.target());
        // The first error of a BVEC bio under faults, for the `Bdev` and for the disk.
        kunit_assert_eq!(t, (on_bdev, on_disk), (Some(ENOMEM), None));
        kunit_assert_eq!(t, it.len(), len);
    }
    drop(bdev);
    drop(disk);
    listed_balanced(t, &before)?;
    Ok(())
}

/// A BVEC iterator taken into bios in steps that end inside a segment, at a segment's end and
/// across two segments: each bio has the segments its bytes span, the iterator is left exactly
/// after them (the rest copied out of it is the rest of the data), a range off the alignment
/// asked for is refused with the iterator untouched, and a revert of everything gives the whole
/// data again. Listed pages balance.
fn bvec_bio_takes_in_steps(t: &Test) -> CaseResult {
    let disk = test_disk(512)?;
    let mut pages = four_pages()?;
    let len = 4 * PAGE_SIZE - 1024;
    let mut data = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i * 7 + i / 509) as u8;
    }
    {
        let mut segs = bvec_segs(&mut pages, Bvec::<Dest>::new)?;
        let mut it = IovIter::bvec(&mut segs)?;
        kunit_assert_eq!(t, it.copy_to_iter(&data), len);
    }
    let before = COUNTERS.snapshot();
    let mut segs = bvec_segs(&mut pages, |p, o, n| Bvec::<Source>::new(p, o, n))?;
    let mut it = IovIter::bvec(&mut segs)?;
    // The first segment is `PAGE_SIZE - 512` bytes long.
    let first = PAGE_SIZE - 512;
    let steps = [(1536, 1), (first - 1536, 1), (PAGE_SIZE + 512, 2)];
    let mut taken = 0;
    for (n, nsegs) in steps {
        // Not a multiple of 1024 at 512 bytes into its first page: refused, nothing taken.
        if taken == 0 {
            let r = Bio::new_bvec_aligned(disk.target(), 0, &mut it, n, 1023, 511)?;
            kunit_assert!(
                t,
                r.is_none(),
                "a range at 512 bytes taken with a 1024-byte mask"
            );
            kunit_assert_eq!(t, it.len(), len);
        }
        let Some(bio) = Bio::new_bvec_aligned(disk.target(), 0, &mut it, n, 511, 511)? else {
            kunit_assert!(t, false, "step of {} bytes not taken", n);
            return Ok(());
        };
        kunit_assert_eq!(t, (bio.len(), bio.nr_segments()), (n, nsegs));
        taken += n;
        kunit_assert_eq!(t, it.len(), len - taken);
    }
    let mut rest = KVec::from_elem(0u8, len - taken, GFP_KERNEL)?;
    kunit_assert_eq!(t, it.copy_from_iter(&mut rest), len - taken);
    kunit_assert!(
        t,
        rest[..] == data[taken..],
        "the iterator was not left after the bytes taken"
    );
    kunit_assert!(t, it.revert(len).is_ok());
    let mut all = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    kunit_assert_eq!(t, it.copy_from_iter(&mut all), len);
    kunit_assert!(
        t,
        all[..] == data[..],
        "the reverted iterator gave other bytes"
    );
    listed_balanced(t, &before)?;
    Ok(())
}

/// A BVEC bio that ends exactly at a segment's end leaves the iterator past the empty segments
/// after it, as `iov_iter_bvec_advance()` does: over segments of a page, an empty one and a
/// page, two bios of a page each take everything; the second holds the last page's segment.
fn bvec_bio_skips_empty_segments(t: &Test) -> CaseResult {
    let disk = test_disk(512)?;
    let a = Page::alloc_page(GFP_KERNEL)?;
    let b = Page::alloc_page(GFP_KERNEL)?;
    let before = COUNTERS.snapshot();
    {
        let mut segs = [
            Bvec::<Source>::new(&a, 0, PAGE_SIZE)?,
            Bvec::<Source>::new(&a, 0, 0)?,
            Bvec::<Source>::new(&b, 0, PAGE_SIZE)?,
        ];
        let mut it = IovIter::bvec(&mut segs)?;
        for left in [PAGE_SIZE, 0] {
            let Some(bio) = Bio::new_bvec(disk.target(), 0, &mut it, PAGE_SIZE)? else {
                kunit_assert!(
                    t,
                    false,
                    "a page not taken with {} bytes left",
                    left + PAGE_SIZE
                );
                return Ok(());
            };
            kunit_assert_eq!(
                t,
                (bio.len(), bio.nr_segments(), it.len()),
                (PAGE_SIZE, 1, left)
            );
        }
        kunit_assert!(t, it.revert(2 * PAGE_SIZE).is_ok());
        kunit_assert_eq!(t, it.len(), 2 * PAGE_SIZE);
    }
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert!(
        t,
        d.listed == 2 && d.unlisted == 2,
        "listed {:?}",
        (d.listed, d.unlisted)
    );
    Ok(())
}

/// A BVEC iterator goes into one bio over its own segments only if every segment starts on the
/// queue's DMA alignment (512 bytes) and is a whole number of blocks long, as the block device's
/// direct I/O requires (`blkdev_dio_invalid()`); otherwise it is extracted page by page.
/// Eight segments over one page make one bio when aligned; at 100 bytes into the page, or 256
/// bytes long, they are extracted into bios of a few segments (the pages the transfer can
/// span), so more than one. Listed pages balance either way.
fn bvec_misaligned_not_whole(t: &Test) -> CaseResult {
    let disk = test_disk(512)?;
    let page = Page::alloc_page(GFP_KERNEL)?;
    let before = COUNTERS.snapshot();
    let mut bios = [0usize; 3];
    for (i, (off, seg)) in [(0, 512), (100, 512), (0, 256)].into_iter().enumerate() {
        let mk = || Bvec::<Source>::new(&page, off, seg);
        let mut segs = [mk()?, mk()?, mk()?, mk()?, mk()?, mk()?, mk()?, mk()?];
        let len = segs.len() * seg;
        let mut it = IovIter::bvec(&mut segs)?;
        let done = submit_iter_wait(disk.target(), &mut it, 0, len)?;
        kunit_assert_eq!(t, (done.bytes, it.len()), (len, 0));
        bios[i] = done.bios;
    }
    kunit_assert!(
        t,
        bios[0] == 1 && bios[1] > 1 && bios[2] > 1,
        "bios {:?}",
        bios
    );
    listed_balanced(t, &before)?;
    Ok(())
}

/// A bio-based disk serves the same I/O as a blk-mq one: reads into pinned user pages (the
/// disk's bytes, each page dirtied, each pin dropped once), writes that carry the user's bytes,
/// errors that reach the caller with every pin dropped, kernel memory listed, and a large
/// transfer split into bios of whole blocks.
fn bio_based_serves_bios(t: &Test) -> CaseResult {
    read_dirties_and_unpins_on(t, test_disk_bio)?;
    write_unpins_clean_on(t, test_disk_bio)?;
    error_completion_releases_on(t, test_disk_bio)?;
    kvec_read_is_listed_on(t, test_disk_bio)?;
    split_bios_block_aligned_on(t, test_disk_bio)
}

/// A bio-based disk whose driver is busy: the bio is offered again until the driver takes it,
/// and then ends once, with the right bytes.
fn bio_based_busy_offered_again(t: &Test) -> CaseResult {
    let disk = test_disk_bio(512)?;
    disk.driver().busy.store(3, Relaxed);
    let mut buf = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
    let before = COUNTERS.snapshot();
    {
        let mut segs = [Kvec::<Dest>::new(&mut buf)];
        let mut it = IovIter::kvec(&mut segs)?;
        let done = submit_iter_wait(disk.target(), &mut it, 8, PAGE_SIZE)?;
        kunit_assert_eq!(t, (done.bytes, done.bios), (PAGE_SIZE, 1));
    }
    // Three refusals and the transfer (and any read of the new disk from user space, such as
    // a probe after its uevent).
    let requests = disk.driver().requests.load(Relaxed);
    kunit_assert!(t, requests >= 4, "{} requests", requests);
    kunit_assert_eq!(t, disk.driver().busy.load(Relaxed), 0);
    kunit_assert!(
        t,
        buf.iter()
            .enumerate()
            .all(|(i, b)| *b == byte_at(8 * 512 + i as u64))
    );
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert!(t, d.listed > 0 && d.listed == d.unlisted);
    Ok(())
}

/// A bio-based disk with lowered limits gets bios split to them by the block layer (the driver
/// sees none larger than `max_sectors`), the bytes are right, and an error of one piece is the
/// error of the whole.
fn bio_based_split_to_limits(t: &Test) -> CaseResult {
    let limits = Limits {
        max_sectors: (PAGE_SIZE >> 9) as u32,
        ..Limits::default()
    };
    let disk = test_disk_limited(512, 0, true, limits)?;
    let len = 4 * PAGE_SIZE;
    let mut buf = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    {
        let mut segs = [Kvec::<Dest>::new(&mut buf)];
        let mut it = IovIter::kvec(&mut segs)?;
        let done = submit_iter_wait(disk.target(), &mut it, 0, len)?;
        kunit_assert_eq!(t, done.bytes, len);
    }
    kunit_assert_eq!(t, disk.driver().max_len.load(Relaxed), PAGE_SIZE);
    kunit_assert!(t, disk.driver().requests.load(Relaxed) >= 4);
    kunit_assert!(
        t,
        buf.iter().enumerate().all(|(i, b)| *b == byte_at(i as u64))
    );
    // The first piece fails and the rest succeeds: the error reaches the caller (the piece
    // ends first and leaves its error in the rest, chained to it, which must keep it).
    disk.driver()
        .fail_below
        .store((PAGE_SIZE >> 9) as u64, Relaxed);
    let mut segs = [Kvec::<Dest>::new(&mut buf)];
    let mut it = IovIter::kvec(&mut segs)?;
    kunit_assert_eq!(
        t,
        submit_iter_wait(disk.target(), &mut it, 0, len).err(),
        Some(EIO)
    );
    Ok(())
}

/// A bio-based disk has no requests: a passthrough request on its queue is `EOPNOTSUPP`, and a
/// delay (which only requests have) is refused when the disk is made.
fn bio_based_no_requests(t: &Test) -> CaseResult {
    let disk = test_disk_bio(512)?;
    let cmd = Command {
        opcode: 1,
        flags: 0,
        sector: 0,
        result: 0,
    };
    kunit_assert_eq!(
        t,
        PtRequest::<Dest>::new(Queue::of(&disk), cmd).err(),
        Some(crate::abstractions::blk::not_supported())
    );
    kunit_assert_eq!(t, test_disk_of(512, 100, true).err(), Some(EINVAL));
    Ok(())
}

kunit_suite!(
    iovx_bio,
    [
        hostile_sector_refused,
        dest_pin_read_bio_submitted,
        bdev_drop_waits_for_bios,
        source_kvec_write_bio,
        delayed_completion_is_waited_for,
        read_dirties_and_unpins,
        write_unpins_clean,
        error_completion_releases,
        kvec_read_is_listed,
        split_bios_block_aligned,
        bio_refuses_wrong_batches,
        same_page_twice_in_one_bio,
        inline_bio,
        bvec_iter_one_bio,
        bvec_bio_takes_in_steps,
        bvec_bio_skips_empty_segments,
        bvec_bio_counted_on_bdev,
        bvec_misaligned_not_whole,
        disk_new_under_each_fault,
        bio_based_serves_bios,
        bio_based_busy_offered_again,
        bio_based_split_to_limits,
        bio_based_no_requests,
    ]
);
