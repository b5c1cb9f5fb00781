// SPDX-License-Identifier: GPL-2.0
//
// Twin of mmap_lock_twice.rs: the lock is taken again only after it was let go.

use crate::abstractions::gup::{MmapReadGuard, UserMm};
use kernel::prelude::*;

pub fn misuse() -> Result {
    let mut mm = UserMm::current()?;
    let first = MmapReadGuard::lock(&mut mm)?;
    drop(first);
    let second = MmapReadGuard::lock(&mut mm)?;
    drop(second);
    Ok(())
}
