// SPDX-License-Identifier: GPL-2.0

//! The passthrough command set of the RAM disk and its ioctl (`rust/uapi/iovx.h`).
//!
//! | opcode             | request          | data                                          |
//! |--------------------|------------------|-----------------------------------------------|
//! | `IOVX_PT_READ`     | `REQ_OP_DRV_IN`  | `len` bytes from `sector`                     |
//! | `IOVX_PT_WRITE`    | `REQ_OP_DRV_OUT` | `len` bytes to `sector`                       |
//! | `IOVX_PT_IDENTIFY` | `REQ_OP_DRV_IN`  | a `struct iovx_pt_identify`, truncated to fit |
//!
//! A read or a write of no bytes or of a length that is not a multiple of the logical block
//! size fails with `EINVAL` and status `IOVX_PT_SC_INVALID_FIELD`, as does an opcode sent in the
//! wrong direction; one that reaches past the end of the disk with `EINVAL` and
//! `IOVX_PT_SC_LBA_RANGE`; an unknown opcode with `EOPNOTSUPP` and
//! `IOVX_PT_SC_INVALID_OPCODE`. The status is the command's result; for `IOVX_PT_IDENTIFY` the
//! result is the number of bytes returned.

#![deny(unsafe_code)]

use super::RamDisk;
use crate::abstractions::blk::{not_supported, Failure, Passthrough};
use crate::abstractions::iov::{Dest, Direction, IovIter, Source, UserVec};
use crate::abstractions::pages::Mode;
use crate::abstractions::passthrough::{Bounce, Command, Mapping, PtRequest, Queue};
use crate::abstractions::uapi::{
    as_bytes, iovx, read_iovecs, PtCmd, PtIdentify, UserArg, IOVX_IOC_PT,
};
use kernel::prelude::*;

/// Fails the command with `status` and `err`.
fn fail(pt_result: impl FnOnce(u32), status: u32, err: Error) -> Result<(), Failure> {
    pt_result(status);
    Err(Failure::Error(err))
}

impl RamDisk {
    /// Checks the data of a read or a write: whole blocks, within the disk.
    fn pt_range<D: Direction>(&self, pt: &Passthrough<'_, D>) -> Result<(), (u32, Error)> {
        let cmd = pt.command();
        let len = pt.data().len();
        let lbs = pt.limits().logical_block_size().get() as usize;
        if len == 0 || len.checked_rem(lbs) != Some(0) {
            return Err((iovx::IOVX_PT_SC_INVALID_FIELD, EINVAL));
        }
        if self.span(cmd.sector, len).is_err() {
            return Err((iovx::IOVX_PT_SC_LBA_RANGE, EINVAL));
        }
        Ok(())
    }

    /// Serves a passthrough command that reads from the disk.
    pub(super) fn pt_in(&self, pt: &Passthrough<'_, Dest>) -> Result<(), Failure> {
        let cmd = pt.command();
        let set = |r| pt.set_result(r);
        match cmd.opcode {
            iovx::IOVX_PT_READ => {
                if let Err((st, e)) = self.pt_range(pt) {
                    return fail(set, st, e);
                }
                self.read_at(cmd.sector, &pt.data())?;
                set(iovx::IOVX_PT_SC_SUCCESS);
                Ok(())
            }
            iovx::IOVX_PT_IDENTIFY => {
                let lim = pt.limits();
                let id = PtIdentify {
                    magic: *b"IOVXDISK",
                    capacity_sectors: self.capacity / 512,
                    logical_block_size: lim.logical_block_size().get(),
                    max_hw_sectors: lim.max_bytes() >> 9,
                    max_segments: lim.max_segments(),
                    dma_alignment: lim.align() as u32,
                    virt_boundary: lim.virt_boundary(),
                };
                let bytes = as_bytes(&id);
                let mut done = 0;
                pt.data().for_each_segment(|seg| {
                    let n = seg.len().min(bytes.len() - done);
                    if n > 0 {
                        seg.copy_from_slice(0, &bytes[done..done + n])?;
                    }
                    let rest = seg.len() - n;
                    if rest > 0 {
                        seg.zero(n, rest)?;
                    }
                    done += n;
                    Ok::<(), Error>(())
                })?;
                set(done as u32);
                Ok(())
            }
            iovx::IOVX_PT_WRITE => fail(set, iovx::IOVX_PT_SC_INVALID_FIELD, EINVAL),
            _ => fail(set, iovx::IOVX_PT_SC_INVALID_OPCODE, not_supported()),
        }
    }

    /// Serves a passthrough command that writes to the disk.
    pub(super) fn pt_out(&self, pt: &Passthrough<'_, Source>) -> Result<(), Failure> {
        let cmd = pt.command();
        let set = |r| pt.set_result(r);
        match cmd.opcode {
            iovx::IOVX_PT_WRITE => {
                if let Err((st, e)) = self.pt_range(pt) {
                    return fail(set, st, e);
                }
                self.write_at(cmd.sector, &pt.data())?;
                set(iovx::IOVX_PT_SC_SUCCESS);
                Ok(())
            }
            iovx::IOVX_PT_READ | iovx::IOVX_PT_IDENTIFY => {
                fail(set, iovx::IOVX_PT_SC_INVALID_FIELD, EINVAL)
            }
            _ => fail(set, iovx::IOVX_PT_SC_INVALID_OPCODE, not_supported()),
        }
    }
}

/// What one command did: its outcome, the driver's result, how the data was mapped and in how
/// many segments.
struct Outcome {
    r: Result,
    result: u32,
    mapping: u32,
    segments: u32,
}

pub(super) fn mapping_code(m: Mapping) -> u32 {
    match m {
        Mapping::None => iovx::IOVX_PT_MAP_NONE,
        Mapping::Direct(Mode::Listed) => iovx::IOVX_PT_MAP_LISTED,
        Mapping::Direct(_) => iovx::IOVX_PT_MAP_PINNED,
        Mapping::Bounced => iovx::IOVX_PT_MAP_BOUNCED,
        Mapping::Kernel => iovx::IOVX_PT_MAP_KERNEL,
    }
}

/// Runs `c` as a passthrough request of direction `D` with the user memory it describes.
fn run<D: Direction>(queue: Queue<'_>, c: &PtCmd, vecs: Option<&[UserVec]>) -> Outcome {
    let mut out = Outcome {
        r: Ok(()),
        result: 0,
        mapping: 0,
        segments: 0,
    };
    let cmd = Command {
        opcode: c.opcode,
        flags: c.flags,
        sector: c.sector,
        result: 0,
    };
    let mut iter = match vecs {
        Some(v) => IovIter::<D>::iovec(v),
        None => IovIter::<D>::ubuf(c.addr as usize, c.len as usize),
    };
    let mut rq = match PtRequest::<D>::new(queue, cmd) {
        Ok(rq) => rq,
        Err(e) => {
            out.r = Err(e);
            return out;
        }
    };
    let iter = match iter.as_mut() {
        Ok(it) => it,
        Err(e) => {
            out.r = Err(*e);
            return out;
        }
    };
    let mapped = if c.flags & iovx::IOVX_PT_F_KERNEL_MAP != 0 {
        rq.map_c(iter)
    } else {
        let b = if c.flags & iovx::IOVX_PT_F_BOUNCE != 0 {
            Bounce::Always
        } else {
            Bounce::IfNeeded
        };
        rq.map(iter, b).map(|_| ())
    };
    out.mapping = mapping_code(rq.mapping());
    out.segments = rq.nr_segments() as u32;
    if let Err(e) = mapped {
        out.r = Err(e);
        return out;
    }
    let exec = rq.execute();
    out.result = rq.command().result;
    let unmapped = rq.unmap();
    out.r = exec.map(|_| ()).and(unmapped.map(|_| ()));
    out
}

/// The ioctls of `/dev/iovxN`: `IOVX_IOC_PT`.
pub(super) fn ioctl(queue: Queue<'_>, writable: bool, cmd: u32, arg: usize) -> Result<isize> {
    if cmd != IOVX_IOC_PT {
        return Err(ENOTTY);
    }
    let mut a = UserArg::<PtCmd>::read(arg)?;
    let c = *a.get();
    if c.flags & !iovx::IOVX_PT_F_ALL != 0
        || (c.flags & iovx::IOVX_PT_F_KERNEL_MAP != 0 && c.flags & iovx::IOVX_PT_F_BOUNCE != 0)
    {
        return Err(EINVAL);
    }
    let vecs = if c.flags & iovx::IOVX_PT_F_VEC != 0 {
        if c.len > kernel::bindings::UIO_MAXIOV {
            return Err(EINVAL);
        }
        Some(read_iovecs(c.addr as usize, c.len as usize)?)
    } else {
        None
    };
    let o = if c.opcode == iovx::IOVX_PT_WRITE {
        if !writable {
            return Err(EBADF);
        }
        run::<Source>(queue, &c, vecs.as_deref())
    } else {
        run::<Dest>(queue, &c, vecs.as_deref())
    };
    let v = a.get_mut();
    v.result = o.result;
    v.mapping = o.mapping;
    v.segments = o.segments;
    a.write(arg)?;
    o.r.map(|()| 0)
}
