// SPDX-License-Identifier: GPL-2.0
//
// Writing an ioctl argument with implicit padding back to user space: the padding bytes are
// uninitialised (undefined behaviour to read, and a leak of kernel stack to user space). A
// user argument must be plain bytes both ways (`FromBytes + AsBytes`), which a struct with
// padding is not, and implementing those traits is `unsafe`, out of a driver's reach.
//
// error: E0277 E0599

use crate::abstractions::uapi::UserArg;
use kernel::prelude::*;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Args {
    pub flags: u32,
    // Four bytes of padding here.
    pub addr: u64,
}

pub fn misuse(user: usize) -> Result {
    let mut arg = UserArg::<Args>::read(user)?;
    arg.get_mut().flags |= 1;
    arg.write(user)
}
