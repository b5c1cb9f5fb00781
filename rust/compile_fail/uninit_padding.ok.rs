// SPDX-License-Identifier: GPL-2.0
//
// Twin of uninit_padding.rs: the gup_test structure, whose generated binding spells out its
// padding, goes both ways.

use crate::abstractions::uapi::{GupTest, UserArg};
use kernel::prelude::*;

pub fn misuse(user: usize) -> Result {
    let mut arg = UserArg::<GupTest>::read(user)?;
    arg.get_mut().test_flags |= 1;
    arg.write(user)
}
