// SPDX-License-Identifier: GPL-2.0
//
// A bio for a disk that has been torn down: the target borrows the disk, so the disk cannot
// be dropped while bios may still be made for it.
//
// error: E0505

use crate::abstractions::bio::Bio;
use crate::abstractions::blk::{Disk, Driver, Failure, Request};
use crate::abstractions::iov::Dest;
use kernel::prelude::*;

pub struct Null;

impl Driver for Null {
    fn transfer(&self, _rq: &Request<'_>) -> Result<(), Failure> {
        Ok(())
    }
}

pub fn misuse(disk: Disk<Null>) -> Result {
    let target = disk.target();
    drop(disk);
    let bio = Bio::<Dest>::new(target, 0, 1)?;
    drop(bio);
    Ok(())
}
