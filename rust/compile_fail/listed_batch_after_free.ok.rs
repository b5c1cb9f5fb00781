// SPDX-License-Identifier: GPL-2.0
//
// Twin of listed_batch_after_free.rs: the batch is released before the buffer is freed.

use crate::abstractions::iov::{IovIter, Kvec, Source};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse() -> Result<usize> {
    let buf = KVec::from_elem(0u8, 2 * PAGE_SIZE, GFP_KERNEL)?;
    let mut slots = [PageSlot::EMPTY; 4];
    let mut segs = [Kvec::<Source>::new(&buf)];
    let mut iter = IovIter::kvec(&mut segs)?;
    let batch = iter.extract(&mut slots, 2 * PAGE_SIZE)?;
    drop(iter);
    let mut first = [0u8; 16];
    let n = batch.copy_out(&mut first);
    batch.release();
    drop(buf);
    Ok(n)
}
