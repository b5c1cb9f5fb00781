// SPDX-License-Identifier: GPL-2.0
//
// Twin of batch_released_twice.rs: each path releases the batch once.

use crate::abstractions::iov::{Dest, IovIter};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse(addr: usize) -> Result {
    let mut slots = [PageSlot::EMPTY; 2];
    let batch = IovIter::<Dest>::ubuf(addr, PAGE_SIZE)?.extract(&mut slots, PAGE_SIZE)?;
    if batch.len() < PAGE_SIZE {
        batch.release();
    } else {
        batch.release_dirty();
    }
    Ok(())
}
