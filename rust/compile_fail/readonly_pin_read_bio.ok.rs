// SPDX-License-Identifier: GPL-2.0
//
// Twin of readonly_pin_read_bio.rs: the pages a read fills are pinned for writing.

use crate::abstractions::bio::{Bio, BioSlot, Target};
use crate::abstractions::gup::{pin_user_pages, Pin, UserMm};
use crate::abstractions::iov::Dest;
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse(target: Target<'_>, addr: usize) -> Result<usize> {
    let mut slots = [PageSlot::EMPTY; 2];
    let mm = UserMm::current()?;
    let batch = pin_user_pages::<Dest>(&mm, addr, PAGE_SIZE, Pin::ShortTerm, &mut slots)?;
    let mut slot = BioSlot::new();
    let mut bio = Bio::<'_, '_, Dest, _>::new_inline(&mut slot, target, 0);
    if bio.add(batch).is_err() {
        return Err(ENOSPC);
    }
    bio.submit_wait()
}
