// SPDX-License-Identifier: GPL-2.0
//
// Reading an ioctl argument with implicit padding and writing it back to user space: the
// padding bytes are uninitialised (undefined behaviour to read, and kernel stack leaked to user
// space). A user argument must be plain bytes (`FromBytes` to read, `AsBytes` as well to write
// back), which a struct with padding is not, and implementing those traits is `unsafe`, out of
// a driver's reach: `read` is refused already, and `write` with it.
//
// error: E0277 E0599

use crate::abstractions::uapi::UserArg;
use kernel::prelude::*;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Padded {
    pub flags: u32,
    // Four bytes of padding here.
    pub addr: u64,
}

pub fn misuse(user: usize) -> Result {
    let mut arg = UserArg::<Padded>::read(user)?;
    arg.get_mut().flags |= 1;
    arg.write(user)
}
