// SPDX-License-Identifier: GPL-2.0

//! Direct I/O from `read_iter`/`write_iter`: the [`DirectIo`] trait and the kiocb it gets.
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h)
//!
//! A [`MiscDevice`] registers `/dev/<name>` with a [`DirectIo`] implementation; its `read_iter`
//! and `write_iter` callbacks come here ([`read_iter`], [`write_iter`]). Each call gets a
//! [`Kiocb`]: the file position, the iterator, and [`Kiocb::direct_io`], which moves the
//! iterator's bytes to or from a disk through bios and completes the call, synchronously (it
//! waits) or asynchronously (the last bio completes the kiocb, as `-EIOCBQUEUED` promised).
//!
//! The memory of an asynchronous kiocb's iterator stays valid until `ki_complete()` (the
//! caller's promise to the file system, which io_uring and aio keep: io_uring's fixed buffers
//! are BVEC iterators whose pages only the ring holds). That is what lets bios carry listed pages
//! past the call: the kiocb is completed only after the last bio has released its pages.

use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use kernel::{bindings, prelude::*, sync::Arc, types::Opaque};

use super::bio::{
    submit_iter, submit_iter_one, submit_iter_wait_inline, BioSlot, Borrowed, Completion, Target,
    Waiter, INLINE_VECS,
};
use super::iov::{Dest, Direction, IovIter, Source};
#[cfg(doc)]
use super::miscdev::MiscDevice;
use super::shim;

/// What a direct-I/O character device does.
pub trait DirectIo: Send + Sync + Sized + 'static {
    /// Size of the device in bytes (for `SEEK_END`).
    fn size(&self) -> u64;
    /// A read (`read`, `pread`, `readv`, aio, io_uring).
    fn read_iter(&self, io: Kiocb<'_, Dest>) -> Result<Outcome>;
    /// A write.
    fn write_iter(&self, io: Kiocb<'_, Source>) -> Result<Outcome>;
}

/// How a direct I/O call ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done: this many bytes.
    Done(usize),
    /// Queued: the kiocb will be completed when the I/O is.
    Queued,
}

/// One `read_iter`/`write_iter` call.
///
/// # Invariants
///
/// `raw` is the call's kiocb, valid for `'a`; `iter` is the call's iterator. If the kiocb is
/// asynchronous, the memory the iterator describes stays valid until `ki_complete()` is called on
/// `raw`, which only [`Kiocb::direct_io`] does (through [`Queued`]) and only once.
pub struct Kiocb<'a, D: Direction> {
    raw: *mut bindings::kiocb,
    iter: IovIter<'a, D>,
}

impl<'a, D: Direction> Kiocb<'a, D> {
    /// The file position of the call, in bytes.
    #[inline]
    pub fn pos(&self) -> i64 {
        // SAFETY: `raw` is valid (type invariant).
        unsafe { (*self.raw).ki_pos }
    }

    /// Whether the caller waits for the result (`read`, `pread`) rather than being told later
    /// (aio, io_uring).
    #[inline]
    pub fn is_sync(&self) -> bool {
        // SAFETY: `raw` is valid (type invariant); `is_sync_kiocb()`.
        unsafe { (*self.raw).ki_complete.is_none() }
    }

    /// The call's iterator.
    pub fn iter(&mut self) -> &mut IovIter<'a, D> {
        &mut self.iter
    }

    /// Whether every segment of the iterator starts at an address aligned to `addr_mask + 1` and
    /// has a length that is a multiple of `len_mask + 1` (`iov_iter_is_aligned()`).
    pub fn is_aligned(&self, addr_mask: u32, len_mask: u32) -> bool {
        // SAFETY: The iterator is initialised (its invariant).
        unsafe { bindings::iov_iter_is_aligned(self.iter.as_raw(), addr_mask, len_mask as _) }
    }

    /// Transfers the next `len` bytes of the iterator to or from `target` at byte `offset`,
    /// which must be a multiple of 512, through bios whose pages are pinned (user memory) or
    /// listed (kernel memory).
    ///
    /// A synchronous call waits and returns `Done(bytes)`; an asynchronous one returns `Queued`
    /// and the kiocb is completed with the result when the last bio completes. The file position
    /// advances by the bytes transferred. An error before any bio was submitted is returned as is
    /// (nothing was queued); one from a bio is the call's result.
    #[inline]
    pub fn direct_io(self, target: Target<'_>, offset: u64, len: usize) -> Result<Outcome> {
        if offset % 512 != 0 {
            return Err(EINVAL);
        }
        let sync = self.is_sync();
        let raw = self.raw;
        // The bios carry the call's I/O priority, as the block device's own direct I/O does.
        // SAFETY: `raw` is valid (type invariant).
        let target = target.with_ioprio(unsafe { (*raw).ki_ioprio });
        let mut iter = self.iter;
        if sync {
            if len <= INLINE_BYTES {
                // Most synchronous transfers fit in one bio of a few segments, kept on this
                // stack as `__blkdev_direct_IO_simple()` keeps its own: no allocation, no
                // counting completion.
                let mut slot = BioSlot::new();
                if let Some(n) =
                    submit_iter_wait_inline(&mut slot, target, &mut iter, offset >> 9, len)?
                {
                    // SAFETY: `raw` is the call's kiocb, valid during the call.
                    unsafe { (*raw).ki_pos = offset as i64 + n as i64 };
                    return Ok(Outcome::Done(n));
                }
                // More pages than the slot holds: below.
            }
            // SAFETY: `raw` is the call's kiocb, valid during the call.
            let nowait = unsafe { shim::iovx_kiocb_nowait(raw) };
            kernel::stack_pin_init!(let w = Waiter::new());
            // SAFETY: The waiter stays in place on this stack frame, and the call waits below for
            // every bio to report to it; the iterator's memory is valid during the call.
            let submitted = unsafe {
                let done = Borrowed::new(w.as_ref());
                submit_iter(target, &mut iter, offset >> 9, len, nowait, &done)
            };
            let done = w.wait();
            submitted?;
            let n = done?.bytes;
            // SAFETY: `raw` is the call's kiocb, valid during the call.
            unsafe { (*raw).ki_pos = offset as i64 + n as i64 };
            return Ok(Outcome::Done(n));
        }
        // SAFETY: `raw` is the call's kiocb, valid during the call.
        let nowait = unsafe { shim::iovx_kiocb_nowait(raw) };
        if len <= ONE_BIO_BYTES {
            // Most asynchronous transfers fit in one bio, which then completes the kiocb itself:
            // no state of its own, as `__blkdev_direct_IO_async()`. The position is set to the
            // offset now and the bio adds its bytes.
            // SAFETY: `raw` is the call's kiocb; until it is completed, it is this call's.
            unsafe { (*raw).ki_pos = offset as i64 };
            // SAFETY: `raw` is the call's asynchronous kiocb, completed only by the one bio
            // submitted with it (`submit_iter_one()`), or not at all if nothing is submitted.
            let done = unsafe { KiocbEnd::new(raw) };
            // SAFETY: The iterator's memory of an asynchronous kiocb is valid until
            // `ki_complete()`, which the bio calls after releasing its pages.
            if unsafe { submit_iter_one(target, &mut iter, offset >> 9, len, &done) }?.is_some() {
                return Ok(Outcome::Queued);
            }
            // Needs more than one bio: below, unless the caller may not wait.
            if nowait {
                return Err(EAGAIN);
            }
        }
        let state = Arc::new(
            Queued {
                pending: AtomicUsize::new(1),
                bytes: AtomicUsize::new(0),
                error: AtomicI32::new(0),
                iocb: raw,
                pos: offset as i64,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: The iterator's memory of an asynchronous kiocb is valid until `ki_complete()`,
        // which `state` calls only after the last bio has reported.
        match unsafe { submit_iter(target, &mut iter, offset >> 9, len, nowait, &state) } {
            Err(e) => {
                // Nothing in flight; `state` is dropped without completing anything.
                state.cancel();
                Err(e)
            }
            Ok(_) => {
                // The kiocb now belongs to `state`; the last `put` completes it.
                state.put();
                Ok(Outcome::Queued)
            }
        }
    }
}

/// Synchronous transfers up to this size are tried in a bio on the stack first (an unaligned
/// buffer of this size spans [`INLINE_VECS`] pages).
const INLINE_BYTES: usize = (INLINE_VECS - 1) * kernel::page::PAGE_SIZE;

/// Transfers up to this size are tried in one bio first (an unaligned buffer of this size spans
/// `BIO_MAX_VECS` pages).
const ONE_BIO_BYTES: usize = (bindings::BIO_MAX_VECS as usize - 1) * kernel::page::PAGE_SIZE;

/// An asynchronous kiocb as the completion of the one bio that carries its whole transfer.
///
/// # Invariants
///
/// Lives inside a kiocb of an asynchronous call, valid until `ki_complete()` is called on it,
/// which only [`KiocbEnd`]'s `bio_done` does, once; its `ki_pos` holds the transfer's offset.
#[repr(transparent)]
struct KiocbEnd(Opaque<bindings::kiocb>);

// SAFETY: A kiocb may be completed from any thread; the one bio is its only user meanwhile.
unsafe impl Send for KiocbEnd {}
// SAFETY: As above.
unsafe impl Sync for KiocbEnd {}

impl KiocbEnd {
    /// The kiocb `iocb` as the completion of one bio.
    ///
    /// # Safety
    ///
    /// `iocb` is the kiocb of an asynchronous call, valid until completed, whose `ki_pos` holds
    /// the offset of the transfer; the handle must go to one bio only (`submit_iter_one()`), or
    /// to none.
    unsafe fn new(iocb: *mut bindings::kiocb) -> Borrowed<KiocbEnd> {
        // SAFETY: `KiocbEnd` is a transparent wrapper of the kiocb; by the safety requirements it
        // stays valid, in place, until the one bio has reported, and is then done with.
        unsafe { Borrowed::new(core::pin::Pin::new_unchecked(&*iocb.cast::<KiocbEnd>())) }
    }
}

impl Completion for KiocbEnd {
    fn bio_submitted(&self, bytes: usize) {
        // The byte count waits in `private`, which is the file's to use (this device does not
        // poll); nothing else touches the kiocb until it is completed.
        // SAFETY: The kiocb is valid and this bio's (type invariant).
        unsafe { (*self.0.get()).private = bytes as *mut ffi::c_void };
    }

    fn bio_done(&self, result: Result) {
        let iocb = self.0.get();
        // SAFETY: The kiocb is valid until completed just below, once (type invariant).
        unsafe {
            let ret = match result {
                Ok(()) => {
                    let n = (*iocb).private as usize;
                    (*iocb).ki_pos += n as i64;
                    n as ffi::c_long
                }
                Err(e) => e.to_errno() as ffi::c_long,
            };
            shim::iovx_kiocb_complete(iocb, ret);
        }
    }
}

/// The state of one asynchronous direct I/O in flight.
///
/// # Invariants
///
/// `pending` counts the bios in flight plus one for the submitter; when it drops to zero the
/// I/O is over and `ki_complete()` is called on `iocb`, exactly once.
struct Queued {
    pending: AtomicUsize,
    bytes: AtomicUsize,
    error: AtomicI32,
    iocb: *mut bindings::kiocb,
    pos: i64,
}

// SAFETY: The kiocb pointer is used once, by whichever thread ends the I/O; the rest are atomics.
unsafe impl Send for Queued {}
// SAFETY: As above.
unsafe impl Sync for Queued {}

impl Queued {
    /// The submitter gives up its count when nothing was submitted: nothing is completed.
    fn cancel(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// Drops one count; the last one ends the I/O.
    fn put(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let ret = match self.error.load(Ordering::Acquire) {
            0 => {
                let n = self.bytes.load(Ordering::Acquire);
                // SAFETY: The kiocb is valid until completed, which happens just below.
                unsafe { (*self.iocb).ki_pos = self.pos + n as i64 };
                n as ffi::c_long
            }
            e => e as ffi::c_long,
        };
        // SAFETY: Called once (type invariant): this is the last count.
        unsafe { shim::iovx_kiocb_complete(self.iocb, ret) };
    }
}

impl Completion for Queued {
    fn bio_submitted(&self, bytes: usize) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    fn bio_done(&self, result: Result) {
        if let Err(e) = result {
            _ = self
                .error
                .compare_exchange(0, e.to_errno(), Ordering::AcqRel, Ordering::Acquire);
        }
        self.put();
    }
}

use kernel::ffi;

/// A `read_iter` call of the VFS, handed to `data`'s [`DirectIo::read_iter`].
///
/// # Safety
///
/// `iocb` and `iter` are the arguments of a `read_iter` call of the VFS, valid for the call (and,
/// for an asynchronous kiocb, the memory the iterator describes until `ki_complete()`).
pub(crate) unsafe fn read_iter<T: DirectIo>(
    data: &T,
    iocb: *mut bindings::kiocb,
    iter: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: `iter` is the call's destination iterator, valid during the call, with the VFS's
    // promise that an asynchronous kiocb's memory stays valid until it is completed.
    let iter = unsafe { IovIter::<Dest>::from_raw(iter) };
    // INVARIANT: The call's kiocb and iterator.
    let io = Kiocb { raw: iocb, iter };
    ret(data.read_iter(io))
}

/// A `write_iter` call of the VFS, handed to `data`'s [`DirectIo::write_iter`].
///
/// # Safety
///
/// `iocb` and `iter` are the arguments of a `write_iter` call of the VFS, valid for the call
/// (and, for an asynchronous kiocb, the memory the iterator describes until `ki_complete()`).
pub(crate) unsafe fn write_iter<T: DirectIo>(
    data: &T,
    iocb: *mut bindings::kiocb,
    iter: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: `iter` is the call's source iterator, valid during the call, with the VFS's
    // promise that an asynchronous kiocb's memory stays valid until it is completed.
    let iter = unsafe { IovIter::<Source>::from_raw(iter) };
    // INVARIANT: The call's kiocb and iterator.
    let io = Kiocb { raw: iocb, iter };
    ret(data.write_iter(io))
}

fn ret(r: Result<Outcome>) -> isize {
    match r {
        Ok(Outcome::Done(n)) => n as isize,
        // SAFETY: Pure constant.
        Ok(Outcome::Queued) => (unsafe { shim::iovx_eiocbqueued() }) as isize,
        Err(e) => e.to_errno() as isize,
    }
}
