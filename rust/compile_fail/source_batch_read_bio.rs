// SPDX-License-Identifier: GPL-2.0
//
// A batch extracted from a source iterator (the data of a write, here a shared `&[u8]`) added
// to a read bio: the device would write into memory lent only for reading. The bio's
// direction comes from its type, and `Bio::add` takes batches of the same direction only.
//
// error: E0308

use crate::abstractions::bio::{Bio, BioSlot, Target};
use crate::abstractions::iov::{Dest, IovIter, Kvec, Source};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse(target: Target<'_>, data: &[u8]) -> Result<usize> {
    let mut segs = [Kvec::<Source>::new(data)];
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
