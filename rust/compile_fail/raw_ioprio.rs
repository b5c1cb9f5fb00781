// SPDX-License-Identifier: GPL-2.0
//
// A raw I/O priority of class 7 for the bios: I/O schedulers index arrays by the class without
// checking it. A target takes only an `IoPrio`, checked when made.
//
// error: E0308

use crate::abstractions::bio::{Bio, Target};
use crate::abstractions::iov::Dest;
use kernel::prelude::*;

pub fn misuse(target: Target<'_>) -> Result {
    let bio = Bio::<Dest>::new(target.with_ioprio(7 << 13), 0, 1)?;
    drop(bio);
    Ok(())
}
