// SPDX-License-Identifier: GPL-2.0
//
// Twin of copy_to_source.rs: the bytes of a read go into a destination iterator.

use crate::abstractions::iov::{Dest, IovIter};

pub fn misuse(iter: &mut IovIter<'_, Dest>, data: &[u8]) -> usize {
    iter.copy_to_iter(data)
}
