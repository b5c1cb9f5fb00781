// SPDX-License-Identifier: GPL-2.0
//
// An io_uring command answered by the device after it was handed to `submit_uring`, whose
// completion answers it from the submitting task's work: two answers, the second for a request
// io_uring may have freed. `submit_uring` takes the `PendingCmd` and gives it back only if the
// submission failed.
//
// error: E0382

use crate::abstractions::iov::Dest;
use crate::abstractions::passthrough::{submit_uring, Bounce, Command, MapWith, Queue, UserData};
use crate::abstractions::uring_cmd::UringCmd;
use kernel::prelude::*;

pub fn misuse(queue: Queue<'_>, cmd: &UringCmd<'_>, addr: usize) -> Result<i32> {
    let pending = cmd.pend()?;
    let data = UserData::Buf { addr, len: 4096 };
    let how = MapWith::Rust(Bounce::IfNeeded);
    let _ = submit_uring::<Dest, _>(queue, Command::default(), data, how, pending, |_| (0, 0));
    pending.done(0, 0);
    Ok(0)
}
