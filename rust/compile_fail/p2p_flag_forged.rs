// SPDX-License-Identifier: GPL-2.0
//
// ITER_ALLOW_P2PDMA cannot be asked for by a driver: P2P pages extracted with it could go into a
// bio or request of a queue without P2P DMA. Only the layer makes the flag, from the queue the
// pages go to.
//
// error: E0624

use crate::abstractions::extract::ExtractFlags;
use crate::abstractions::iov::{Dest, IovIter};
use crate::abstractions::pages::PageSlot;
use kernel::prelude::*;

pub fn misuse(iter: &mut IovIter<'_, Dest>, slots: &mut [PageSlot]) -> Result<usize> {
    let b = iter.extract_with(slots, usize::MAX, ExtractFlags::allow_p2pdma())?;
    Ok(b.nr_pages())
}
