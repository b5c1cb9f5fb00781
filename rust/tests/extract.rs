// SPDX-License-Identifier: GPL-2.0

//! Suites `iovx_extract_kernel` (KVEC, BVEC, DISCARD: listed pages) and `iovx_extract_user`
//! (UBUF, IOVEC and GUP: pinned and referenced pages).
//!
//! Every case checks the bytes reached through the extracted pages against the buffer, the
//! iterator's advance, and the page and counter state before, during and after the batch.

#![deny(unsafe_code)]

use crate::abstractions::counters::{Snapshot, COUNTERS};
use crate::abstractions::gup::{
    get_user_pages, pin_user_pages, GupFlags, HeldPages, Pin, UserMm, Walk,
};
use crate::abstractions::iov::{max_rw_count, Bvec, Dest, IovIter, Kvec, Source, UserVec};
use crate::abstractions::kunit::{CaseResult, Test};
use crate::abstractions::pages::{Mode, PageSlot, PIN_BIAS};
use crate::{kunit_assert, kunit_assert_eq, kunit_suite};
use kernel::{c_str, page::Page, page::PAGE_SIZE, prelude::*, uaccess::UserSlice};

const BIAS: i32 = PIN_BIAS;

fn slots<const N: usize>() -> [PageSlot; N] {
    core::array::from_fn(|_| PageSlot::EMPTY)
}

fn pattern(i: usize, seed: u8) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8)
}

fn patterned(len: usize, seed: u8) -> Result<KVec<u8>> {
    let mut v = KVec::with_capacity(len, GFP_KERNEL)?;
    for i in 0..len {
        v.push(pattern(i, seed), GFP_KERNEL)?;
    }
    Ok(v)
}

fn zeroed(len: usize) -> Result<KVec<u8>> {
    patterned(len, 0).map(|mut v| {
        v.iter_mut().for_each(|b| *b = 0);
        v
    })
}

/// Maps `pages` pages of user memory, writable, filled with `pattern(.., seed)`.
fn user_buffer(t: &Test, pages: usize, seed: u8) -> core::result::Result<usize, Error> {
    let len = pages * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    let data = patterned(len, seed)?;
    UserSlice::new(addr, len).writer().write_slice(&data)?;
    Ok(addr)
}

fn counters() -> Snapshot {
    COUNTERS.snapshot()
}

// ---- Kernel memory: listed ----

/// A KVEC source spanning three pages, unaligned at both ends, is listed in one batch whose pages
/// and offset cover exactly the buffer's bytes; the iterator is consumed.
fn kvec_source_covers_bytes(t: &Test) -> CaseResult {
    let buf = patterned(4 * PAGE_SIZE, 3)?;
    let data = &buf[100..100 + 2 * PAGE_SIZE + 500];
    let before = counters();
    let mut segs = [Kvec::<Source>::new(data)];
    let mut it = IovIter::kvec(&mut segs)?;
    let mut s = slots::<8>();
    let b = it.extract(&mut s, usize::MAX)?;
    kunit_assert_eq!(t, b.mode(), Mode::Listed);
    kunit_assert_eq!(t, b.len(), data.len());
    kunit_assert_eq!(t, b.offset(), data.as_ptr() as usize % PAGE_SIZE);
    kunit_assert_eq!(
        t,
        b.nr_pages(),
        (b.offset() + data.len()).div_ceil(PAGE_SIZE)
    );
    kunit_assert!(t, it.is_empty());
    let mut out = zeroed(data.len())?;
    kunit_assert_eq!(t, b.copy_out(&mut out), data.len());
    kunit_assert!(t, &out[..] == data, "bytes through the pages differ");
    drop(b);
    let d = counters().since(&before);
    kunit_assert_eq!(t, d.listed, 3);
    kunit_assert_eq!(t, d.unlisted, 3);
    kunit_assert_eq!(t, d.pinned + d.referenced, 0);
    Ok(())
}

/// A KVEC destination is listed too, and bytes written into it by the kernel show through the
/// extracted pages.
fn kvec_dest_listed(t: &Test) -> CaseResult {
    let mut buf = zeroed(2 * PAGE_SIZE)?;
    let src = patterned(PAGE_SIZE + 10, 9)?;
    {
        let mut segs = [Kvec::<Dest>::new(&mut buf[7..])];
        let mut it = IovIter::kvec(&mut segs)?;
        kunit_assert!(t, !it.extract_will_pin());
        let mut s = slots::<4>();
        let b = it.extract(&mut s, src.len())?;
        kunit_assert_eq!(t, b.mode(), Mode::Listed);
        kunit_assert_eq!(t, b.len(), src.len());
        kunit_assert_eq!(t, it.len(), 2 * PAGE_SIZE - 7 - src.len());
    }
    // The extraction did not touch the contents.
    kunit_assert!(t, buf.iter().all(|&x| x == 0));
    Ok(())
}

/// With a one-entry page array, extraction stops at the first page boundary; looping collects
/// every byte exactly once, in order.
fn kvec_partial_then_loop(t: &Test) -> CaseResult {
    let buf = patterned(3 * PAGE_SIZE, 5)?;
    let data = &buf[1000..1000 + 2 * PAGE_SIZE];
    let mut segs = [Kvec::<Source>::new(data)];
    let mut it = IovIter::kvec(&mut segs)?;
    let mut out = zeroed(data.len())?;
    let mut done = 0;
    let mut calls = 0;
    let first_page_bytes = PAGE_SIZE - data.as_ptr() as usize % PAGE_SIZE;
    while !it.is_empty() {
        let mut s = slots::<1>();
        let b = it.extract(&mut s, usize::MAX)?;
        kunit_assert_eq!(t, b.nr_pages(), 1);
        if calls == 0 {
            kunit_assert_eq!(t, b.len(), first_page_bytes);
        }
        done += b.copy_out(&mut out[done..]);
        calls += 1;
        kunit_assert!(t, calls <= 3);
    }
    kunit_assert_eq!(t, done, data.len());
    kunit_assert_eq!(t, calls, 3);
    kunit_assert!(t, &out[..] == data);
    Ok(())
}

/// Empty segments are skipped, and a batch never crosses from one segment into the next.
fn kvec_segments_and_empty(t: &Test) -> CaseResult {
    let a = patterned(300, 1)?;
    let b = patterned(200, 2)?;
    let mut segs = [
        Kvec::<Source>::new(&[]),
        Kvec::<Source>::new(&a),
        Kvec::<Source>::new(&[]),
        Kvec::<Source>::new(&b),
    ];
    let mut it = IovIter::kvec(&mut segs)?;
    kunit_assert_eq!(t, it.len(), 500);
    let mut s = slots::<4>();
    let b1 = it.extract(&mut s, usize::MAX)?;
    kunit_assert_eq!(t, b1.len(), 300);
    let mut out = [0u8; 300];
    b1.copy_out(&mut out);
    kunit_assert!(t, out[..] == a[..]);
    drop(b1);
    let mut s2 = slots::<4>();
    let b2 = it.extract(&mut s2, usize::MAX)?;
    kunit_assert_eq!(t, b2.len(), 200);
    let mut out2 = [0u8; 200];
    b2.copy_out(&mut out2);
    kunit_assert!(t, out2[..] == b[..]);
    drop(b2);
    kunit_assert!(t, it.is_empty());
    let mut s3 = slots::<4>();
    kunit_assert!(t, it.extract(&mut s3, usize::MAX)?.is_empty());
    Ok(())
}

/// `max_bytes` limits a batch; zero gives an empty batch and leaves the iterator alone.
fn kvec_max_bytes(t: &Test) -> CaseResult {
    let buf = patterned(2 * PAGE_SIZE, 4)?;
    let mut segs = [Kvec::<Source>::new(&buf)];
    let mut it = IovIter::kvec(&mut segs)?;
    let mut s = slots::<4>();
    let b0 = it.extract(&mut s, 0)?;
    kunit_assert!(t, b0.is_empty());
    kunit_assert_eq!(t, b0.nr_pages(), 0);
    drop(b0);
    kunit_assert_eq!(t, it.len(), 2 * PAGE_SIZE);
    let mut s = slots::<4>();
    let b = it.extract(&mut s, 33)?;
    kunit_assert_eq!(t, b.len(), 33);
    kunit_assert_eq!(t, b.nr_pages(), 1);
    drop(b);
    kunit_assert_eq!(t, it.len(), 2 * PAGE_SIZE - 33);
    Ok(())
}

/// Zero-length iterators give empty batches; no slots is EINVAL.
fn zero_length_and_no_slots(t: &Test) -> CaseResult {
    let before = counters();
    let mut segs: [Kvec<'_, Source>; 0] = [];
    let mut it = IovIter::kvec(&mut segs)?;
    let mut s = slots::<2>();
    kunit_assert!(t, it.extract(&mut s, usize::MAX)?.is_empty());
    let buf = [1u8; 10];
    let mut segs = [Kvec::<Source>::new(&buf)];
    let mut it = IovIter::kvec(&mut segs)?;
    let mut none = slots::<0>();
    kunit_assert_eq!(t, it.extract(&mut none, usize::MAX).err(), Some(EINVAL));
    kunit_assert_eq!(t, it.len(), 10);
    kunit_assert_eq!(t, counters(), before);
    Ok(())
}

/// A DISCARD iterator has no memory: extraction is EINVAL and leaves it alone; copying into it
/// consumes the bytes.
fn discard_is_einval(t: &Test) -> CaseResult {
    let before = counters();
    let mut s = slots::<2>();
    let mut d = IovIter::<Dest>::discard(4096);
    kunit_assert_eq!(t, d.extract(&mut s, usize::MAX).err(), Some(EINVAL));
    kunit_assert_eq!(t, d.len(), 4096);
    kunit_assert_eq!(t, d.copy_to_iter(&[1u8; 100]), 100);
    kunit_assert_eq!(t, d.len(), 3996);
    kunit_assert_eq!(t, counters(), before);
    Ok(())
}

/// Every iterator covers at most `MAX_RW_COUNT` bytes: a DISCARD iterator of `usize::MAX` is
/// capped, and advancing over all of it and reverting the whole stays within what
/// `iov_iter_revert()` accepts (no warning), leaving the length as it was.
fn iter_counts_capped(t: &Test) -> CaseResult {
    let max = max_rw_count();
    let mut d = IovIter::<Dest>::discard(usize::MAX);
    let len = d.len();
    kunit_assert!(t, len <= max, "{} > {}", len, max);
    kunit_assert_eq!(t, len, max);
    kunit_assert_eq!(t, d.advance(usize::MAX), len);
    kunit_assert!(t, d.is_empty());
    kunit_assert_eq!(t, d.revert(len + 1).err(), Some(EINVAL));
    kunit_assert!(t, d.revert(len).is_ok());
    kunit_assert_eq!(t, d.len(), len);
    // A copy asks for at most `INT_MAX` bytes whatever the buffer; here the iterator ends first.
    kunit_assert_eq!(t, d.copy_to_iter(&[0u8; 64]), 64);
    Ok(())
}

/// BVEC segments over pages are listed at their offsets, contents intact, refcounts untouched.
fn bvec_source_listed(t: &Test) -> CaseResult {
    let mut p0 = Page::alloc_page(GFP_KERNEL)?;
    let mut p1 = Page::alloc_page(GFP_KERNEL)?;
    let d0 = patterned(PAGE_SIZE, 11)?;
    let d1 = patterned(PAGE_SIZE, 12)?;
    fill_page(t, &mut p0, &d0)?;
    fill_page(t, &mut p1, &d1)?;
    let mut segs = [
        Bvec::<Source>::new(&p0, 256, 1000)?,
        Bvec::<Source>::new(&p1, 0, 3000)?,
    ];
    let mut it = IovIter::bvec(&mut segs)?;
    kunit_assert_eq!(t, it.len(), 4000);
    let mut s = slots::<4>();
    let b = it.extract(&mut s, usize::MAX)?;
    kunit_assert_eq!(t, b.mode(), Mode::Listed);
    kunit_assert_eq!(t, b.offset(), 256);
    kunit_assert_eq!(t, b.len(), 1000);
    let refs: i32 = b.pages().map(|p| p.ref_count()).sum();
    kunit_assert_eq!(t, refs, 1);
    kunit_assert!(t, !b.pages().any(|p| p.maybe_dma_pinned()));
    let mut out = [0u8; 1000];
    b.copy_out(&mut out);
    kunit_assert!(t, out[..] == d0[256..1256]);
    drop(b);
    let mut s = slots::<4>();
    let b = it.extract(&mut s, usize::MAX)?;
    kunit_assert_eq!(t, (b.offset(), b.len()), (0, 3000));
    let mut out = [0u8; 3000];
    b.copy_out(&mut out);
    kunit_assert!(t, out[..] == d1[..3000]);
    Ok(())
}

/// Writes `data` into `page` through a BVEC destination iterator.
fn fill_page(t: &Test, page: &mut Page, data: &[u8]) -> CaseResult {
    let mut segs = [Bvec::<Dest>::new(page, 0, PAGE_SIZE)?];
    let mut it = IovIter::bvec(&mut segs)?;
    kunit_assert_eq!(t, it.copy_to_iter(data), PAGE_SIZE);
    Ok(())
}

/// A BVEC segment that does not fit in its page is refused.
fn bvec_range_checked(t: &Test) -> CaseResult {
    let mut p = Page::alloc_page(GFP_KERNEL)?;
    kunit_assert_eq!(
        t,
        Bvec::<Dest>::new(&mut p, PAGE_SIZE - 96, 200).err(),
        Some(EINVAL)
    );
    kunit_assert!(t, Bvec::<Dest>::new(&mut p, PAGE_SIZE - 96, 96).is_ok());
    kunit_assert_eq!(
        t,
        Bvec::<Dest>::new(&mut p, usize::MAX, 2).err(),
        Some(EINVAL)
    );
    kunit_assert!(t, Bvec::<Dest>::new(&mut p, 0, PAGE_SIZE).is_ok());
    Ok(())
}

kunit_suite!(
    iovx_extract_kernel,
    [
        kvec_source_covers_bytes,
        kvec_dest_listed,
        kvec_partial_then_loop,
        kvec_segments_and_empty,
        kvec_max_bytes,
        zero_length_and_no_slots,
        discard_is_einval,
        iter_counts_capped,
        bvec_source_listed,
        bvec_range_checked,
    ]
);

// ---- User memory: pinned or referenced ----

/// A UBUF destination is pinned: each page's refcount rises by exactly one pin and
/// folio_maybe_dma_pinned() holds while the batch lives; both return after it is dropped.
fn ubuf_dest_pins_each_page_once(t: &Test) -> CaseResult {
    let addr = user_buffer(t, 4, 1)?;
    let before = counters();
    let mut base = slots::<4>();
    // A reference pass to learn the refcounts before pinning.
    let refs_before: KVec<i32> = {
        let r = get_user_pages::<Source>(&UserMm::current()?, addr, 4 * PAGE_SIZE, &mut base)?;
        let mut v = KVec::new();
        for p in r.pages() {
            v.push(p.ref_count() - 1, GFP_KERNEL)?;
        }
        v
    };
    let mut it = IovIter::<Dest>::ubuf(addr, 4 * PAGE_SIZE)?;
    kunit_assert!(t, it.extract_will_pin());
    let mut s = slots::<4>();
    let b = it.extract(&mut s, usize::MAX)?;
    kunit_assert_eq!(t, b.mode(), Mode::Pinned);
    kunit_assert_eq!(
        t,
        (b.offset(), b.len(), b.nr_pages()),
        (0, 4 * PAGE_SIZE, 4)
    );
    for (i, p) in b.pages().enumerate() {
        kunit_assert_eq!(t, p.ref_count(), refs_before[i] + BIAS);
        kunit_assert!(t, p.maybe_dma_pinned());
    }
    kunit_assert!(t, it.is_empty());
    drop(b);
    let mut s = slots::<4>();
    let r = get_user_pages::<Source>(&UserMm::current()?, addr, 4 * PAGE_SIZE, &mut s)?;
    for (i, p) in r.pages().enumerate() {
        kunit_assert_eq!(t, p.ref_count() - 1, refs_before[i]);
        kunit_assert!(t, !p.maybe_dma_pinned());
    }
    drop(r);
    let d = counters().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned), (4, 4));
    kunit_assert_eq!(t, (d.referenced, d.unreferenced), (8, 8));
    Ok(())
}

/// A UBUF source is pinned too, and the bytes through the pinned pages are the user's bytes.
fn ubuf_source_contents(t: &Test) -> CaseResult {
    let addr = user_buffer(t, 3, 7)?;
    let expect = patterned(3 * PAGE_SIZE, 7)?;
    let mut it = IovIter::<Source>::ubuf(addr, 3 * PAGE_SIZE)?;
    let mut s = slots::<3>();
    let b = it.extract(&mut s, usize::MAX)?;
    kunit_assert_eq!(t, b.mode(), Mode::Pinned);
    let mut out = zeroed(3 * PAGE_SIZE)?;
    kunit_assert_eq!(t, b.copy_out(&mut out), 3 * PAGE_SIZE);
    kunit_assert!(t, out[..] == expect[..]);
    Ok(())
}

/// An unaligned user range: the offset is the start's offset in its page and the pages cover
/// exactly the range.
fn ubuf_unaligned(t: &Test) -> CaseResult {
    let addr = user_buffer(t, 4, 2)?;
    let expect = patterned(4 * PAGE_SIZE, 2)?;
    let (start, len) = (addr + 100, 2 * PAGE_SIZE + 50);
    let mut it = IovIter::<Source>::ubuf(start, len)?;
    let mut s = slots::<4>();
    let b = it.extract(&mut s, usize::MAX)?;
    kunit_assert_eq!(t, (b.offset(), b.len(), b.nr_pages()), (100, len, 3));
    kunit_assert_eq!(t, b.page_range(0), Some((100, PAGE_SIZE - 100)));
    kunit_assert_eq!(t, b.page_range(2), Some((0, 150)));
    let mut out = zeroed(len)?;
    b.copy_out(&mut out);
    kunit_assert!(t, out[..] == expect[100..100 + len]);
    Ok(())
}

/// A small page array pins only what fits; the rest stays in the iterator; looping pins every
/// page exactly once and the counters balance.
fn ubuf_partial_and_loop(t: &Test) -> CaseResult {
    let pages = 20;
    let addr = user_buffer(t, pages, 6)?;
    let expect = patterned(pages * PAGE_SIZE, 6)?;
    let before = counters();
    let mut it = IovIter::<Dest>::ubuf(addr + 8, pages * PAGE_SIZE - 16)?;
    let mut out = zeroed(pages * PAGE_SIZE)?;
    let mut done = 0;
    let mut batches = 0;
    while !it.is_empty() {
        let mut s = slots::<3>();
        let b = it.extract(&mut s, usize::MAX)?;
        kunit_assert!(t, b.nr_pages() <= 3 && !b.is_empty());
        kunit_assert_eq!(t, it.len(), pages * PAGE_SIZE - 16 - done - b.len());
        done += b.copy_out(&mut out[done..]);
        batches += 1;
    }
    kunit_assert_eq!(t, done, pages * PAGE_SIZE - 16);
    kunit_assert_eq!(t, batches, 7);
    kunit_assert!(t, out[..done] == expect[8..8 + done]);
    let d = counters().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned), (pages as u64, pages as u64));
    Ok(())
}

/// An IOVEC with empty segments: each batch covers one segment's run, in order.
fn iovec_segments(t: &Test) -> CaseResult {
    let addr = user_buffer(t, 4, 8)?;
    let expect = patterned(4 * PAGE_SIZE, 8)?;
    let segs = [
        UserVec::new(addr, 0),
        UserVec::new(addr + 10, 5000),
        UserVec::new(addr + 3 * PAGE_SIZE, 0),
        UserVec::new(addr + 2 * PAGE_SIZE + 1, 700),
    ];
    let mut it = IovIter::<Source>::iovec(&segs)?;
    kunit_assert_eq!(t, it.len(), 5700);
    kunit_assert_eq!(t, it.nr_segs(), 4);
    let mut s = slots::<8>();
    let b = it.extract(&mut s, usize::MAX)?;
    // Bytes 10 to 5010 of the first segment: two pages of 4 KiB, one of 64 KiB.
    kunit_assert_eq!(
        t,
        (b.offset(), b.len(), b.nr_pages()),
        (10, 5000, 5010usize.div_ceil(PAGE_SIZE))
    );
    let mut out = zeroed(5000)?;
    b.copy_out(&mut out);
    kunit_assert!(t, out[..] == expect[10..5010]);
    drop(b);
    let mut s = slots::<8>();
    let b = it.extract(&mut s, usize::MAX)?;
    kunit_assert_eq!(t, (b.offset(), b.len()), (1, 700));
    let mut out = [0u8; 700];
    b.copy_out(&mut out);
    kunit_assert!(t, out[..] == expect[2 * PAGE_SIZE + 1..2 * PAGE_SIZE + 701]);
    drop(b);
    kunit_assert!(t, it.is_empty());
    Ok(())
}

/// IOVEC construction checks: too many segments and negative lengths are EINVAL.
fn iovec_checks(t: &Test) -> CaseResult {
    let addr = user_buffer(t, 1, 0)?;
    let mut many = KVec::new();
    for _ in 0..1025 {
        many.push(UserVec::new(addr, 1), GFP_KERNEL)?;
    }
    kunit_assert_eq!(t, IovIter::<Source>::iovec(&many).err(), Some(EINVAL));
    kunit_assert!(t, IovIter::<Source>::iovec(&many[..1024]).is_ok());
    let neg = [UserVec::new(addr, usize::MAX - 5)];
    kunit_assert_eq!(t, IovIter::<Source>::iovec(&neg).err(), Some(EINVAL));
    Ok(())
}

/// A read-only mapping as a read destination: EFAULT, nothing pinned, iterator unchanged; as a
/// write source it pins fine.
fn readonly_dest_efault(t: &Test) -> CaseResult {
    let addr = t.vm_mmap(2 * PAGE_SIZE, true, false)?;
    let before = counters();
    let mut it = IovIter::<Dest>::ubuf(addr, 2 * PAGE_SIZE)?;
    let mut s = slots::<2>();
    kunit_assert_eq!(t, it.extract(&mut s, usize::MAX).err(), Some(EFAULT));
    kunit_assert_eq!(t, it.len(), 2 * PAGE_SIZE);
    kunit_assert_eq!(t, counters(), before);
    let mut src = IovIter::<Source>::ubuf(addr, 2 * PAGE_SIZE)?;
    let b = src.extract(&mut s, usize::MAX)?;
    kunit_assert_eq!(t, (b.mode(), b.nr_pages()), (Mode::Pinned, 2));
    drop(b);
    kunit_assert!(t, counters().since(&before).pinned == 2);
    kunit_assert!(t, counters().balanced());
    Ok(())
}

/// Nothing mapped (the page at 4 KiB, below mmap_min_addr) and a PROT_NONE mapping: EFAULT
/// from extraction and from GUP, nothing held, the iterator unchanged.
fn unmapped_and_prot_none_efault(t: &Test) -> CaseResult {
    let none = t.vm_mmap(PAGE_SIZE, false, false)?;
    let before = counters();
    for addr in [PAGE_SIZE, none] {
        let mut it = IovIter::<Source>::ubuf(addr, PAGE_SIZE)?;
        let mut s = slots::<1>();
        kunit_assert_eq!(t, it.extract(&mut s, usize::MAX).err(), Some(EFAULT));
        kunit_assert_eq!(t, it.len(), PAGE_SIZE);
        kunit_assert_eq!(
            t,
            pin_user_pages::<Source>(&UserMm::current()?, addr, PAGE_SIZE, Pin::ShortTerm, &mut s)
                .err(),
            Some(EFAULT)
        );
        kunit_assert_eq!(
            t,
            get_user_pages::<Source>(&UserMm::current()?, addr, PAGE_SIZE, &mut s).err(),
            Some(EFAULT)
        );
    }
    kunit_assert_eq!(t, counters(), before);
    Ok(())
}

/// A range whose tail is PROT_NONE: GUP pins the head, gives it back and fails with EFAULT.
fn gup_partial_gives_back(t: &Test) -> CaseResult {
    // Mappings are placed top-down: the second lands right below the first when there is room.
    let none = t.vm_mmap(PAGE_SIZE, false, false)?;
    let addr = user_buffer(t, 2, 1)?;
    if addr + 2 * PAGE_SIZE != none {
        t.skip(c_str!("mappings not adjacent"));
        return Ok(());
    }
    let before = counters();
    let mut s = slots::<3>();
    kunit_assert_eq!(
        t,
        pin_user_pages::<Source>(
            &UserMm::current()?,
            addr,
            3 * PAGE_SIZE,
            Pin::ShortTerm,
            &mut s
        )
        .err(),
        Some(EFAULT)
    );
    kunit_assert_eq!(
        t,
        get_user_pages::<Source>(&UserMm::current()?, addr, 3 * PAGE_SIZE, &mut s).err(),
        Some(EFAULT)
    );
    kunit_assert_eq!(t, counters().since(&before), Snapshot::default());
    // Extraction of the same range stops short at the hole instead: a partial batch.
    let mut it = IovIter::<Source>::ubuf(addr, 3 * PAGE_SIZE)?;
    let b = it.extract(&mut s, usize::MAX)?;
    kunit_assert_eq!(t, (b.len(), b.nr_pages()), (2 * PAGE_SIZE, 2));
    drop(b);
    kunit_assert_eq!(t, it.len(), PAGE_SIZE);
    Ok(())
}

/// The legacy FOLL_GET path: each page's refcount rises by one (no pin bias, not dma-pinned)
/// and drops back on release.
fn get_user_pages_refs(t: &Test) -> CaseResult {
    let addr = user_buffer(t, 2, 4)?;
    let mut s1 = slots::<2>();
    let a = get_user_pages::<Dest>(&UserMm::current()?, addr, 2 * PAGE_SIZE, &mut s1)?;
    kunit_assert_eq!(t, a.mode(), Mode::Referenced);
    let base: KVec<i32> = {
        let mut v = KVec::new();
        for p in a.pages() {
            v.push(p.ref_count(), GFP_KERNEL)?;
        }
        v
    };
    let mut s2 = slots::<2>();
    let b = get_user_pages::<Dest>(&UserMm::current()?, addr, 2 * PAGE_SIZE, &mut s2)?;
    for (i, p) in b.pages().enumerate() {
        kunit_assert_eq!(t, p.ref_count(), base[i] + 1);
        kunit_assert!(t, !p.maybe_dma_pinned());
    }
    drop(b);
    for (i, p) in a.pages().enumerate() {
        kunit_assert_eq!(t, p.ref_count(), base[i]);
    }
    let mut out = zeroed(2 * PAGE_SIZE)?;
    a.copy_out(&mut out);
    kunit_assert!(t, out[..] == patterned(2 * PAGE_SIZE, 4)?[..]);
    Ok(())
}

/// A long-term pin is a pin (bias, dma-pinned), marked long-term, counted, and released.
fn pin_longterm(t: &Test) -> CaseResult {
    let addr = user_buffer(t, 2, 5)?;
    let before = counters();
    let mut s = slots::<2>();
    let b = pin_user_pages::<Dest>(
        &UserMm::current()?,
        addr,
        2 * PAGE_SIZE,
        Pin::LongTerm,
        &mut s,
    )?;
    kunit_assert_eq!(t, b.mode(), Mode::Pinned);
    kunit_assert!(t, b.is_long_term());
    kunit_assert!(t, b.pages().all(|p| p.maybe_dma_pinned()));
    drop(b);
    let mut s = slots::<2>();
    let r = get_user_pages::<Source>(&UserMm::current()?, addr, 2 * PAGE_SIZE, &mut s)?;
    kunit_assert!(t, !r.pages().any(|p| p.maybe_dma_pinned()));
    drop(r);
    let d = counters().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned, d.pinned_longterm), (2, 2, 2));
    Ok(())
}

/// Short-term pin of an unaligned range: one pin per page touched, the bytes are the user's.
fn pin_short_unaligned(t: &Test) -> CaseResult {
    let addr = user_buffer(t, 3, 6)?;
    let mut s = slots::<3>();
    let b = pin_user_pages::<Source>(
        &UserMm::current()?,
        addr + PAGE_SIZE - 1,
        2,
        Pin::ShortTerm,
        &mut s,
    )?;
    kunit_assert_eq!(
        t,
        (b.offset(), b.len(), b.nr_pages()),
        (PAGE_SIZE - 1, 2, 2)
    );
    kunit_assert!(t, !b.is_long_term());
    let mut out = [0u8; 2];
    b.copy_out(&mut out);
    let expect = patterned(3 * PAGE_SIZE, 6)?;
    kunit_assert_eq!(t, out, [expect[PAGE_SIZE - 1], expect[PAGE_SIZE]]);
    let mut small = slots::<1>();
    kunit_assert_eq!(
        t,
        pin_user_pages::<Source>(
            &UserMm::current()?,
            addr + PAGE_SIZE - 1,
            2,
            Pin::ShortTerm,
            &mut small
        )
        .err(),
        Some(EINVAL)
    );
    Ok(())
}

/// The dirty release of a pinned batch marks the pages dirty; a plain drop does not.
fn release_dirty_pinned(t: &Test) -> CaseResult {
    let addr = user_buffer(t, 2, 3)?;
    let mut hold = slots::<2>();
    let h = pin_user_pages::<Source>(
        &UserMm::current()?,
        addr,
        2 * PAGE_SIZE,
        Pin::ShortTerm,
        &mut hold,
    )?;
    for p in h.pages() {
        p.test_clear_dirty();
    }
    let mut s = slots::<2>();
    let mut it = IovIter::<Dest>::ubuf(addr, 2 * PAGE_SIZE)?;
    it.extract(&mut s, usize::MAX)?.release();
    kunit_assert!(
        t,
        !h.pages().any(|p| p.is_dirty()),
        "a clean release dirtied a page"
    );
    let before = counters();
    let mut it = IovIter::<Dest>::ubuf(addr, 2 * PAGE_SIZE)?;
    it.extract(&mut s, usize::MAX)?.release_dirty();
    kunit_assert!(t, h.pages().all(|p| p.is_dirty()));
    kunit_assert_eq!(t, counters().since(&before).dirtied, 2);
    Ok(())
}

/// The dirty release of a referenced batch marks the pages dirty and drops the references.
fn release_dirty_referenced(t: &Test) -> CaseResult {
    let addr = user_buffer(t, 1, 3)?;
    let mut hold = slots::<1>();
    let h = pin_user_pages::<Source>(
        &UserMm::current()?,
        addr,
        PAGE_SIZE,
        Pin::ShortTerm,
        &mut hold,
    )?;
    let base = h.pages().map(|p| p.ref_count()).sum::<i32>();
    h.pages().for_each(|p| _ = p.test_clear_dirty());
    let mut s = slots::<1>();
    get_user_pages::<Dest>(&UserMm::current()?, addr, PAGE_SIZE, &mut s)?.release_dirty();
    kunit_assert!(t, h.pages().all(|p| p.is_dirty()));
    kunit_assert_eq!(t, h.pages().map(|p| p.ref_count()).sum::<i32>(), base);
    Ok(())
}

/// Pinned batches may outlive the iterator's borrow (`into_owned`); listed ones may not.
fn into_owned_only_when_held(t: &Test) -> CaseResult {
    let addr = user_buffer(t, 1, 1)?;
    let mut s = slots::<1>();
    let owned = {
        let mut it = IovIter::<Source>::ubuf(addr, PAGE_SIZE)?;
        let b = it.extract(&mut s, usize::MAX)?;
        match b.into_owned() {
            Ok(o) => o,
            Err(_) => {
                kunit_assert!(t, false, "a pinned batch was refused");
                return Ok(());
            }
        }
    };
    kunit_assert!(t, owned.pages().all(|p| p.maybe_dma_pinned()));
    drop(owned);
    let buf = [0u8; 16];
    let mut segs = [Kvec::<Source>::new(&buf)];
    let mut it = IovIter::kvec(&mut segs)?;
    let mut s = slots::<1>();
    let b = it.extract(&mut s, usize::MAX)?;
    kunit_assert!(t, b.into_owned().is_err());
    Ok(())
}

/// After every case above, the module's own counters balance.
/// `HeldPages::take_range()` pins a range a few pages per call, as the gup_test benchmarks do:
/// every page once, counted once; into a hole, the call that meets it stops the range short
/// (the bytes it asked for count, the pages it could not take do not); bad arguments are
/// `EINVAL`. Everything is released when the value goes.
fn held_take_range(t: &Test) -> CaseResult {
    let before = counters();
    let addr = user_buffer(t, 10, 6)?;
    let mm = UserMm::current()?;
    let write = GupFlags::new(0, false)?;
    let mut held = HeldPages::<Dest>::new(10, Mode::Pinned)?;
    let end = addr + 10 * PAGE_SIZE;
    kunit_assert_eq!(
        t,
        held.take_range(addr, end, 0, write, Walk::Fast(&mm)).err(),
        Some(EINVAL)
    );
    kunit_assert_eq!(
        t,
        held.take_range(addr, end, 3, write, Walk::Fast(&mm))?,
        10 * PAGE_SIZE
    );
    kunit_assert_eq!(t, held.len(), 10);
    for p in held.pages() {
        kunit_assert!(t, p.maybe_dma_pinned());
    }
    kunit_assert_eq!(t, counters().since(&before).pinned, 10);
    // The slots are full: nothing more is taken.
    kunit_assert_eq!(t, held.take_range(addr, end, 3, write, Walk::Fast(&mm))?, 0);
    drop(held);
    kunit_assert!(t, counters().since(&before).balanced());

    // Into a hole: 2 mapped pages, then none.
    let none = t.vm_mmap(PAGE_SIZE, false, false)?;
    let a2 = user_buffer(t, 2, 7)?;
    if a2 + 2 * PAGE_SIZE != none {
        t.skip(c_str!("mappings not adjacent"));
        return Ok(());
    }
    let mut refs = HeldPages::<Source>::new(4, Mode::Referenced)?;
    let r = refs.take_range(
        a2,
        a2 + 4 * PAGE_SIZE,
        3,
        GupFlags::new(0, false)?,
        Walk::Fast(&mm),
    );
    kunit_assert_eq!(t, r?, 3 * PAGE_SIZE);
    kunit_assert_eq!(t, refs.len(), 2);
    kunit_assert_eq!(t, counters().since(&before).referenced, 2);
    drop(refs);
    kunit_assert!(t, counters().since(&before).balanced());
    Ok(())
}

/// The direction decides `FOLL_WRITE`: a destination pin or reference of a read-only mapping
/// is refused (`EFAULT`, nothing held), a source one is taken; `FOLL_WRITE` among the flags a
/// caller chooses is `EINVAL` (the direction says it); a destination `take_range` over a
/// read-only mapping takes nothing.
fn direction_decides_foll_write(t: &Test) -> CaseResult {
    let addr = t.vm_mmap(2 * PAGE_SIZE, true, false)?;
    let before = counters();
    let mut s = slots::<2>();
    kunit_assert_eq!(
        t,
        pin_user_pages::<Dest>(
            &UserMm::current()?,
            addr,
            2 * PAGE_SIZE,
            Pin::ShortTerm,
            &mut s
        )
        .err(),
        Some(EFAULT)
    );
    kunit_assert_eq!(
        t,
        get_user_pages::<Dest>(&UserMm::current()?, addr, 2 * PAGE_SIZE, &mut s).err(),
        Some(EFAULT)
    );
    kunit_assert_eq!(t, counters(), before);
    let b = pin_user_pages::<Source>(
        &UserMm::current()?,
        addr,
        2 * PAGE_SIZE,
        Pin::ShortTerm,
        &mut s,
    )?;
    kunit_assert_eq!(t, (b.mode(), b.nr_pages()), (Mode::Pinned, 2));
    drop(b);
    kunit_assert_eq!(t, GupFlags::new(GupFlags::WRITE, false).err(), Some(EINVAL));
    let mm = UserMm::current()?;
    let mut held = HeldPages::<Dest>::new(2, Mode::Pinned)?;
    let end = addr + 2 * PAGE_SIZE;
    held.take_range(addr, end, 2, GupFlags::new(0, false)?, Walk::Fast(&mm))?;
    kunit_assert_eq!(t, held.len(), 0);
    let mut held = HeldPages::<Source>::new(2, Mode::Pinned)?;
    held.take_range(addr, end, 2, GupFlags::new(0, false)?, Walk::Fast(&mm))?;
    kunit_assert_eq!(t, held.len(), 2);
    drop(held);
    kunit_assert!(t, counters().since(&before).balanced());
    Ok(())
}

/// `PageRef::read` (in C) copies the bytes of a range within the page and refuses one that
/// leaves it; `copy_out` stops at the end of its output.
fn page_read_checked(t: &Test) -> CaseResult {
    let addr = user_buffer(t, 1, 9)?;
    let expect = patterned(PAGE_SIZE, 9)?;
    let mut s = slots::<1>();
    let b = pin_user_pages::<Source>(&UserMm::current()?, addr, PAGE_SIZE, Pin::ShortTerm, &mut s)?;
    let Some(p) = b.pages().next() else {
        kunit_assert!(t, false, "no page");
        return Ok(());
    };
    let mut out = [0u8; 200];
    kunit_assert_eq!(t, p.read(PAGE_SIZE - 100, &mut out).err(), Some(EINVAL));
    kunit_assert_eq!(t, p.read(usize::MAX, &mut out[..2]).err(), Some(EINVAL));
    p.read(PAGE_SIZE - 200, &mut out)?;
    kunit_assert!(t, out[..] == expect[PAGE_SIZE - 200..]);
    let mut short = [0u8; 10];
    kunit_assert_eq!(t, b.copy_out(&mut short), 10);
    kunit_assert!(t, short[..] == expect[..10]);
    Ok(())
}

/// `HeldPages::new` with a size from user space: more slots than pages of RAM, or a size whose
/// array overflows, is `ENOMEM` at once (no allocation, no warning); listed is `EINVAL`; the
/// largest allowed size is accepted or fails quietly with `ENOMEM`.
fn held_pages_bounded(t: &Test) -> CaseResult {
    let max = HeldPages::<Dest>::max_capacity();
    kunit_assert!(t, max > 0);
    kunit_assert_eq!(
        t,
        HeldPages::<Dest>::new(usize::MAX, Mode::Pinned).err(),
        Some(ENOMEM)
    );
    kunit_assert_eq!(
        t,
        HeldPages::<Source>::new(max + 1, Mode::Referenced).err(),
        Some(ENOMEM)
    );
    kunit_assert_eq!(
        t,
        HeldPages::<Source>::new(4, Mode::Listed).err(),
        Some(EINVAL)
    );
    match HeldPages::<Dest>::new(max, Mode::Pinned) {
        Ok(h) => kunit_assert!(t, h.is_empty()),
        Err(e) => kunit_assert_eq!(t, e, ENOMEM),
    }
    Ok(())
}

fn counters_balanced(t: &Test) -> CaseResult {
    let c = counters();
    kunit_assert!(t, c.balanced(), "{:?}", c);
    kunit_assert!(t, c.pinned > 0 && c.referenced > 0 && c.listed > 0);
    Ok(())
}

kunit_suite!(
    iovx_extract_user,
    [
        ubuf_dest_pins_each_page_once,
        ubuf_source_contents,
        ubuf_unaligned,
        ubuf_partial_and_loop,
        iovec_segments,
        iovec_checks,
        readonly_dest_efault,
        unmapped_and_prot_none_efault,
        gup_partial_gives_back,
        get_user_pages_refs,
        pin_longterm,
        pin_short_unaligned,
        release_dirty_pinned,
        release_dirty_referenced,
        into_owned_only_when_held,
        held_take_range,
        direction_decides_foll_write,
        page_read_checked,
        held_pages_bounded,
        counters_balanced,
    ]
);
