// SPDX-License-Identifier: GPL-2.0
//
// Inspecting a page of a batch after the batch released it: the page may be freed and reused
// by then. A page reference borrows its batch.
//
// error: E0505

use crate::abstractions::iov::{Dest, IovIter};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse(addr: usize) -> Result<bool> {
    let mut slots = [PageSlot::EMPTY; 1];
    let batch = IovIter::<Dest>::ubuf(addr, PAGE_SIZE)?.extract(&mut slots, PAGE_SIZE)?;
    let page = batch.pages().next().ok_or(EINVAL)?;
    batch.release();
    Ok(page.maybe_dma_pinned())
}
