// SPDX-License-Identifier: GPL-2.0
//
// Twin of unsafe_impl_send.rs: the wrapper stays on the task that made it.

use crate::abstractions::iov::{Dest, IovIter};

pub struct Carrier<'a>(pub IovIter<'a, Dest>);

pub fn misuse(iter: IovIter<'_, Dest>) -> Carrier<'_> {
    Carrier(iter)
}
