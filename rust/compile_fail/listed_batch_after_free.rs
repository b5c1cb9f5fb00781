// SPDX-License-Identifier: GPL-2.0
//
// A batch listed from a KVEC iterator, used after the buffer has been freed. Listed pages
// carry no reference of their own: only the borrow of the buffer keeps them allocated, and
// the batch keeps that borrow ('data) even after the iterator is gone.
//
// error: E0505

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
    drop(buf);
    let mut first = [0u8; 16];
    let n = batch.copy_out(&mut first);
    batch.release();
    Ok(n)
}
