// SPDX-License-Identifier: GPL-2.0
//
// An io_uring command answered with task-work issue flags made up outside its task work:
// `IO_URING_F_COMPLETE_DEFER` claims the ring's lock is held, and io_uring_cmd_done() would then
// add the completion to the ring's deferred list without it. `InTask` is made only by the
// layer's task-work callback (an unsafe constructor that lends it to a closure).
//
// error: E0133

use crate::abstractions::uring_cmd::{InTask, UringCmd};
use kernel::prelude::*;

pub fn misuse(cmd: &UringCmd<'_>) -> Result<i32> {
    let pending = cmd.pend()?;
    InTask::with(1, core::ptr::null_mut(), |tw| {
        pending.done_in_task(0, 0, tw)
    });
    Ok(0)
}
