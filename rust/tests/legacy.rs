// SPDX-License-Identifier: GPL-2.0

//! Suites `iovx_legacy` (user memory taken with page references, `FOLL_GET`, the behaviour
//! before `iov_iter_extract_pages()`), `iovx_dirty` (the pages of an asynchronous read dirtied
//! before the I/O and dirtied again when cleaned while it was in flight) and `iovx_thp` (pins of
//! pages of a transparent huge page counted in the folio's `_pincount`).
//!
//! Pins are told from references by the folio (a pin of a small folio adds
//! `GUP_PIN_COUNTING_BIAS` to its reference count, a reference adds one; `folio_maybe_dma_pinned()`)
//! and by the system-wide `nr_foll_pin_acquired` of `/proc/vmstat`, which every `FOLL_PIN` moves
//! and no `FOLL_GET` does.

#![deny(unsafe_code)]

use super::bio::{byte_at, test_disk, test_disk_delayed};
use crate::abstractions::bio::{flush_redirty, Bio, BioSlot, Inline};
use crate::abstractions::counters::COUNTERS;
use crate::abstractions::direct_io::{submit_iter_wait, submit_iter_wait_as, AsyncWaiter};
use crate::abstractions::extract::UserPages;
use crate::abstractions::gup::{get_user_pages, pin_user_pages, Pin, UserMm};
use crate::abstractions::iov::{Dest, IovIter, Source, UserVec};
use crate::abstractions::kunit::{CaseResult, Failure, Test};
use crate::abstractions::pages::{drain_lru, foll_pin_acquired, Mode, PageSlot, PIN_BIAS};
use crate::{kunit_assert, kunit_assert_eq, kunit_suite};
use core::sync::atomic::Ordering::Relaxed;
use kernel::{c_str, page::PAGE_SIZE, prelude::*, sync::Arc, uaccess::UserSlice};

fn slots<const N: usize>() -> [PageSlot; N] {
    core::array::from_fn(|_| PageSlot::EMPTY)
}

fn pattern(i: usize, seed: u8) -> u8 {
    (i as u8).wrapping_mul(29).wrapping_add(seed) ^ ((i >> 9) as u8)
}

/// Maps `pages` pages of user memory, writable, filled with `pattern(.., seed)`.
fn user_buffer(t: &Test, pages: usize, seed: u8) -> Result<usize> {
    let len = pages * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    let mut data = KVec::with_capacity(len, GFP_KERNEL)?;
    for i in 0..len {
        data.push(pattern(i, seed), GFP_KERNEL)?;
    }
    UserSlice::new(addr, len).writer().write_slice(&data)?;
    // The folios just faulted in sit in per-CPU batches, with a reference each, for a while.
    drain_lru();
    Ok(addr)
}

// ---- iovx_legacy ----

/// Extraction in the legacy mode references each page: its reference count rises by one (not
/// by the pin bias), it is not dma-pinned, `nr_foll_pin_acquired` does not move, and releasing
/// the batch brings the count back. The same range pinned moves all three, as a control.
fn legacy_extract_references(t: &Test) -> CaseResult {
    let addr = user_buffer(t, 4, 7)?;
    let len = 4 * PAGE_SIZE;
    let mut hold = slots::<4>();
    let h = get_user_pages::<Source>(&UserMm::current()?, addr, len, &mut hold)?;
    let mut base = KVec::new();
    for p in h.pages() {
        base.push(p.ref_count(), GFP_KERNEL)?;
    }
    let before = COUNTERS.snapshot();
    let pins = foll_pin_acquired();
    let mut s = slots::<4>();
    let mut it = IovIter::<Dest>::ubuf(addr + 100, len - 200)?;
    let b = it.extract_as(&mut s, usize::MAX, UserPages::Reference)?;
    kunit_assert_eq!(t, b.mode(), Mode::Referenced);
    kunit_assert_eq!(t, (b.offset(), b.len(), b.nr_pages()), (100, len - 200, 4));
    kunit_assert_eq!(t, it.len(), 0);
    for (i, p) in b.pages().enumerate() {
        kunit_assert_eq!(t, p.ref_count(), base[i] + 1);
        kunit_assert!(t, !p.maybe_dma_pinned(), "page {} looks pinned", i);
    }
    kunit_assert_eq!(t, foll_pin_acquired(), pins);
    let mut out = KVec::from_elem(0u8, len - 200, GFP_KERNEL)?;
    kunit_assert_eq!(t, b.copy_out(&mut out), len - 200);
    kunit_assert!(
        t,
        out.iter()
            .enumerate()
            .all(|(i, c)| *c == pattern(i + 100, 7))
    );
    b.release();
    for (i, p) in h.pages().enumerate() {
        kunit_assert_eq!(t, p.ref_count(), base[i]);
    }
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(
        t,
        (d.referenced, d.unreferenced, d.pinned, d.unpinned),
        (4, 4, 0, 0)
    );
    // Control: pinned, the same pages show the bias and move the system's pin counter.
    let mut it = IovIter::<Dest>::ubuf(addr, len)?;
    let b = it.extract_as(&mut s, usize::MAX, UserPages::Pin)?;
    kunit_assert_eq!(t, b.mode(), Mode::Pinned);
    for (i, p) in b.pages().enumerate() {
        kunit_assert_eq!(t, p.ref_count(), base[i] + PIN_BIAS);
        kunit_assert!(t, p.maybe_dma_pinned());
    }
    kunit_assert!(
        t,
        foll_pin_acquired() >= pins + 4,
        "pins not seen by vmstat"
    );
    drop(b);
    for (i, p) in h.pages().enumerate() {
        kunit_assert_eq!(t, p.ref_count(), base[i]);
    }
    Ok(())
}

/// Kernel memory is listed in the legacy mode as in the other: only user memory is referenced.
fn legacy_kernel_memory_listed(t: &Test) -> CaseResult {
    use crate::abstractions::iov::Kvec;
    let mut buf = KVec::from_elem(3u8, 2 * PAGE_SIZE, GFP_KERNEL)?;
    let mut segs = [Kvec::<Dest>::new(&mut buf)];
    let mut it = IovIter::kvec(&mut segs)?;
    let mut s = slots::<3>();
    let b = it.extract_as(&mut s, usize::MAX, UserPages::Reference)?;
    kunit_assert_eq!(t, b.mode(), Mode::Listed);
    Ok(())
}

/// A synchronous read in the legacy mode: the bytes are the disk's, each page is dirtied and its
/// reference put (the count is back), no pin was taken anywhere.
fn legacy_sync_read(t: &Test) -> CaseResult {
    let disk = test_disk(512)?;
    let len = 8 * PAGE_SIZE;
    let addr = user_buffer(t, 8, 1)?;
    let mut hold = slots::<8>();
    let h = get_user_pages::<Source>(&UserMm::current()?, addr, len, &mut hold)?;
    let mut refs = KVec::new();
    for p in h.pages() {
        p.test_clear_dirty();
        refs.push(p.ref_count(), GFP_KERNEL)?;
    }
    let before = COUNTERS.snapshot();
    let pins = foll_pin_acquired();
    let mut it = IovIter::<Dest>::ubuf(addr, len)?;
    let done = submit_iter_wait_as(disk.target(), &mut it, 16, len, UserPages::Reference)?;
    kunit_assert_eq!(t, done.bytes, len);
    kunit_assert_eq!(t, foll_pin_acquired(), pins);
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
        kunit_assert!(t, !p.maybe_dma_pinned());
    }
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(
        t,
        (d.referenced, d.unreferenced, d.dirtied, d.pinned),
        (8, 8, 8, 0)
    );
    Ok(())
}

/// A write in the legacy mode, synchronous and asynchronous: the disk gets the user's bytes, the
/// pages are not dirtied, their references are put, no pin was taken.
fn legacy_write(t: &Test) -> CaseResult {
    let disk = test_disk(512)?;
    let len = 4 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    let mut data = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    for (i, b) in data.iter_mut().enumerate() {
        *b = byte_at(8 * 512 + i as u64);
    }
    UserSlice::new(addr, len).writer().write_slice(&data)?;
    drain_lru();
    let mut hold = slots::<4>();
    let h = get_user_pages::<Source>(&UserMm::current()?, addr, len, &mut hold)?;
    let refs: i32 = h.pages().map(|p| p.ref_count()).sum();
    h.pages().for_each(|p| _ = p.test_clear_dirty());
    let before = COUNTERS.snapshot();
    let pins = foll_pin_acquired();
    let mut it = IovIter::<Source>::ubuf(addr, len)?;
    let done = submit_iter_wait_as(disk.target(), &mut it, 8, len, UserPages::Reference)?;
    kunit_assert_eq!(t, done.bytes, len);
    let w = Arc::pin_init(AsyncWaiter::new(), GFP_KERNEL)?;
    let mut s = slots::<4>();
    let batch = get_user_pages::<Source>(&UserMm::current()?, addr, len, &mut s)?;
    let mut bio = Bio::<Source>::new(disk.target(), 8, 4)?;
    kunit_assert!(t, bio.add(batch).is_ok(), "a referenced batch was refused");
    bio.submit(w.clone());
    kunit_assert_eq!(t, w.wait()?.bytes, len);
    kunit_assert!(
        t,
        !disk.driver().mismatch.load(Relaxed),
        "the disk got other bytes"
    );
    kunit_assert_eq!(t, foll_pin_acquired(), pins);
    kunit_assert!(
        t,
        !h.pages().any(|p| p.is_dirty()),
        "a write dirtied its source"
    );
    kunit_assert_eq!(t, h.pages().map(|p| p.ref_count()).sum::<i32>(), refs);
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(
        t,
        (d.referenced, d.unreferenced, d.dirtied, d.pinned),
        (8, 8, 0, 0)
    );
    Ok(())
}

kunit_suite!(
    iovx_legacy,
    [
        legacy_extract_references,
        legacy_kernel_memory_listed,
        legacy_sync_read,
        legacy_write,
    ]
);

// ---- iovx_dirty ----

/// One asynchronous read of four pages of user memory taken as `how` says, into a disk that
/// completes 200 ms after queueing. If `clean`, the pages are cleaned (as writeback of a shared
/// file mapping cleans them) while the read is in flight. Checks that the pages were dirtied at
/// submission, are dirty once the read has completed and the re-dirtying worker is flushed, hold
/// the disk's bytes, and were released the way they were taken; returns the `redirtied` count.
fn async_read(t: &Test, how: UserPages, clean: bool) -> core::result::Result<u64, Failure> {
    let disk = test_disk_delayed(512, 200_000)?;
    let len = 4 * PAGE_SIZE;
    let addr = user_buffer(t, 4, 9)?;
    let mut hold = slots::<4>();
    let h = get_user_pages::<Source>(&UserMm::current()?, addr, len, &mut hold)?;
    let refs: i32 = h.pages().map(|p| p.ref_count()).sum();
    h.pages().for_each(|p| _ = p.test_clear_dirty());
    let w = Arc::pin_init(AsyncWaiter::new(), GFP_KERNEL)?;
    let before = COUNTERS.snapshot();
    let pins = foll_pin_acquired();
    let mut s = slots::<4>();
    let batch = match how {
        UserPages::Pin => {
            pin_user_pages::<Dest>(&UserMm::current()?, addr, len, Pin::ShortTerm, &mut s)?
        }
        UserPages::Reference => get_user_pages::<Dest>(&UserMm::current()?, addr, len, &mut s)?,
    };
    let mut bio = Bio::<Dest>::new(disk.target(), 8, 4)?;
    if bio.add(batch).is_err() {
        kunit_assert!(t, false, "a destination batch was refused");
    }
    let requests = disk.driver().requests.load(Relaxed);
    bio.submit(w.clone());
    if !h.pages().all(|p| p.is_dirty()) {
        kunit_assert!(t, false, "the pages were not dirtied before the read");
    }
    if clean {
        h.pages().for_each(|p| _ = p.test_clear_dirty());
        if disk.driver().requests.load(Relaxed) != requests {
            kunit_assert!(t, false, "the read completed before the pages were cleaned");
        }
    }
    let done = w.wait()?;
    kunit_assert_eq!(t, done.bytes, len);
    flush_redirty();
    for (i, p) in h.pages().enumerate() {
        kunit_assert!(t, p.is_dirty(), "page {} not dirty after the read", i);
        kunit_assert!(t, !p.maybe_dma_pinned(), "page {} still pinned", i);
    }
    kunit_assert_eq!(t, h.pages().map(|p| p.ref_count()).sum::<i32>(), refs);
    let mut back = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    UserSlice::new(addr, len).reader().read_slice(&mut back)?;
    kunit_assert!(
        t,
        back.iter()
            .enumerate()
            .all(|(i, b)| *b == byte_at(8 * 512 + i as u64)),
        "the read did not bring the disk's bytes"
    );
    let d = COUNTERS.snapshot().since(&before);
    match how {
        UserPages::Pin => {
            kunit_assert_eq!(t, (d.pinned, d.unpinned, d.referenced), (4, 4, 0));
            kunit_assert!(t, foll_pin_acquired() >= pins + 4);
        }
        UserPages::Reference => {
            kunit_assert_eq!(t, (d.referenced, d.unreferenced, d.pinned), (4, 4, 0));
            kunit_assert_eq!(t, foll_pin_acquired(), pins);
        }
    }
    Ok(d.redirtied)
}

/// Pinned pages not cleaned during the read: released at completion, nothing re-dirtied.
fn async_read_pinned_dirty(t: &Test) -> CaseResult {
    kunit_assert_eq!(t, async_read(t, UserPages::Pin, false)?, 0);
    Ok(())
}

/// Pinned pages cleaned during the read: each of the four folios is dirtied again.
fn async_read_pinned_redirty(t: &Test) -> CaseResult {
    kunit_assert_eq!(t, async_read(t, UserPages::Pin, true)?, 4);
    Ok(())
}

/// Referenced pages not cleaned during the read: put at completion, nothing re-dirtied.
fn async_read_referenced_dirty(t: &Test) -> CaseResult {
    kunit_assert_eq!(t, async_read(t, UserPages::Reference, false)?, 0);
    Ok(())
}

/// Referenced pages cleaned during the read: dirtied again, then put (not unpinned).
fn async_read_referenced_redirty(t: &Test) -> CaseResult {
    kunit_assert_eq!(t, async_read(t, UserPages::Reference, true)?, 4);
    Ok(())
}

kunit_suite!(
    iovx_dirty,
    [
        async_read_pinned_dirty,
        async_read_pinned_redirty,
        async_read_referenced_dirty,
        async_read_referenced_redirty,
    ]
);

// ---- iovx_thp ----

/// A PMD-mapped huge page: as many pages as a page table has entries (2 MiB with 4 KiB pages,
/// 512 MiB with 64 KiB pages), and its folio order.
const HPAGE: usize = PAGE_SIZE * (PAGE_SIZE / 8);
const HPAGE_ORDER: u32 = (PAGE_SIZE / 8).trailing_zeros();

/// Whether the cases of huge pages can run here: a PMD huge page of more than 2 MiB (512 MiB
/// with 64 KiB pages) does not fit the test guest's memory; the case is skipped with the reason.
fn thp_too_large(t: &Test) -> bool {
    if HPAGE > 2 << 20 {
        t.skip(c_str!(
            "a PMD huge page is larger than 2 MiB with this page size"
        ));
        return true;
    }
    false
}

/// Pins of pages of a PMD-mapped transparent huge page: the folio's `_pincount` goes up by one
/// per page pinned (by GUP and by extraction) and its reference count by as many, the folio is
/// dma-pinned while any is held, and both come back when the batches are released. References
/// (the legacy mode) leave `_pincount` alone.
fn thp_pin_counts(t: &Test) -> CaseResult {
    if thp_too_large(t) {
        return Ok(());
    }
    let map = t.vm_mmap(2 * HPAGE, true, true)?;
    let huge = (map + HPAGE - 1) & !(HPAGE - 1);
    UserSlice::new(huge, HPAGE)
        .writer()
        .write_slice(&KVec::from_elem(0x5au8, HPAGE, GFP_KERNEL)?)?;
    drain_lru();
    let mm = UserMm::current()?;
    let mut one = slots::<1>();
    let probe = get_user_pages::<Source>(&mm, huge + 5 * PAGE_SIZE, PAGE_SIZE, &mut one)?;
    let Some(page) = probe.pages().next() else {
        kunit_assert!(t, false, "no page");
        return Ok(());
    };
    if page.folio_order() == 0 {
        t.skip(c_str!("the range is not backed by a transparent huge page"));
        return Ok(());
    }
    kunit_assert_eq!(t, page.folio_order(), HPAGE_ORDER);
    let pc0 = page.folio_pincount();
    let ref0 = page.ref_count();
    kunit_assert_eq!(t, pc0, Some(0));
    kunit_assert!(t, !page.maybe_dma_pinned());
    let pins = foll_pin_acquired();
    let mut s16 = slots::<16>();
    let b = pin_user_pages::<Dest>(
        &mm,
        huge + 3 * PAGE_SIZE,
        16 * PAGE_SIZE,
        Pin::ShortTerm,
        &mut s16,
    )?;
    kunit_assert!(
        t,
        b.pages().all(|p| p.ref_count() == ref0 + 16),
        "not one folio"
    );
    kunit_assert_eq!(t, page.folio_pincount(), Some(16));
    kunit_assert_eq!(t, page.ref_count(), ref0 + 16);
    kunit_assert!(t, page.maybe_dma_pinned());
    let mut s8 = slots::<8>();
    let mut it = IovIter::<Dest>::ubuf(huge + 100 * PAGE_SIZE + 7, 8 * PAGE_SIZE - 7)?;
    let e = it.extract(&mut s8, usize::MAX)?;
    kunit_assert_eq!(t, (e.mode(), e.nr_pages()), (Mode::Pinned, 8));
    kunit_assert_eq!(t, page.folio_pincount(), Some(24));
    kunit_assert_eq!(t, page.ref_count(), ref0 + 24);
    kunit_assert!(t, foll_pin_acquired() >= pins + 24);
    drop(e);
    kunit_assert_eq!(t, page.folio_pincount(), Some(16));
    drop(b);
    kunit_assert_eq!(t, page.folio_pincount(), Some(0));
    kunit_assert_eq!(t, page.ref_count(), ref0);
    kunit_assert!(t, !page.maybe_dma_pinned(), "the folio still looks pinned");
    let pins = foll_pin_acquired();
    let mut it = IovIter::<Dest>::ubuf(huge + 200 * PAGE_SIZE, 8 * PAGE_SIZE)?;
    let r = it.extract_as(&mut s8, usize::MAX, UserPages::Reference)?;
    kunit_assert_eq!(t, r.mode(), Mode::Referenced);
    kunit_assert_eq!(t, page.folio_pincount(), Some(0));
    kunit_assert_eq!(t, page.ref_count(), ref0 + 8);
    kunit_assert!(t, !page.maybe_dma_pinned());
    kunit_assert_eq!(t, foll_pin_acquired(), pins);
    drop(r);
    kunit_assert_eq!(t, page.ref_count(), ref0);
    Ok(())
}

/// Writes `pattern(.., seed)` over bytes `from..to` of the user memory at `base`.
fn write_pattern(base: usize, from: usize, to: usize, seed: u8) -> Result {
    let mut data = KVec::with_capacity(to - from, GFP_KERNEL)?;
    for i in from..to {
        data.push(pattern(i, seed), GFP_KERNEL)?;
    }
    UserSlice::new(base + from, to - from)
        .writer()
        .write_slice(&data)
}

/// Two transparent huge pages, mapped and faulted in by a write: the address of the first, or
/// `None` (the case skipped) if huge pages do not back them.
fn two_thps(t: &Test, seed: u8) -> Result<Option<usize>> {
    if thp_too_large(t) {
        return Ok(None);
    }
    let map = t.vm_mmap(3 * HPAGE, true, true)?;
    let huge = (map + HPAGE - 1) & !(HPAGE - 1);
    write_pattern(huge, 0, PAGE_SIZE, seed)?;
    write_pattern(huge, HPAGE, HPAGE + PAGE_SIZE, seed)?;
    drain_lru();
    let mm = UserMm::current()?;
    for h in [huge, huge + HPAGE] {
        let mut one = slots::<1>();
        let probe = get_user_pages::<Source>(&mm, h, PAGE_SIZE, &mut one)?;
        if probe.pages().any(|p| p.folio_order() != HPAGE_ORDER) {
            t.skip(c_str!("the range is not backed by transparent huge pages"));
            return Ok(None);
        }
    }
    Ok(Some(huge))
}

/// The folios of the two huge pages at `huge`, held (one reference each) for inspection.
fn thp_heads<'a>(
    mm: &UserMm,
    huge: usize,
    s: &'a mut [PageSlot; 2],
) -> Result<[crate::abstractions::pages::Batch<'static, 'a, Source>; 2]> {
    let (a, b) = s.split_at_mut(1);
    Ok([
        get_user_pages::<Source>(mm, huge, PAGE_SIZE, a)?,
        get_user_pages::<Source>(mm, huge + HPAGE, PAGE_SIZE, b)?,
    ])
}

/// Bio segments over the pages of large folios: the pages of one huge page make one segment, a
/// range that straddles two makes at most two (one if they follow one another in memory), a
/// page taken twice (two iovecs in one page) sits in two segments. Each folio's `_pincount`
/// holds one pin per page of each segment while the bio holds them, and dropping the bio gives
/// back every pin and reference (`unpin_user_folio(folio, n)` per folio). Referenced pages
/// (`folio_put_refs()`) likewise, without touching `_pincount`.
fn thp_bio_segments(t: &Test) -> CaseResult {
    let disk = test_disk(512)?;
    let Some(huge) = two_thps(t, 3)? else {
        return Ok(());
    };
    let mm = UserMm::current()?;
    let mut hs = slots::<2>();
    let [ha, hb] = thp_heads(&mm, huge, &mut hs)?;
    let (Some(a), Some(b)) = (ha.pages().next(), hb.pages().next()) else {
        kunit_assert!(t, false, "no page");
        return Ok(());
    };
    let (ref_a, ref_b) = (a.ref_count(), b.ref_count());
    kunit_assert_eq!(
        t,
        (a.folio_pincount(), b.folio_pincount()),
        (Some(0), Some(0))
    );
    let before = COUNTERS.snapshot();
    let mut s = slots::<32>();

    // 16 pages from 512 bytes into a page of the first huge page: 17 pages, one segment.
    let mut it = IovIter::<Dest>::ubuf(huge + 3 * PAGE_SIZE + 512, 16 * PAGE_SIZE)?;
    let batch = it.extract(&mut s, usize::MAX)?;
    kunit_assert_eq!(t, batch.nr_pages(), 17);
    let mut bio = Bio::<Dest>::new(disk.target(), 0, 32)?;
    kunit_assert!(t, bio.add(batch).is_ok(), "refused");
    kunit_assert_eq!(t, (bio.nr_segments(), bio.len()), (1, 16 * PAGE_SIZE));
    kunit_assert_eq!(t, a.folio_pincount(), Some(17));
    kunit_assert_eq!(t, a.ref_count(), ref_a + 17);
    drop(bio);
    kunit_assert_eq!(t, (a.folio_pincount(), a.ref_count()), (Some(0), ref_a));

    // Across the end of the first huge page: 8 pages of it (1 KiB of the first), 9 of the next.
    let start = huge + HPAGE - 8 * PAGE_SIZE + 3072;
    let mut it = IovIter::<Dest>::ubuf(start, 16 * PAGE_SIZE)?;
    let batch = it.extract(&mut s, usize::MAX)?;
    let mut bio = Bio::<Dest>::new(disk.target(), 0, 32)?;
    kunit_assert!(t, bio.add(batch).is_ok(), "refused");
    kunit_assert!(
        t,
        (1..=2).contains(&bio.nr_segments()),
        "{} segments",
        bio.nr_segments()
    );
    kunit_assert_eq!(
        t,
        (a.folio_pincount(), b.folio_pincount()),
        (Some(8), Some(9))
    );
    drop(bio);
    kunit_assert_eq!(
        t,
        (a.folio_pincount(), b.folio_pincount()),
        (Some(0), Some(0))
    );
    kunit_assert_eq!(t, (a.ref_count(), b.ref_count()), (ref_a, ref_b));

    // Two iovecs in one page, the second running on for four more pages: the page is pinned
    // twice and sits in two segments; the second segment's five pages are one run.
    let segs = [
        UserVec::new(huge + 5 * PAGE_SIZE, 2048),
        UserVec::new(huge + 5 * PAGE_SIZE + 2048, 2048 + 4 * PAGE_SIZE),
    ];
    let mut it = IovIter::<Dest>::iovec(&segs)?;
    let mut bio = Bio::<Dest>::new(disk.target(), 0, 32)?;
    for _ in 0..2 {
        let batch = it.extract(&mut s, usize::MAX)?;
        kunit_assert!(t, bio.add(batch).is_ok(), "refused");
    }
    kunit_assert_eq!(t, (bio.nr_segments(), bio.len()), (2, 5 * PAGE_SIZE));
    kunit_assert_eq!(t, a.folio_pincount(), Some(6));
    drop(bio);
    kunit_assert_eq!(t, (a.folio_pincount(), a.ref_count()), (Some(0), ref_a));

    // Referenced pages (the legacy mode): one segment, one reference per page, put per folio.
    let pins = foll_pin_acquired();
    let mut it = IovIter::<Dest>::ubuf(huge + HPAGE + 40 * PAGE_SIZE, 12 * PAGE_SIZE)?;
    let batch = it.extract_as(&mut s, usize::MAX, UserPages::Reference)?;
    let mut bio = Bio::<Dest>::new(disk.target(), 0, 32)?;
    kunit_assert!(t, bio.add(batch).is_ok(), "refused");
    kunit_assert_eq!(t, bio.nr_segments(), 1);
    kunit_assert_eq!(
        t,
        (b.folio_pincount(), b.ref_count()),
        (Some(0), ref_b + 12)
    );
    drop(bio);
    kunit_assert_eq!(t, b.ref_count(), ref_b);
    kunit_assert_eq!(t, foll_pin_acquired(), pins);

    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned), (17 + 17 + 6, 17 + 17 + 6));
    kunit_assert_eq!(t, (d.referenced, d.unreferenced), (12, 12));
    Ok(())
}

/// `Bio::add_runs()`: a batch needs room for its segments, not its pages. 16 pages of one huge
/// page go as one segment into a bio with room for 4 segments, where `Bio::add()` refuses them;
/// a batch that continues the last segment joins it. A batch whose runs need more segments than
/// are left (across the end of a huge page, when the next huge page does not follow it in
/// memory) is refused with the bio exactly as it was, its pins still its own; dropping the bio
/// and the batch gives back every pin, per folio.
fn thp_bio_add_runs(t: &Test) -> CaseResult {
    let disk = test_disk(512)?;
    let Some(huge) = two_thps(t, 7)? else {
        return Ok(());
    };
    let mm = UserMm::current()?;
    let mut hs = slots::<2>();
    let [ha, hb] = thp_heads(&mm, huge, &mut hs)?;
    let (Some(a), Some(b)) = (ha.pages().next(), hb.pages().next()) else {
        kunit_assert!(t, false, "no page");
        return Ok(());
    };
    let (ref_a, ref_b) = (a.ref_count(), b.ref_count());
    let before = COUNTERS.snapshot();
    let mut s = slots::<32>();
    // Across the end of the first huge page, 1 KiB in: 4 pages of it, 5 of the next; one
    // segment if the second huge page follows the first in memory, else two.
    let start = huge + HPAGE - 4 * PAGE_SIZE + 1024;
    let apart = {
        let mut it = IovIter::<Dest>::ubuf(start, 8 * PAGE_SIZE)?;
        let batch = it.extract(&mut s, usize::MAX)?;
        let mut probe = Bio::<Dest>::new(disk.target(), 0, 32)?;
        kunit_assert!(t, probe.add(batch).is_ok(), "refused");
        probe.nr_segments() == 2
    };
    let mut slot = BioSlot::new();
    let mut bio = Bio::<Dest, Inline<'_>>::new_inline(&mut slot, disk.target(), 0);
    kunit_assert_eq!(t, bio.room(), 4);
    // 16 pages from 512 bytes into a page, to a page end.
    let mut it = IovIter::<Dest>::ubuf(huge + 3 * PAGE_SIZE + 512, 16 * PAGE_SIZE - 512)?;
    let batch = it.extract(&mut s, usize::MAX)?;
    kunit_assert_eq!(t, batch.nr_pages(), 16);
    let batch = match bio.add(batch) {
        Err(batch) => batch,
        Ok(()) => {
            kunit_assert!(t, false, "add() took 16 pages into room for 4");
            return Ok(());
        }
    };
    kunit_assert!(t, bio.add_runs(batch).is_ok(), "refused");
    kunit_assert_eq!(
        t,
        (bio.nr_segments(), bio.len(), bio.room()),
        (1, 16 * PAGE_SIZE - 512, 3)
    );
    // The next 8 pages: they join the segment.
    let mut it = IovIter::<Dest>::ubuf(huge + 19 * PAGE_SIZE, 8 * PAGE_SIZE)?;
    let batch = it.extract(&mut s, usize::MAX)?;
    kunit_assert!(t, bio.add_runs(batch).is_ok(), "refused");
    kunit_assert_eq!(t, (bio.nr_segments(), bio.room()), (1, 3));
    kunit_assert_eq!(t, a.folio_pincount(), Some(24));
    // Two pieces of pages further on, 2 KiB in: two segments more, one left.
    for p in [100, 200] {
        let mut it = IovIter::<Dest>::ubuf(huge + p * PAGE_SIZE + 2048, 512)?;
        let batch = it.extract(&mut s, usize::MAX)?;
        kunit_assert!(t, bio.add_runs(batch).is_ok(), "refused");
    }
    kunit_assert_eq!(t, (bio.nr_segments(), bio.room()), (3, 1));
    let len0 = bio.len();
    let mut it = IovIter::<Dest>::ubuf(start, 8 * PAGE_SIZE)?;
    let batch = it.extract(&mut s, usize::MAX)?;
    match bio.add_runs(batch) {
        Ok(()) => {
            kunit_assert!(t, !apart, "two runs went into room for one segment");
            kunit_assert_eq!(t, (bio.nr_segments(), bio.room()), (4, 0));
        }
        Err(batch) => {
            kunit_assert!(t, apart, "one run refused with room for one segment");
            kunit_assert_eq!(t, (bio.nr_segments(), bio.len(), bio.room()), (3, len0, 1));
            // The batch still holds its pins: 4 on the first folio, 5 on the second.
            kunit_assert_eq!(
                t,
                (a.folio_pincount(), b.folio_pincount()),
                (Some(26 + 4), Some(5))
            );
            drop(batch);
        }
    }
    drop(bio);
    kunit_assert_eq!(
        t,
        (a.folio_pincount(), b.folio_pincount()),
        (Some(0), Some(0))
    );
    kunit_assert_eq!(t, (a.ref_count(), b.ref_count()), (ref_a, ref_b));
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, d.pinned, 9 + 16 + 8 + 2 + 9);
    kunit_assert_eq!(t, d.unpinned, d.pinned);
    Ok(())
}

/// Reads and writes through the direct-I/O path (`submit_iter_wait`) into and from huge pages:
/// a read that starts at a misaligned offset inside one huge page and ends inside the next
/// brings the disk's bytes, byte for byte, leaves the bytes around it alone, dirties both
/// folios and gives back every pin; a write from the same range carries the user's bytes. One
/// more read goes asynchronously (pages dirtied before the I/O and checked after it).
fn thp_direct_io(t: &Test) -> CaseResult {
    let disk = test_disk(512)?;
    let Some(huge) = two_thps(t, 5)? else {
        return Ok(());
    };
    let mm = UserMm::current()?;
    let mut hs = slots::<2>();
    let [ha, hb] = thp_heads(&mm, huge, &mut hs)?;
    let (Some(a), Some(b)) = (ha.pages().next(), hb.pages().next()) else {
        kunit_assert!(t, false, "no page");
        return Ok(());
    };
    let (ref_a, ref_b) = (a.ref_count(), b.ref_count());
    // 512 bytes into the last 50 pages of the first huge page, 150 pages long.
    let off = HPAGE - 50 * PAGE_SIZE + 512;
    let len = 150 * PAGE_SIZE;
    // The bytes read and two pages either side.
    let (lo, hi) = (off - 2 * PAGE_SIZE - 512, off + len + 2 * PAGE_SIZE);
    write_pattern(huge, lo, hi, 5)?;
    a.test_clear_dirty();
    b.test_clear_dirty();
    let before = COUNTERS.snapshot();
    let mut it = IovIter::<Dest>::ubuf(huge + off, len)?;
    let done = submit_iter_wait(disk.target(), &mut it, 16, len)?;
    kunit_assert_eq!(t, done.bytes, len);
    kunit_assert!(
        t,
        a.is_dirty() && b.is_dirty(),
        "a folio the read filled is clean"
    );
    kunit_assert_eq!(
        t,
        (a.folio_pincount(), b.folio_pincount()),
        (Some(0), Some(0))
    );
    kunit_assert_eq!(t, (a.ref_count(), b.ref_count()), (ref_a, ref_b));
    let mut back = KVec::from_elem(0u8, hi - lo, GFP_KERNEL)?;
    UserSlice::new(huge + lo, hi - lo)
        .reader()
        .read_slice(&mut back)?;
    for (i, c) in (lo..).zip(back.iter()) {
        let want = if (off..off + len).contains(&i) {
            byte_at(16 * 512 + (i - off) as u64)
        } else {
            pattern(i, 5)
        };
        if *c != want {
            kunit_assert!(t, false, "byte {} is {:#x}, not {:#x}", i, c, want);
            break;
        }
    }
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned, d.dirtied), (151, 151, 151));

    // The write back from the same bytes: the disk sees its own pattern.
    let mut it = IovIter::<Source>::ubuf(huge + off, len)?;
    let done = submit_iter_wait(disk.target(), &mut it, 16, len)?;
    kunit_assert_eq!(t, done.bytes, len);
    kunit_assert!(
        t,
        !disk.driver().mismatch.load(Relaxed),
        "the disk saw other bytes"
    );
    kunit_assert_eq!(
        t,
        (a.folio_pincount(), b.folio_pincount()),
        (Some(0), Some(0))
    );

    // An asynchronous read of 64 pages of the second huge page: one segment, dirtied before
    // the I/O, released at completion.
    b.test_clear_dirty();
    let w = Arc::pin_init(AsyncWaiter::new(), GFP_KERNEL)?;
    let mut s = slots::<64>();
    let batch = pin_user_pages::<Dest>(&mm, huge + HPAGE, 64 * PAGE_SIZE, Pin::ShortTerm, &mut s)?;
    let mut bio = Bio::<Dest>::new(disk.target(), 0, 64)?;
    kunit_assert!(t, bio.add(batch).is_ok(), "refused");
    kunit_assert_eq!(t, bio.nr_segments(), 1);
    bio.submit(w.clone());
    let done = w.wait()?;
    kunit_assert_eq!(t, done.bytes, 64 * PAGE_SIZE);
    flush_redirty();
    kunit_assert!(t, b.is_dirty(), "the folio the read filled is clean");
    kunit_assert_eq!(t, (b.folio_pincount(), b.ref_count()), (Some(0), ref_b));
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned), (151 + 151 + 64, 151 + 151 + 64));
    Ok(())
}

kunit_suite!(
    iovx_thp,
    [
        thp_pin_counts,
        thp_bio_segments,
        thp_bio_add_runs,
        thp_direct_io
    ]
);
