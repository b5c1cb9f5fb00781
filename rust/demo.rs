// SPDX-License-Identifier: GPL-2.0

//! What `make run` shows: the abstractions at work, logged to the kernel log.

#![deny(unsafe_code)]

use crate::abstractions::counters::COUNTERS;
use crate::abstractions::iov::{Bvec, Dest, IovIter, Kvec, Source};
use crate::abstractions::pages::PageSlot;
use kernel::{
    page::{Page, PAGE_SIZE},
    prelude::*,
};

/// Copies a message through KVEC iterators, lists the pages of a KVEC and a BVEC iterator, and
/// logs each step and the page counters.
pub(crate) fn run() -> Result {
    copy()?;
    list()?;
    let c = COUNTERS.snapshot();
    pr_info!(
        "demo: counters: pinned {} unpinned {} referenced {} unreferenced {} listed {} unlisted {} ({})\n",
        c.pinned,
        c.unpinned,
        c.referenced,
        c.unreferenced,
        c.listed,
        c.unlisted,
        if c.balanced() { "balanced" } else { "NOT balanced" }
    );
    Ok(())
}

fn copy() -> Result {
    let msg = b"iov-extract: bytes through an iov_iter";
    let mut out = [0u8; 64];

    let mut src_segs = [
        Kvec::<Source>::new(&msg[..10]),
        Kvec::<Source>::new(&msg[10..]),
    ];
    let mut src = IovIter::kvec(&mut src_segs)?;
    pr_info!(
        "demo: source {:?} iterator, {} bytes in {} segments, will pin: {}\n",
        src.kind(),
        src.len(),
        src.nr_segs(),
        src.extract_will_pin()
    );
    let mut staged = [0u8; 64];
    let n = src.copy_from_iter(&mut staged);

    let m = {
        let mut dst_segs = [Kvec::<Dest>::new(&mut out)];
        let mut dst = IovIter::kvec(&mut dst_segs)?;
        dst.copy_to_iter(&staged[..n])
    };
    pr_info!("demo: copied {n} bytes out of the source and {m} into the destination\n");

    if out[..m] != msg[..] {
        pr_err!("demo: destination does not hold the source bytes\n");
        return Err(EIO);
    }
    pr_info!("demo: destination holds the source bytes\n");
    Ok(())
}

fn list() -> Result {
    // Three pages of kernel memory, 100 bytes in: a KVEC iterator lists, never pins.
    let mut buf = KVec::<u8>::with_capacity(3 * PAGE_SIZE, GFP_KERNEL)?;
    for i in 0..3 * PAGE_SIZE {
        buf.push((i % 251) as u8, GFP_KERNEL)?;
    }
    let mut segs = [Kvec::<Source>::new(&buf[100..100 + 2 * PAGE_SIZE - 192])];
    let mut it = IovIter::kvec(&mut segs)?;
    let mut slots = [
        PageSlot::EMPTY,
        PageSlot::EMPTY,
        PageSlot::EMPTY,
        PageSlot::EMPTY,
    ];
    let batch = it.extract(&mut slots, usize::MAX)?;
    pr_info!(
        "demo: KVEC extraction: {:?}, {} bytes in {} pages from offset {}, {} left\n",
        batch.mode(),
        batch.len(),
        batch.nr_pages(),
        batch.offset(),
        it.len()
    );
    drop(batch);

    let mut page = Page::alloc_page(GFP_KERNEL)?;
    let mut bsegs = [Bvec::<Dest>::new(&mut page, 512, 1024)?];
    let mut it = IovIter::bvec(&mut bsegs)?;
    let batch = it.extract(&mut slots, usize::MAX)?;
    let pinned = batch.pages().any(|p| p.maybe_dma_pinned());
    pr_info!(
        "demo: BVEC extraction: {:?}, {} bytes in {} page from offset {}, pinned: {}\n",
        batch.mode(),
        batch.len(),
        batch.nr_pages(),
        batch.offset(),
        pinned
    );
    Ok(())
}
