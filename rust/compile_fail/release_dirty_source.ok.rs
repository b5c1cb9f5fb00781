// SPDX-License-Identifier: GPL-2.0
//
// Twin of release_dirty_source.rs: a write's pages are released clean.

use crate::abstractions::iov::{IovIter, Source};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse(addr: usize) -> Result {
    let mut slots = [PageSlot::EMPTY; 1];
    let batch = IovIter::<Source>::ubuf(addr, PAGE_SIZE)?.extract(&mut slots, PAGE_SIZE)?;
    batch.release();
    Ok(())
}
