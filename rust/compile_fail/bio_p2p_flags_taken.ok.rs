// SPDX-License-Identifier: GPL-2.0
//
// A driver may ask whether a bio's pages are extracted with ITER_ALLOW_P2PDMA, and extracts
// with no flag.

use crate::abstractions::bio::Bio;
use crate::abstractions::extract::ExtractFlags;
use crate::abstractions::iov::{Dest, IovIter};
use crate::abstractions::pages::PageSlot;
use kernel::prelude::*;

pub fn ok(
    p2p: &Bio<'_, '_, Dest>,
    iter: &mut IovIter<'_, Dest>,
    slots: &mut [PageSlot],
) -> Result<usize> {
    let _asked = p2p.allows_p2pdma();
    let b = iter.extract_with(slots, usize::MAX, ExtractFlags::NONE)?;
    Ok(b.nr_pages())
}
