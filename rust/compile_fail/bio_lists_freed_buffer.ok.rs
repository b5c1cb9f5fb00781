// SPDX-License-Identifier: GPL-2.0
//
// Twin of bio_lists_freed_buffer.rs: the buffer is freed once the bio is over.

use crate::abstractions::bio::{Bio, BioSlot, Target};
use crate::abstractions::iov::{IovIter, Kvec, Source};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse(target: Target<'_>) -> Result<usize> {
    let buf = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
    let mut slots = [PageSlot::EMPTY; 2];
    let mut segs = [Kvec::<Source>::new(&buf)];
    let mut iter = IovIter::kvec(&mut segs)?;
    let batch = iter.extract(&mut slots, PAGE_SIZE)?;
    let mut slot = BioSlot::new();
    let mut bio = Bio::<Source, _>::new_inline(&mut slot, target, 0);
    if bio.add(batch).is_err() {
        return Err(ENOSPC);
    }
    let n = bio.submit_wait();
    drop(buf);
    n
}
