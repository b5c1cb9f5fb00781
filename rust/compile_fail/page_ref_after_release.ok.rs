// SPDX-License-Identifier: GPL-2.0
//
// Twin of page_ref_after_release.rs: the page is inspected while the batch holds it.

use crate::abstractions::iov::{Dest, IovIter};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse(addr: usize) -> Result<bool> {
    let mut slots = [PageSlot::EMPTY; 1];
    let batch = IovIter::<Dest>::ubuf(addr, PAGE_SIZE)?.extract(&mut slots, PAGE_SIZE)?;
    let page = batch.pages().next().ok_or(EINVAL)?;
    let pinned = page.maybe_dma_pinned();
    batch.release();
    Ok(pinned)
}
