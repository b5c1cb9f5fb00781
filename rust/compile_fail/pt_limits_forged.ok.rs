// SPDX-License-Identifier: GPL-2.0
//
// Passthrough limits are made by the checked constructor, which refuses a block size of 0.

use crate::abstractions::passthrough::Limits;
use kernel::prelude::*;

pub fn ok() -> Result<Limits> {
    Limits::new(4096, 1, 3, 0, 512)
}
