// SPDX-License-Identifier: GPL-2.0
//
// The flags a driver can pass: none.

use crate::abstractions::extract::ExtractFlags;
use crate::abstractions::iov::{Dest, IovIter};
use crate::abstractions::pages::PageSlot;
use kernel::prelude::*;

pub fn ok(iter: &mut IovIter<'_, Dest>, slots: &mut [PageSlot]) -> Result<usize> {
    let b = iter.extract_with(slots, usize::MAX, ExtractFlags::NONE)?;
    Ok(b.nr_pages())
}
