// SPDX-License-Identifier: GPL-2.0
//
// Copying into a source iterator: the buffer of a write is read, never written (it may be a
// read-only mapping or a shared kernel buffer). `copy_to_iter` exists for `Dest` only.
//
// error: E0599

use crate::abstractions::iov::{IovIter, Source};

pub fn misuse(iter: &mut IovIter<'_, Source>, data: &[u8]) -> usize {
    iter.copy_to_iter(data)
}
