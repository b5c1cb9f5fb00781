// SPDX-License-Identifier: GPL-2.0

//! io_uring commands on a character device (`file_operations.uring_cmd`), as NVMe's generic
//! character devices take them.
//!
//! C headers: [`include/linux/io_uring/cmd.h`](srctree/include/linux/io_uring/cmd.h),
//! [`io_uring/uring_cmd.c`](srctree/io_uring/uring_cmd.c).
//!
//! `IORING_OP_URING_CMD` hands the device a `struct io_uring_cmd`: an operation code
//! (`sqe->cmd_op`) and a payload in the submission entry (16 bytes, or 80 with
//! `IORING_SETUP_SQE128`). The device either answers at once (a result or an error, which
//! io_uring posts) or says it will answer later (`-EIOCBQUEUED`) and then calls
//! `io_uring_cmd_done()` exactly once. [`UringCmd`] is the command lent to the device's
//! callback; [`UringCmd::pend`] gives the one [`PendingCmd`] that carries the duty of the later
//! answer, and the callback's own return value is then ignored: `-EIOCBQUEUED` goes back to
//! io_uring whatever it returns, so a command is never answered twice. A [`PendingCmd`] dropped
//! without an answer answers `ECANCELED`.
//!
//! The file of the command stays open (io_uring holds it, and so its module) until the answer
//! has been posted.

use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::{bindings, prelude::*};

use super::shim;

/// Bytes of payload in a 128-byte submission entry.
pub const PAYLOAD_MAX: usize = 80;

/// A command lent to a device's `uring_cmd` callback for `'a`.
///
/// What the device reads of the command (its operation code, its payload, whether its file
/// was opened for writing) is copied when the callback is entered: once the command is
/// pended and handed on ([`UringCmd::pend`], [`submit_uring`]), it may be answered (from
/// another thread: an io_uring worker issues it while the submitting task runs the answer) and
/// io_uring then clears its submission entry and may free it, while the callback still runs.
///
/// [`submit_uring`]: super::passthrough::submit_uring
///
/// # Invariants
///
/// `raw` is the `io_uring_cmd` io_uring passed to the callback, with `flags` its issue flags,
/// valid for `'a` until a [`PendingCmd`] is made for it (`pended`), after which it is only
/// passed on, never read; `op`, `payload` (`len` bytes of it, the rest zero) and `writable`
/// were read from it before that.
pub struct UringCmd<'a> {
    raw: NonNull<bindings::io_uring_cmd>,
    flags: u32,
    op: u32,
    payload: [u8; PAYLOAD_MAX],
    len: usize,
    writable: bool,
    pended: Cell<bool>,
    _p: PhantomData<&'a ()>,
}

impl UringCmd<'_> {
    /// The operation code (`sqe->cmd_op`).
    pub fn cmd_op(&self) -> u32 {
        self.op
    }

    /// Whether the command is issued from a context that must not block
    /// (`IO_URING_F_NONBLOCK`): answering `EAGAIN` then makes io_uring issue it again from a
    /// worker of its own, which may block.
    pub fn nonblock(&self) -> bool {
        // SAFETY: Pure test of a flag.
        unsafe { shim::iovx_uring_flags_nonblock(self.flags) }
    }

    /// Whether the ring has 128-byte submission entries (an 80-byte payload).
    pub fn sqe128(&self) -> bool {
        // SAFETY: Pure test of a flag.
        unsafe { shim::iovx_uring_flags_sqe128(self.flags) }
    }

    /// A copy of the payload (the submission entry may be in memory user space shares, so it
    /// was copied once, when the callback was entered, not read in place): 80 bytes with
    /// 128-byte entries, 16 otherwise, the rest zero. Gives the copy and its length.
    pub fn payload(&self) -> ([u8; PAYLOAD_MAX], usize) {
        (self.payload, self.len)
    }

    /// Whether the file was opened for writing.
    pub fn file_writable(&self) -> bool {
        self.writable
    }

    /// Whether [`UringCmd::pend`] was called already.
    pub fn is_pended(&self) -> bool {
        self.pended.get()
    }

    /// The duty of answering the command later; the callback then returns `-EIOCBQUEUED`
    /// whatever it returns. `EBUSY` the second time.
    pub fn pend(&self) -> Result<PendingCmd> {
        if self.pended.replace(true) {
            return Err(EBUSY);
        }
        // INVARIANT: The one pending handle of this command; io_uring gets `-EIOCBQUEUED`.
        Ok(PendingCmd { raw: self.raw })
    }
}

/// The duty of answering an io_uring command that was told to wait (`-EIOCBQUEUED`).
///
/// It must be answered or dropped: one leaked (`core::mem::forget`) leaves the command
/// unanswered, and the ring's exit (`io_uring_cancel_generic()`) then waits for it for ever.
///
/// # Invariants
///
/// `raw` is a command for which the device's callback returned `-EIOCBQUEUED` (or is about to),
/// not answered yet; this value is the only one to answer it, once. io_uring keeps the command
/// (and its file) until then.
pub struct PendingCmd {
    raw: NonNull<bindings::io_uring_cmd>,
}

// SAFETY: `io_uring_cmd_done()` may be called from any thread, in any context in which it queues
// the completion as task work (issue flags `IO_URING_F_UNLOCKED`). That is valid only because
// the device has no `uring_cmd_iopoll` (io_uring refuses its commands on an `IORING_SETUP_IOPOLL`
// ring), whose completions would have to be made under the ring's lock instead.
unsafe impl Send for PendingCmd {}

/// The issue flags io_uring gives the task work of a command (`io_uring_cmd_work()`): the
/// answer made there must pass them (`IO_URING_F_COMPLETE_DEFER`: the ring's lock is held),
/// and they say whether the task is exiting (`IO_URING_F_TASK_DEAD`).
///
/// # Invariants
///
/// `flags` are those io_uring passed to the task-work callback now running, for the command
/// `cmd`; the value does not outlive the callback (`'a`).
pub(crate) struct InTask<'a> {
    flags: u32,
    cmd: *mut bindings::io_uring_cmd,
    _p: PhantomData<&'a ()>,
}

impl InTask<'_> {
    /// Runs `f` with the flags of the task work of `cmd` now running; the value lives only
    /// during `f`, which cannot keep it.
    ///
    /// # Safety
    ///
    /// Called from a task-work callback queued by `io_uring_cmd_do_in_task_lazy()` or
    /// `io_uring_cmd_complete_in_task()` for `cmd`, with the flags it was given.
    pub(crate) unsafe fn with<R>(
        flags: u32,
        cmd: *mut bindings::io_uring_cmd,
        f: impl for<'b> FnOnce(&InTask<'b>) -> R,
    ) -> R {
        // INVARIANT: By the safety requirements; the value is dropped before this returns.
        let tw = InTask {
            flags,
            cmd,
            _p: PhantomData,
        };
        f(&tw)
    }

    /// Whether the work must not touch the submitting task's memory (`IO_URING_F_TASK_DEAD`,
    /// `io_should_terminate_tw()`): the task is exiting (the work runs while it exits) or gone
    /// (it runs in io_uring's fallback worker), or the ring is going.
    pub(crate) fn task_dead(&self) -> bool {
        // SAFETY: Pure test of a flag.
        unsafe { shim::iovx_uring_flags_task_dead(self.flags) }
    }
}

impl PendingCmd {
    /// The command, for the completion that will answer it.
    pub(crate) fn as_raw(&self) -> *mut bindings::io_uring_cmd {
        self.raw.as_ptr()
    }

    /// Answers the command from its task work, with the flags that task work was given; from
    /// the task work of another command (whose flags say nothing of this one), as
    /// [`PendingCmd::done`] does.
    pub(crate) fn done_in_task(self, res: i32, res2: u64, tw: &InTask<'_>) {
        if tw.cmd != self.raw.as_ptr() {
            return self.done(res, res2);
        }
        let raw = self.raw;
        core::mem::forget(self);
        // SAFETY: The one answer to a command told to wait (type invariant), from its own task
        // work (checked above) with the flags it was given (`InTask` invariant).
        unsafe { shim::iovx_uring_cmd_done_in_task(raw.as_ptr(), res, res2, tw.flags) };
    }

    /// Answers the command: `res` in the completion's `res` (an errno if negative), `res2` in
    /// the second half of a 32-byte completion entry if the ring has them.
    pub fn done(self, res: i32, res2: u64) {
        let raw = self.raw;
        core::mem::forget(self);
        // SAFETY: The one answer to a command told to wait (type invariant).
        unsafe { shim::iovx_uring_cmd_done(raw.as_ptr(), res, res2) };
    }
}

impl Drop for PendingCmd {
    /// A command never answered is answered `ECANCELED`.
    fn drop(&mut self) {
        // SAFETY: The one answer (type invariant; `done` forgets the value).
        unsafe { shim::iovx_uring_cmd_done(self.raw.as_ptr(), -(bindings::ECANCELED as i32), 0) };
    }
}

/// What a character device does with io_uring commands.
pub trait UringDevice: Send + Sync + Sized + 'static {
    /// An io_uring command. Answer at once with `Ok(res)` or an error, or take
    /// [`UringCmd::pend`] and answer later (the return value is then ignored). Without
    /// [`UringCmd::pend`], `-EIOCBQUEUED` is answered `EIO` and a restart code (`ERESTARTSYS`,
    /// ...) `EINTR`.
    ///
    /// Process context: may sleep. With [`UringCmd::nonblock`] (issued from the submitting
    /// task, under the ring's lock), it should not wait for a resource or for I/O (a tag, a
    /// lock held across I/O) but answer `EAGAIN`, after which io_uring's worker issues the
    /// command again; faulting in and pinning memory, and allocating, are done there as in
    /// NVMe's `nvme_uring_cmd_io()`.
    fn uring_cmd(&self, cmd: &UringCmd<'_>) -> Result<i32>;

    /// A file of the device is closed (its last reference went).
    fn release(&self) {}
}

/// The `uring_cmd` callback for a device whose data is `T`, found by `data`.
///
/// # Safety
///
/// `ioucmd` and `issue_flags` are those io_uring passed to `file_operations.uring_cmd`;
/// `data` is the device's data of the command's file, valid during the call.
pub(crate) unsafe fn dispatch<T: UringDevice>(
    data: &T,
    ioucmd: *mut bindings::io_uring_cmd,
    issue_flags: u32,
) -> i32 {
    let mut payload = [0u8; PAYLOAD_MAX];
    // SAFETY: io_uring passes a valid command with its submission entry and file, for the
    // call; `payload` has room for the largest payload.
    let (op, len, writable) = unsafe {
        (
            shim::iovx_uring_cmd_op(ioucmd),
            shim::iovx_uring_cmd_payload(ioucmd, payload.as_mut_ptr(), issue_flags),
            shim::iovx_uring_cmd_file_writable(ioucmd),
        )
    };
    // INVARIANT: The command io_uring passed, for the call, read before it can be pended.
    let cmd = UringCmd {
        // SAFETY: io_uring passes a valid command.
        raw: unsafe { NonNull::new_unchecked(ioucmd) },
        flags: issue_flags,
        op,
        payload,
        len: (len as usize).min(PAYLOAD_MAX),
        writable,
        pended: Cell::new(false),
        _p: PhantomData,
    };
    let r = data.uring_cmd(&cmd);
    if cmd.pended.get() {
        return -(bindings::EIOCBQUEUED as i32);
    }
    let res = match r {
        Ok(v) => v,
        Err(e) => e.to_errno(),
    };
    // Codes io_uring takes for something other than an answer are no answer of a callback
    // that did not pend: `-EIOCBQUEUED` would leave the command unanswered for ever, and a
    // restart code cannot restart a submission (io_uring says `EINTR` for those of reads and
    // writes).
    if res == -(bindings::EIOCBQUEUED as i32) {
        return -(bindings::EIO as i32);
    }
    if [
        bindings::ERESTARTSYS,
        bindings::ERESTARTNOINTR,
        bindings::ERESTARTNOHAND,
        bindings::ERESTART_RESTARTBLOCK,
    ]
    .iter()
    .any(|&c| res == -(c as i32))
    {
        return -(bindings::EINTR as i32);
    }
    res
}
