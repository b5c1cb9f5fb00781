// SPDX-License-Identifier: GPL-2.0
//
// Twin of ioctl_device_borrows.rs: the data owns the limit.

use crate::abstractions::miscdev::IoctlDevice;
use kernel::prelude::*;

pub struct Limited(u64);

impl IoctlDevice for Limited {
    fn ioctl(&self, _cmd: u32, arg: usize) -> Result<isize> {
        if arg as u64 > self.0 {
            return Err(EINVAL);
        }
        Ok(0)
    }
}
