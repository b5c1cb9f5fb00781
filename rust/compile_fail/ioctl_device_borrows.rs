// SPDX-License-Identifier: GPL-2.0
//
// An ioctl device whose data borrows (here a limit owned by the caller): an open file keeps the
// data after the device is dropped, and its ioctls would read the limit after its owner freed
// it. `IoctlDevice` (like `DirectIo`) requires `'static`: rustc 1.95 says so twice, for the
// impl's lifetime bound and for its method.
//
// error: E0478 E0803

use crate::abstractions::miscdev::IoctlDevice;
use kernel::prelude::*;

pub struct Limited<'a>(&'a u64);

impl<'a> IoctlDevice for Limited<'a> {
    fn ioctl(&self, _cmd: u32, arg: usize) -> Result<isize> {
        if arg as u64 > *self.0 {
            return Err(EINVAL);
        }
        Ok(0)
    }
}
