// SPDX-License-Identifier: GPL-2.0
//
// Passthrough limits cannot be made up field by field: a block size of 0 (a division by zero in
// a driver that checks lengths against it) or masks that are not masks would pass for a queue's.
//
// error: E0451

use crate::abstractions::passthrough::Limits;

pub fn misuse() -> Limits {
    Limits {
        max_bytes: 4096,
        max_segments: 1,
        align: 3,
        virt_boundary: 0,
        logical_block_size: 0,
    }
}
