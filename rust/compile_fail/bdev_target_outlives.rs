// SPDX-License-Identifier: GPL-2.0
//
// A target borrows the block device it was made from: it cannot be kept after the device is
// released (its gendisk and queue could then be gone).
//
// error: E0505

use crate::abstractions::bdev::Bdev;
use crate::abstractions::bio::Target;

pub fn misuse(bdev: Bdev) -> u64 {
    let target: Target<'_> = bdev.target();
    drop(bdev);
    target.capacity()
}
