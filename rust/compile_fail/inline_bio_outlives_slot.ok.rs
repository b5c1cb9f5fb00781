// SPDX-License-Identifier: GPL-2.0
//
// Twin of inline_bio_outlives_slot.rs: the slot outlives the bio.

use crate::abstractions::bio::{Bio, BioSlot, Target};
use crate::abstractions::iov::Dest;
use kernel::prelude::*;

pub fn misuse(target: Target<'_>) -> Result<usize> {
    let mut slot = BioSlot::new();
    let bio = { Bio::<Dest, _>::new_inline(&mut slot, target, 0) };
    bio.submit_wait()
}
