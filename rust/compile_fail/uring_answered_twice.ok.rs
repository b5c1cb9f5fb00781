// SPDX-License-Identifier: GPL-2.0
//
// Twin of uring_answered_twice.rs: the device answers only a command that a failed submission
// gave back.

use crate::abstractions::iov::Dest;
use crate::abstractions::passthrough::{submit_uring, Bounce, Command, MapWith, Queue, UserData};
use crate::abstractions::uring_cmd::UringCmd;
use kernel::prelude::*;

pub fn misuse(queue: Queue<'_>, cmd: &UringCmd<'_>, addr: usize) -> Result<i32> {
    let pending = cmd.pend()?;
    let data = UserData::Buf { addr, len: 4096 };
    let how = MapWith::Rust(Bounce::IfNeeded);
    if let Err((e, pending, _)) =
        submit_uring::<Dest, _>(queue, Command::default(), data, how, pending, |_| (0, 0))
    {
        pending.done(e.to_errno(), 0);
    }
    Ok(0)
}
