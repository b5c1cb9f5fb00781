// SPDX-License-Identifier: GPL-2.0
//
// Twin of target_outlives_disk.rs: the disk goes once its bios are gone.

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
    let bio = Bio::<Dest>::new(target, 0, 1)?;
    drop(bio);
    drop(disk);
    Ok(())
}
