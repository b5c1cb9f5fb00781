// SPDX-License-Identifier: GPL-2.0
//
// Twin of allow_unsafe.rs: a driver works on the iterator the layer lends it.

use crate::abstractions::iov::{IovIter, Source};

pub fn misuse(iter: &IovIter<'_, Source>) -> usize {
    iter.len()
}
