// SPDX-License-Identifier: GPL-2.0
//
// Twin of fast_walk_under_mmap_lock.rs: under the lock, the walk is the locked one.

use crate::abstractions::gup::{gup, GupFlags, MmapReadGuard, UserMm, Walk};
use crate::abstractions::iov::Dest;
use crate::abstractions::pages::{Mode, PageSlot};
use kernel::prelude::*;

pub fn misuse(addr: usize) -> Result<usize> {
    let mut mm = UserMm::current()?;
    let guard = MmapReadGuard::lock(&mut mm)?;
    let mut slots = [PageSlot::EMPTY; 4];
    let batch = gup::<Dest>(
        addr,
        GupFlags::default(),
        Mode::Pinned,
        Walk::Locked(&guard),
        &mut slots,
    )?;
    let n = batch.nr_pages();
    drop(batch);
    drop(guard);
    Ok(n)
}
