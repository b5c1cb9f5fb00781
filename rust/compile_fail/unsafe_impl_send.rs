// SPDX-License-Identifier: GPL-2.0
//
// The guard against a promise only the layer may make: an `unsafe impl Send` on a wrapper
// would carry an iterator (and the task's user addresses) to another thread.
//
// error: unsafe_code
// error-message: implementation of an `unsafe` trait

use crate::abstractions::iov::{Dest, IovIter};

pub struct Carrier<'a>(pub IovIter<'a, Dest>);

unsafe impl Send for Carrier<'_> {}

pub fn misuse(iter: IovIter<'_, Dest>) -> Carrier<'_> {
    Carrier(iter)
}
