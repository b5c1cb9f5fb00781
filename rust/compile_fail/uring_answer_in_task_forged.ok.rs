// SPDX-License-Identifier: GPL-2.0
//
// Twin of uring_answer_in_task_forged.rs: outside its task work a command is answered with
// `PendingCmd::done`, which io_uring takes from any context.

use crate::abstractions::uring_cmd::UringCmd;
use kernel::prelude::*;

pub fn misuse(cmd: &UringCmd<'_>) -> Result<i32> {
    let pending = cmd.pend()?;
    pending.done(0, 0);
    Ok(0)
}
