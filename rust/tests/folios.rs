// SPDX-License-Identifier: GPL-2.0

//! Suite `iovx_folios`: XARRAY and FOLIOQ iterators over folios held by the module.
//!
//! Each case checks the pages extraction lists (never pinned, never referenced), the offset of
//! the first page, the bytes reached through the pages, partial extraction and the iterator's
//! advance, and a round trip through a bio to a disk.

#![deny(unsafe_code)]

use super::bio::{byte_at, test_disk};
use crate::abstractions::counters::COUNTERS;
use crate::abstractions::direct_io::submit_iter_wait;
use crate::abstractions::folios::{FolioQueue, FolioXArray, MAX_BYTES};
use crate::abstractions::iov::{Direction, IovIter, Kind};
use crate::abstractions::kunit::{CaseResult, Failure, Test};
use crate::abstractions::pages::{Mode, PageSlot};
use crate::{kunit_assert, kunit_assert_eq, kunit_suite};
use core::sync::atomic::Ordering::Relaxed;
use kernel::{page::PAGE_SIZE, prelude::*};

fn slots<const N: usize>() -> [PageSlot; N] {
    core::array::from_fn(|_| PageSlot::EMPTY)
}

fn pattern(i: usize) -> u8 {
    (i as u8).wrapping_mul(29) ^ ((i >> 12) as u8).wrapping_add(7)
}

fn patterned(len: usize) -> Result<KVec<u8>> {
    let mut v = KVec::with_capacity(len, GFP_KERNEL)?;
    for i in 0..len {
        v.push(pattern(i), GFP_KERNEL)?;
    }
    Ok(v)
}

/// Extracts the whole iterator in batches of at most `N` pages and `max` bytes, checking that
/// every batch is listed, that a batch starts at `offset_in_page` of the position it was taken
/// from, and that its bytes are `expect[..]` in order. Returns the number of batches.
fn extract_all<const N: usize, D: Direction>(
    t: &Test,
    it: &mut IovIter<'_, D>,
    start: usize,
    max: usize,
    expect: &[u8],
) -> core::result::Result<usize, Failure> {
    let mut pos = 0;
    let mut batches = 0;
    while !it.is_empty() {
        let left = it.len();
        let mut s = slots::<N>();
        let b = it.extract(&mut s, max)?;
        kunit_assert_eq!(t, b.mode(), Mode::Listed);
        kunit_assert!(t, !b.is_empty(), "an empty batch with {} bytes left", left);
        kunit_assert!(t, b.len() <= max && b.nr_pages() <= N);
        kunit_assert_eq!(t, b.offset(), (start + pos) % PAGE_SIZE);
        kunit_assert_eq!(t, it.len(), left - b.len());
        kunit_assert!(t, !b.pages().any(|p| p.maybe_dma_pinned()));
        let mut out = KVec::from_elem(0u8, b.len(), GFP_KERNEL)?;
        kunit_assert_eq!(t, b.copy_out(&mut out), b.len());
        kunit_assert!(
            t,
            out[..] == expect[pos..pos + b.len()],
            "batch {} at {} has other bytes",
            batches,
            pos
        );
        pos += b.len();
        batches += 1;
    }
    kunit_assert_eq!(t, pos, expect.len());
    Ok(batches)
}

/// An XArray of order-0 folios: an unaligned range is listed page by page, in batches as small
/// as the slots allow, with the bytes the folios hold; nothing is pinned or referenced.
fn xarray_source_listed(t: &Test) -> CaseResult {
    let mut xa = FolioXArray::new(6, 0)?;
    kunit_assert_eq!(t, xa.len(), 6 * PAGE_SIZE);
    let data = patterned(xa.len())?;
    xa.write(0, &data)?;
    let before = COUNTERS.snapshot();
    let (start, len) = (1000, 4 * PAGE_SIZE + 100);
    let mut it = IovIter::xarray(&xa, start, len)?;
    kunit_assert_eq!(t, it.kind(), Kind::Xarray);
    kunit_assert_eq!(t, it.len(), len);
    kunit_assert!(t, !it.extract_will_pin());
    let batches = extract_all::<2, _>(t, &mut it, start, usize::MAX, &data[start..start + len])?;
    // Five pages, two per batch.
    kunit_assert_eq!(t, batches, 3);
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.referenced), (0, 0));
    kunit_assert!(t, d.listed == 5 && d.unlisted == 5, "{:?}", d);
    Ok(())
}

/// Large folios in an XArray: pages are listed from inside each folio (`find_subpage()`), a byte
/// limit cuts a batch short, and a revert steps back over it.
fn xarray_large_folios(t: &Test) -> CaseResult {
    let mut xa = FolioXArray::new(3, 2)?;
    kunit_assert_eq!(t, xa.len(), 12 * PAGE_SIZE);
    let data = patterned(xa.len())?;
    xa.write(0, &data)?;
    let start = 3 * PAGE_SIZE + 17;
    let len = 6 * PAGE_SIZE;
    let mut it = IovIter::xarray(&xa, start, len)?;
    {
        let mut s = slots::<8>();
        let b = it.extract(&mut s, PAGE_SIZE)?;
        kunit_assert_eq!(t, (b.offset(), b.len(), b.nr_pages()), (17, PAGE_SIZE, 2));
        let mut out = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
        b.copy_out(&mut out);
        kunit_assert!(t, out[..] == data[start..start + PAGE_SIZE]);
    }
    kunit_assert_eq!(t, it.revert(PAGE_SIZE), Ok(()));
    kunit_assert_eq!(t, it.len(), len);
    extract_all::<3, _>(t, &mut it, start, usize::MAX, &data[start..start + len])?;
    Ok(())
}

/// Ranges that do not lie within the folios are refused, with no overflow.
fn ranges_checked(t: &Test) -> CaseResult {
    let mut xa = FolioXArray::new(2, 0)?;
    let mut q = FolioQueue::new(&[0, 1])?;
    kunit_assert_eq!(t, q.len(), 3 * PAGE_SIZE);
    kunit_assert_eq!(
        t,
        IovIter::xarray(&xa, 1, 2 * PAGE_SIZE).err(),
        Some(EINVAL)
    );
    kunit_assert_eq!(t, IovIter::xarray(&xa, usize::MAX, 2).err(), Some(EINVAL));
    kunit_assert_eq!(
        t,
        IovIter::xarray_mut(&mut xa, 2 * PAGE_SIZE + 1, 0).err(),
        Some(EINVAL)
    );
    kunit_assert_eq!(t, IovIter::folioq(&q, 3 * PAGE_SIZE, 1).err(), Some(EINVAL));
    kunit_assert_eq!(
        t,
        IovIter::folioq_mut(&mut q, 1, usize::MAX).err(),
        Some(EINVAL)
    );
    // An empty iterator at the very end is fine and lists nothing.
    let mut it = IovIter::folioq(&q, 3 * PAGE_SIZE, 0)?;
    let mut s = slots::<1>();
    kunit_assert_eq!(t, it.extract(&mut s, usize::MAX)?.len(), 0);
    kunit_assert_eq!(t, FolioXArray::new(0, 0).err(), Some(EINVAL));
    kunit_assert_eq!(t, FolioXArray::new(1, 64).err(), Some(EINVAL));
    kunit_assert_eq!(t, FolioQueue::new(&[]).err(), Some(EINVAL));
    kunit_assert_eq!(t, FolioQueue::new(&[0, 40]).err(), Some(EINVAL));
    // More than MAX_BYTES is refused before anything is allocated.
    let too_many = MAX_BYTES / PAGE_SIZE + 1;
    kunit_assert_eq!(t, FolioXArray::new(too_many, 0).err(), Some(EINVAL));
    kunit_assert_eq!(t, FolioXArray::new(usize::MAX >> 13, 1).err(), Some(EINVAL));
    Ok(())
}

/// A folio queue of more folios than one segment holds, of mixed orders: a range that starts
/// inside a large folio of the first segment and ends in the second is listed with the right
/// bytes, across the segment boundary, in small batches.
fn folioq_across_segments(t: &Test) -> CaseResult {
    let mut orders = KVec::new();
    for i in 0..40u32 {
        orders.push([0, 2, 0, 1][(i % 4) as usize], GFP_KERNEL)?;
    }
    let mut q = FolioQueue::new(&orders)?;
    // Ten of each of 1, 4, 1 and 2 pages.
    kunit_assert_eq!(t, q.len(), 80 * PAGE_SIZE);
    let data = patterned(q.len())?;
    q.write(0, &data)?;
    let before = COUNTERS.snapshot();
    let start = PAGE_SIZE + 2 * PAGE_SIZE + 300;
    let len = q.len() - start - 5;
    let mut it = IovIter::folioq(&q, start, len)?;
    kunit_assert_eq!(t, it.kind(), Kind::Folioq);
    extract_all::<3, _>(t, &mut it, start, 5 * PAGE_SIZE, &data[start..start + len])?;
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.referenced), (0, 0));
    kunit_assert!(t, d.listed > 0 && d.listed == d.unlisted, "{:?}", d);
    Ok(())
}

/// Copying into destination iterators fills the folios, in order, and nothing outside the range.
fn copy_into_dest(t: &Test) -> CaseResult {
    let data = patterned(5 * PAGE_SIZE)?;
    let mut q = FolioQueue::new(&[1, 0, 2])?;
    {
        let mut it = IovIter::folioq_mut(&mut q, 10, 5 * PAGE_SIZE)?;
        kunit_assert_eq!(t, it.copy_to_iter(&data), 5 * PAGE_SIZE);
        kunit_assert!(t, it.is_empty());
    }
    let mut out = KVec::from_elem(0xffu8, q.len(), GFP_KERNEL)?;
    q.read(0, &mut out)?;
    kunit_assert!(t, out[..10].iter().all(|b| *b == 0));
    kunit_assert!(t, out[10..10 + data.len()] == data[..]);
    kunit_assert!(t, out[10 + data.len()..].iter().all(|b| *b == 0));

    let mut xa = FolioXArray::new(4, 1)?;
    {
        let mut it = IovIter::xarray_mut(&mut xa, PAGE_SIZE - 1, 5 * PAGE_SIZE)?;
        kunit_assert_eq!(t, it.copy_to_iter(&data), 5 * PAGE_SIZE);
    }
    let mut out = KVec::from_elem(0u8, 5 * PAGE_SIZE, GFP_KERNEL)?;
    xa.read(PAGE_SIZE - 1, &mut out)?;
    kunit_assert!(t, out[..] == data[..]);
    Ok(())
}

/// Through a bio to a disk and back: a write from a folio queue reaches the disk with its bytes,
/// a read into an XArray's folios brings them back; only listed pages, all given back.
fn bio_round_trip(t: &Test) -> CaseResult {
    let disk = test_disk(512)?;
    let sector = 16u64;
    let len = 9 * PAGE_SIZE;
    let mut expect = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    for (i, b) in expect.iter_mut().enumerate() {
        *b = byte_at(sector * 512 + i as u64);
    }
    let before = COUNTERS.snapshot();
    let mut q = FolioQueue::new(&[2, 0, 0, 1, 0, 1])?;
    q.write(512, &expect)?;
    {
        let mut it = IovIter::folioq(&q, 512, len)?;
        let done = submit_iter_wait(disk.target(), &mut it, sector, len)?;
        kunit_assert_eq!(t, done.bytes, len);
    }
    kunit_assert!(
        t,
        !disk.driver().mismatch.load(Relaxed),
        "the disk saw other bytes"
    );
    let mut xa = FolioXArray::new(5, 1)?;
    {
        let mut it = IovIter::xarray_mut(&mut xa, 100, len)?;
        let done = submit_iter_wait(disk.target(), &mut it, sector, len)?;
        kunit_assert_eq!(t, done.bytes, len);
    }
    let mut out = KVec::from_elem(0u8, xa.len(), GFP_KERNEL)?;
    xa.read(0, &mut out)?;
    kunit_assert!(
        t,
        out[100..100 + len] == expect[..],
        "the read got other bytes"
    );
    kunit_assert!(t, out[..100].iter().all(|b| *b == 0));
    kunit_assert!(t, out[100 + len..].iter().all(|b| *b == 0));
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.referenced), (0, 0));
    kunit_assert!(t, d.listed > 0 && d.listed == d.unlisted, "{:?}", d);
    Ok(())
}

kunit_suite!(
    iovx_folios,
    [
        xarray_source_listed,
        xarray_large_folios,
        ranges_checked,
        folioq_across_segments,
        copy_into_dest,
        bio_round_trip,
    ]
);
