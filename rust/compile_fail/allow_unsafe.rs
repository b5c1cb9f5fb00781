// SPDX-License-Identifier: GPL-2.0
//
// The guard cannot be switched off from inside a snippet: `#![allow(unsafe_code)]` is refused
// under the harness's `forbid`, and the unsafe call stays an error.
//
// error: E0453 unsafe_code
// error-message: usage of an `unsafe` block

#![allow(unsafe_code)]

use crate::abstractions::iov::{IovIter, Source};
use kernel::bindings;

pub fn misuse(raw: *mut bindings::iov_iter) -> usize {
    let iter = unsafe { IovIter::<Source>::from_raw(raw) };
    iter.len()
}
