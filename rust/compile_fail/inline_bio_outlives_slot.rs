// SPDX-License-Identifier: GPL-2.0
//
// An inline bio that outlives the stack slot it lives in: the bio and its segments are the
// slot's memory. The bio borrows the slot mutably for as long as it exists.
//
// error: E0597

use crate::abstractions::bio::{Bio, BioSlot, Target};
use crate::abstractions::iov::Dest;
use kernel::prelude::*;

pub fn misuse(target: Target<'_>) -> Result<usize> {
    let bio = {
        let mut slot = BioSlot::new();
        Bio::<Dest, _>::new_inline(&mut slot, target, 0)
    };
    bio.submit_wait()
}
