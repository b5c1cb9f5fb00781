// SPDX-License-Identifier: GPL-2.0
//
// Releasing a batch of pinned user pages (a read's user buffer) twice: the second unpin would
// drop a pin that is not ours. Here a short batch is given back, and then released again
// on the way out. Releasing consumes the batch.
//
// error: E0382

use crate::abstractions::iov::{Dest, IovIter};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse(addr: usize) -> Result {
    let mut slots = [PageSlot::EMPTY; 2];
    let batch = IovIter::<Dest>::ubuf(addr, PAGE_SIZE)?.extract(&mut slots, PAGE_SIZE)?;
    if batch.len() < PAGE_SIZE {
        batch.release();
    }
    batch.release_dirty();
    Ok(())
}
