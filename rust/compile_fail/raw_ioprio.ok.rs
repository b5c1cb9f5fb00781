// SPDX-License-Identifier: GPL-2.0
//
// Twin of raw_ioprio.rs: the priority is checked when made (an invalid level is `EINVAL`).

use crate::abstractions::bio::{Bio, IoPrio, IoPrioClass, Target};
use crate::abstractions::iov::Dest;
use kernel::prelude::*;

pub fn misuse(target: Target<'_>) -> Result {
    let prio = IoPrio::new(IoPrioClass::BestEffort, 7)?;
    let bio = Bio::<Dest>::new(target.with_ioprio(prio), 0, 1)?;
    drop(bio);
    Ok(())
}
