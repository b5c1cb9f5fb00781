// SPDX-License-Identifier: GPL-2.0
//
// A write bio (REQ_OP_WRITE) taken for a read: the destination pages added to it would be
// written to the disk instead of filled from it, overwriting the sectors the read was to
// return. A bio's operation is its direction type, fixed when it is made.
//
// error: E0308

use crate::abstractions::bio::{Bio, Target};
use crate::abstractions::iov::{Dest, Source};
use kernel::prelude::*;

pub fn misuse(target: Target<'_>) -> Result {
    let bio: Bio<'_, '_, Dest> = Bio::<Source>::new(target, 0, 1)?;
    drop(bio);
    Ok(())
}
