// SPDX-License-Identifier: GPL-2.0
//
// Twin of source_gup_held_dest.rs: pages held for writing are taken for writing.

use crate::abstractions::gup::{gup, GupFlags, HeldPages, UserMm, Walk};
use crate::abstractions::iov::Dest;
use crate::abstractions::pages::Mode;
use kernel::prelude::*;

pub fn misuse(addr: usize) -> Result<HeldPages<Dest>> {
    let mm = UserMm::current()?;
    let mut held = HeldPages::<Dest>::new(4, Mode::Pinned)?;
    held.take(4, |slots| {
        gup::<Dest>(
            addr,
            GupFlags::default(),
            Mode::Pinned,
            Walk::Fast(&mm),
            slots,
        )
    })?;
    Ok(held)
}
