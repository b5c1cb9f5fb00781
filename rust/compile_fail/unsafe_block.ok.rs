// SPDX-License-Identifier: GPL-2.0
//
// Twin of unsafe_block.rs: the iterator keeps the lifetime of its memory.

use crate::abstractions::iov::{IovIter, Source};

pub fn misuse(iter: IovIter<'_, Source>) -> IovIter<'_, Source> {
    iter
}
