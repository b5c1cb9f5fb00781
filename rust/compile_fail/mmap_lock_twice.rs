// SPDX-License-Identifier: GPL-2.0
//
// The mmap lock taken a second time by the task that holds it: a recursive read lock, which
// deadlocks once a writer queues between the two. Each guard borrows the `UserMm` exclusively.
//
// error: E0499

use crate::abstractions::gup::{MmapReadGuard, UserMm};
use kernel::prelude::*;

pub fn misuse() -> Result {
    let mut mm = UserMm::current()?;
    let outer = MmapReadGuard::lock(&mut mm)?;
    let inner = MmapReadGuard::lock(&mut mm)?;
    drop(inner);
    drop(outer);
    Ok(())
}
