// SPDX-License-Identifier: GPL-2.0
//
// Sending a batch to another thread: the batch borrows the caller's page array (and, when
// listed, the iterator's memory), which the caller may reuse or free as soon as the batch is
// out of its hands. Batches are not `Send`.
//
// error: E0277

use crate::abstractions::iov::{Dest, IovIter};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

fn need_send<T: Send>(_: T) {}

pub fn misuse(addr: usize) -> Result {
    let mut slots = [PageSlot::EMPTY; 4];
    let batch = IovIter::<Dest>::ubuf(addr, 4 * PAGE_SIZE)?.extract(&mut slots, 4 * PAGE_SIZE)?;
    need_send(batch);
    Ok(())
}
