// SPDX-License-Identifier: GPL-2.0

//! `/dev/iovx_ngN`: the passthrough commands of a RAM disk through io_uring
//! (`IORING_OP_URING_CMD`, `IOVX_URING_CMD_PT`), as NVMe's generic character devices take
//! theirs. The command structure is that of the ioctl (`rust/uapi/iovx.h`); the request runs
//! without waiting and is answered from its completion, which runs as task work of the
//! submitting task (where a bounced read is copied back).

#![deny(unsafe_code)]

use super::{pt::mapping_code, RamDisk};
use crate::abstractions::blk::{not_supported, Disk};
use crate::abstractions::iov::{Dest, Direction, Source};
use crate::abstractions::passthrough::{
    submit_uring, AsyncOutcome, Bounce, Command, MapWith, Queue, UserData,
};
use crate::abstractions::uapi::{iovx, read_iovecs, read_plain, PtCmd, IOVX_URING_CMD_PT};
use crate::abstractions::uring_cmd::{UringCmd, UringDevice};
use kernel::{prelude::*, sync::Arc};

/// The io_uring device of one disk.
pub(crate) struct NgDev {
    disk: Arc<Disk<RamDisk>>,
}

impl NgDev {
    pub(crate) fn new(disk: Arc<Disk<RamDisk>>) -> Self {
        Self { disk }
    }
}

/// The answer of a command: its result or a negative errno in `res`; in `res2` the driver's
/// result (its status) in bits 0 to 31, the mapping (`IOVX_PT_MAP_*`) in bits 32 to 39 and
/// the bio segments in bits 40 to 63.
fn answer(o: AsyncOutcome) -> (i32, u64) {
    let res = match o.result {
        Ok(r) => i32::try_from(r).unwrap_or(i32::MAX),
        Err(e) => e.to_errno(),
    };
    let res2 = u64::from(o.command.result)
        | u64::from(mapping_code(o.mapping) & 0xff) << 32
        | (o.segments.min(0xff_ffff) as u64) << 40;
    (res, res2)
}

/// Runs `c` for `cmd`, answered from its completion; the error of a submission that failed
/// (nothing pended: the callback answers it).
fn submit<D: Direction + 'static>(
    cmd: &UringCmd<'_>,
    queue: Queue<'_>,
    c: &PtCmd,
    data: UserData,
    how: MapWith,
) -> Result {
    let command = Command {
        opcode: c.opcode,
        flags: c.flags,
        sector: c.sector,
        result: 0,
    };
    submit_uring::<D, _>(cmd, queue, command, data, how, answer)
        .map(|_| ())
        .map_err(|(e, _)| e)
}

impl UringDevice for NgDev {
    fn uring_cmd(&self, cmd: &UringCmd<'_>) -> Result<i32> {
        if cmd.cmd_op() != IOVX_URING_CMD_PT {
            return Err(ENOTTY);
        }
        // The command structure needs the 80-byte payload of 128-byte entries.
        if !cmd.sqe128() {
            return Err(not_supported());
        }
        let (payload, n) = cmd.payload();
        let c: PtCmd = read_plain(payload.get(..n).ok_or(EINVAL)?)?;
        if c.flags & !iovx::IOVX_PT_F_ALL != 0
            || (c.flags & iovx::IOVX_PT_F_KERNEL_MAP != 0 && c.flags & iovx::IOVX_PT_F_BOUNCE != 0)
        {
            return Err(EINVAL);
        }
        let data = if c.flags & iovx::IOVX_PT_F_VEC != 0 {
            if c.len > kernel::bindings::UIO_MAXIOV {
                return Err(EINVAL);
            }
            UserData::Vecs(read_iovecs(c.addr as usize, c.len as usize)?)
        } else {
            UserData::Buf {
                addr: c.addr as usize,
                len: c.len as usize,
            }
        };
        let how = if c.flags & iovx::IOVX_PT_F_KERNEL_MAP != 0 {
            MapWith::Kernel
        } else if c.flags & iovx::IOVX_PT_F_BOUNCE != 0 {
            MapWith::Rust(Bounce::Always)
        } else {
            MapWith::Rust(Bounce::IfNeeded)
        };
        let write = c.opcode == iovx::IOVX_PT_WRITE;
        if write && !cmd.file_writable() {
            return Err(EBADF);
        }
        // Issued without blocking, the request is allocated without waiting for a tag
        // (`EAGAIN`: io_uring's worker issues the command again); the mapping may still sleep
        // (pinning, a bounce), as NVMe's does.
        let queue = Queue::of(&self.disk);
        if write {
            submit::<Source>(cmd, queue, &c, data, how)?;
        } else {
            submit::<Dest>(cmd, queue, &c, data, how)?;
        }
        // Answered by the pending command (io_uring gets -EIOCBQUEUED).
        Ok(0)
    }
}
