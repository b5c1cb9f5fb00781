// SPDX-License-Identifier: GPL-2.0
//
// The harness's own guard: a snippet is code a safe driver could write, so `unsafe` does not
// compile in it. Here a transmute would stretch an iterator's borrow to 'static, the kind of
// shortcut that would make every other snippet meaningless.
//
// error: unsafe_code
// error-message: usage of an `unsafe` block

use crate::abstractions::iov::{IovIter, Source};

pub fn misuse(iter: IovIter<'_, Source>) -> IovIter<'static, Source> {
    unsafe { core::mem::transmute(iter) }
}
