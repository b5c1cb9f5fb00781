// SPDX-License-Identifier: GPL-2.0
//
// Twin of write_bio_as_read.rs: a read bio is made as one.

use crate::abstractions::bio::{Bio, Target};
use crate::abstractions::iov::Dest;
use kernel::prelude::*;

pub fn misuse(target: Target<'_>) -> Result {
    let bio: Bio<'_, '_, Dest> = Bio::<Dest>::new(target, 0, 1)?;
    drop(bio);
    Ok(())
}
