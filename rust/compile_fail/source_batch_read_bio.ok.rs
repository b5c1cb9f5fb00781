// SPDX-License-Identifier: GPL-2.0
//
// Twin of source_batch_read_bio.rs: a read fills a destination buffer, borrowed mutably.

use crate::abstractions::bio::{Bio, BioSlot, Target};
use crate::abstractions::iov::{Dest, IovIter, Kvec};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse(target: Target<'_>, data: &mut [u8]) -> Result<usize> {
    let mut segs = [Kvec::<Dest>::new(data)];
    let mut iter = IovIter::kvec(&mut segs)?;
    let mut slots = [PageSlot::EMPTY; 4];
    let batch = iter.extract(&mut slots, PAGE_SIZE)?;
    let mut slot = BioSlot::new();
    let mut bio = Bio::<'_, '_, Dest, _>::new_inline(&mut slot, target, 0);
    if bio.add(batch).is_err() {
        return Err(ENOSPC);
    }
    bio.submit_wait()
}
