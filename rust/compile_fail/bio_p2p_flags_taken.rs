// SPDX-License-Identifier: GPL-2.0
//
// A driver cannot take a bio's extraction flags: with ITER_ALLOW_P2PDMA from a bio of a queue
// with P2P DMA, it could extract P2P pages and put them into a bio of a queue without it. Only
// the layer's submission paths take them, for batches that go into that bio.
//
// error: E0624

use crate::abstractions::bio::Bio;
use crate::abstractions::iov::{Dest, IovIter};
use crate::abstractions::pages::PageSlot;
use kernel::prelude::*;

pub fn misuse(
    p2p: &Bio<'_, '_, Dest>,
    iter: &mut IovIter<'_, Dest>,
    slots: &mut [PageSlot],
) -> Result<usize> {
    let b = iter.extract_with(slots, usize::MAX, p2p.extract_flags())?;
    Ok(b.nr_pages())
}
