// SPDX-License-Identifier: GPL-2.0
//
// Twin of bdev_target_outlives.rs: the target is used while the device is held.

use crate::abstractions::bdev::Bdev;
use crate::abstractions::bio::Target;

pub fn misuse(bdev: Bdev) -> u64 {
    let target: Target<'_> = bdev.target();
    let sectors = target.capacity();
    drop(bdev);
    sectors
}
