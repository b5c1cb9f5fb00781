// SPDX-License-Identifier: GPL-2.0
//
// Dirtying the pages of a write's batch on release: they were pinned without FOLL_WRITE, and
// marking a page dirty that nobody wrote (possibly a read-only file page) corrupts the file
// system's view of it. `release_dirty` exists for `Dest` batches only.
//
// error: E0599

use crate::abstractions::iov::{IovIter, Source};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse(addr: usize) -> Result {
    let mut slots = [PageSlot::EMPTY; 1];
    let batch = IovIter::<Source>::ubuf(addr, PAGE_SIZE)?.extract(&mut slots, PAGE_SIZE)?;
    batch.release_dirty();
    Ok(())
}
