// SPDX-License-Identifier: GPL-2.0

//! Character devices whose `read_iter`/`write_iter` do direct I/O, and the kiocb they get.
//!
//! C headers: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h),
//! [`include/linux/fs.h`](srctree/include/linux/fs.h)
//!
//! A [`MiscDevice`] registers `/dev/<name>` with a [`DirectIo`] implementation. Each call gets a
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

use super::bio::{submit_iter, Completion, Target};
use super::iov::{Dest, Direction, IovIter, Source};
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
/// `raw`, which only [`Kiocb::direct_io`] does (through [`DioState`]) and only once.
pub struct Kiocb<'a, D: Direction> {
    raw: *mut bindings::kiocb,
    iter: IovIter<'a, D>,
}

impl<'a, D: Direction> Kiocb<'a, D> {
    /// The file position of the call, in bytes.
    pub fn pos(&self) -> i64 {
        // SAFETY: `raw` is valid (type invariant).
        unsafe { shim::iovx_kiocb_pos(self.raw) }
    }

    /// Whether the caller waits for the result (`read`, `pread`) rather than being told later
    /// (aio, io_uring).
    pub fn is_sync(&self) -> bool {
        // SAFETY: `raw` is valid (type invariant).
        unsafe { shim::iovx_kiocb_is_sync(self.raw) }
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
    pub fn direct_io(self, target: Target<'_>, offset: u64, len: usize) -> Result<Outcome> {
        if offset % 512 != 0 {
            return Err(EINVAL);
        }
        let sync = self.is_sync();
        let raw = self.raw;
        let mut iter = self.iter;
        let state = Arc::new(
            DioState {
                pending: AtomicUsize::new(1),
                bytes: AtomicUsize::new(0),
                error: AtomicI32::new(0),
                done: Opaque::uninit(),
                iocb: if sync { core::ptr::null_mut() } else { raw },
                pos: offset as i64,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `done` is initialised before any bio can complete it.
        unsafe { shim::iovx_init_completion(state.done.get()) };
        // SAFETY: The iterator's memory stays valid until every bio has reported to `state`:
        // a synchronous call waits for that below; an asynchronous kiocb's memory is valid until
        // `ki_complete()`, which `state` calls only after the last bio has reported.
        let submitted = unsafe { submit_iter(target, &mut iter, offset >> 9, len, &state) };
        match submitted {
            Err(e) => {
                // Nothing in flight; `state` is dropped without completing anything.
                state.cancel();
                Err(e)
            }
            Ok(_) if sync => {
                state.put();
                // SAFETY: `done` was initialised above; the last `put` completes it.
                unsafe { bindings::wait_for_completion(state.done.get()) };
                let r = state.result();
                if let Ok(n) = r {
                    // SAFETY: `raw` is the call's kiocb, valid during the call.
                    unsafe { shim::iovx_kiocb_set_pos(raw, offset as i64 + n as i64) };
                }
                r.map(Outcome::Done)
            }
            Ok(_) => {
                // The kiocb now belongs to `state`; the last `put` completes it.
                state.put();
                Ok(Outcome::Queued)
            }
        }
    }
}

/// The state of one direct I/O in flight.
///
/// # Invariants
///
/// `pending` counts the bios in flight plus one for the submitter; when it drops to zero the
/// I/O is over: `done` is completed and, if `iocb` is not null, `ki_complete()` is called on it
/// exactly once.
struct DioState {
    pending: AtomicUsize,
    bytes: AtomicUsize,
    error: AtomicI32,
    done: Opaque<bindings::completion>,
    iocb: *mut bindings::kiocb,
    pos: i64,
}

// SAFETY: The kiocb pointer is used once, by whichever thread ends the I/O; the completion is
// made for cross-thread use; the rest are atomics.
unsafe impl Send for DioState {}
// SAFETY: As above.
unsafe impl Sync for DioState {}

impl DioState {
    fn result(&self) -> Result<usize> {
        match self.error.load(Ordering::Acquire) {
            0 => Ok(self.bytes.load(Ordering::Acquire)),
            e => Err(Error::from_errno(e)),
        }
    }

    /// The submitter gives up its count when nothing was submitted: nothing is completed.
    fn cancel(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// Drops one count; the last one ends the I/O.
    fn put(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        if !self.iocb.is_null() {
            let ret = match self.result() {
                Ok(n) => {
                    // SAFETY: The kiocb is valid until completed, which happens just below.
                    unsafe { shim::iovx_kiocb_set_pos(self.iocb, self.pos + n as i64) };
                    n as ffi::c_long
                }
                Err(e) => e.to_errno() as ffi::c_long,
            };
            // SAFETY: Called once (type invariant): this is the last count.
            unsafe { shim::iovx_kiocb_complete(self.iocb, ret) };
        }
        // SAFETY: `done` was initialised when the state was made.
        unsafe { bindings::complete(self.done.get()) };
    }
}

impl Completion for DioState {
    fn bio_submitted(&self) {
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    fn bio_done(&self, result: Result<usize>) {
        match result {
            Ok(n) => _ = self.bytes.fetch_add(n, Ordering::AcqRel),
            Err(e) => {
                _ = self.error.compare_exchange(
                    0,
                    e.to_errno(),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
            }
        }
        self.put();
    }
}

use kernel::ffi;

/// A registered misc character device `/dev/<name>` doing direct I/O with a `T`.
///
/// # Invariants
///
/// `misc` is a registered misc device whose file operations are `fops` and whose data is
/// `data`; both outlive it (it is deregistered first, in `drop`).
pub struct MiscDevice<T: DirectIo> {
    misc: *mut ffi::c_void,
    _fops: Pin<KBox<bindings::file_operations>>,
    data: Pin<KBox<T>>,
}

// SAFETY: Registration and deregistration may happen on any thread; `T` is `Send + Sync`.
unsafe impl<T: DirectIo> Send for MiscDevice<T> {}
// SAFETY: Only `data` is reachable through a shared reference, and it is `Sync`.
unsafe impl<T: DirectIo> Sync for MiscDevice<T> {}

impl<T: DirectIo> MiscDevice<T> {
    /// Registers `/dev/<name>`, owned by `module` (which cannot be unloaded while it is open).
    pub fn register(name: &CStr, module: &'static ThisModule, data: T) -> Result<Self> {
        let data = KBox::pin(data, GFP_KERNEL)?;
        let fops = KBox::pin(
            bindings::file_operations {
                owner: module.as_ptr(),
                open: Some(Self::open),
                read_iter: Some(Self::read_iter),
                write_iter: Some(Self::write_iter),
                llseek: Some(Self::llseek),
                // SAFETY: All-zero is "not implemented" for the other operations.
                ..unsafe { core::mem::zeroed() }
            },
            GFP_KERNEL,
        )?;
        let ptr = (&*data as *const T).cast_mut().cast();
        // SAFETY: `name` is NUL-terminated (copied); `fops` and `data` are pinned and kept in
        // the returned value until after deregistration.
        let misc = unsafe { shim::iovx_misc_register(name.as_char_ptr(), &*fops, ptr) };
        let misc = kernel::error::from_err_ptr(misc)?;
        // INVARIANT: Registered with `fops` and `data`.
        Ok(Self {
            misc,
            _fops: fops,
            data,
        })
    }

    /// The device's data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// # Safety
    ///
    /// Called by the VFS through `misc_open()` with a file of this device.
    unsafe extern "C" fn open(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: `file` is being opened; O_DIRECT is what the device does anyway.
        unsafe { shim::iovx_file_allow_odirect(file) };
        0
    }

    /// # Safety
    ///
    /// `file` is an open file of this device.
    unsafe fn data_of<'f>(file: *mut bindings::file) -> &'f T {
        // SAFETY: The data pointer is the pinned `T`, which lives until the device is
        // deregistered when the module is unloaded; the module cannot be unloaded while a file
        // is open, since `fops.owner` holds it.
        unsafe { &*shim::iovx_file_data(file).cast::<T>() }
    }

    /// # Safety
    ///
    /// Called by the VFS with a kiocb and iterator of an open file of this device.
    unsafe extern "C" fn read_iter(
        iocb: *mut bindings::kiocb,
        iter: *mut bindings::iov_iter,
    ) -> isize {
        // SAFETY: As for `data_of`: the kiocb's file is an open file of this device.
        let data = unsafe { &*shim::iovx_kiocb_data(iocb).cast::<T>() };
        // SAFETY: `iter` is the call's destination iterator, valid during the call, with the
        // VFS's promise that an asynchronous kiocb's memory stays valid until it is completed.
        let iter = unsafe { IovIter::<Dest>::from_raw(iter) };
        // INVARIANT: The call's kiocb and iterator.
        let io = Kiocb { raw: iocb, iter };
        Self::ret(data.read_iter(io))
    }

    /// # Safety
    ///
    /// Called by the VFS with a kiocb and iterator of an open file of this device.
    unsafe extern "C" fn write_iter(
        iocb: *mut bindings::kiocb,
        iter: *mut bindings::iov_iter,
    ) -> isize {
        // SAFETY: As in `read_iter`.
        let data = unsafe { &*shim::iovx_kiocb_data(iocb).cast::<T>() };
        // SAFETY: `iter` is the call's source iterator, valid during the call, with the
        // VFS's promise that an asynchronous kiocb's memory stays valid until it is completed.
        let iter = unsafe { IovIter::<Source>::from_raw(iter) };
        // INVARIANT: The call's kiocb and iterator.
        let io = Kiocb { raw: iocb, iter };
        Self::ret(data.write_iter(io))
    }

    fn ret(r: Result<Outcome>) -> isize {
        match r {
            Ok(Outcome::Done(n)) => n as isize,
            // SAFETY: Pure constant.
            Ok(Outcome::Queued) => (unsafe { shim::iovx_eiocbqueued() }) as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// Called by the VFS with an open file of this device.
    unsafe extern "C" fn llseek(
        file: *mut bindings::file,
        off: bindings::loff_t,
        whence: ffi::c_int,
    ) -> bindings::loff_t {
        // SAFETY: `file` is an open file of this device.
        let size = unsafe { Self::data_of(file) }.size();
        // SAFETY: `file` is valid; `fixed_size_llseek()` takes the file's position lock itself.
        unsafe { bindings::fixed_size_llseek(file, off, whence, size as _) }
    }
}

impl<T: DirectIo> Drop for MiscDevice<T> {
    fn drop(&mut self) {
        // SAFETY: `misc` is registered (type invariant); after this no new file can open it, and
        // the module cannot be unloaded while one is open.
        unsafe { shim::iovx_misc_deregister(self.misc) };
    }
}

/// What an ioctl character device does.
pub trait IoctlDevice: Send + Sync + Sized + 'static {
    /// An ioctl: `cmd` and its argument (for most commands a user address).
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize>;
    /// A file of the device is closed.
    fn release(&self) {}
}

/// A registered misc character device `/dev/<name>` answering ioctls with a `T`.
///
/// # Invariants
///
/// `misc` is a registered misc device whose file operations are `fops` and whose data is
/// `data`; both outlive it (it is deregistered first, in `drop`).
pub struct MiscIoctl<T: IoctlDevice> {
    misc: *mut ffi::c_void,
    _fops: Pin<KBox<bindings::file_operations>>,
    data: Pin<KBox<T>>,
}

// SAFETY: As for `MiscDevice`.
unsafe impl<T: IoctlDevice> Send for MiscIoctl<T> {}
// SAFETY: As for `MiscDevice`.
unsafe impl<T: IoctlDevice> Sync for MiscIoctl<T> {}

impl<T: IoctlDevice> MiscIoctl<T> {
    /// Registers `/dev/<name>`, owned by `module`, with data made by `init`.
    pub fn register(
        name: &CStr,
        module: &'static ThisModule,
        init: impl PinInit<T, Error>,
    ) -> Result<Self> {
        let data = KBox::pin_init(init, GFP_KERNEL)?;
        let fops = KBox::pin(
            bindings::file_operations {
                owner: module.as_ptr(),
                open: Some(bindings::nonseekable_open),
                unlocked_ioctl: Some(Self::ioctl),
                // SAFETY: Returns a constant.
                compat_ioctl: unsafe { shim::iovx_compat_ptr_ioctl() },
                release: Some(Self::release),
                // SAFETY: All-zero is "not implemented" for the other operations.
                ..unsafe { core::mem::zeroed() }
            },
            GFP_KERNEL,
        )?;
        let ptr = (&*data as *const T).cast_mut().cast();
        // SAFETY: As in `MiscDevice::register`.
        let misc = unsafe { shim::iovx_misc_register(name.as_char_ptr(), &*fops, ptr) };
        let misc = kernel::error::from_err_ptr(misc)?;
        // INVARIANT: Registered with `fops` and `data`.
        Ok(Self {
            misc,
            _fops: fops,
            data,
        })
    }

    /// The device's data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// # Safety
    ///
    /// Called by the VFS with an open file of this device.
    unsafe extern "C" fn ioctl(
        file: *mut bindings::file,
        cmd: ffi::c_uint,
        arg: ffi::c_ulong,
    ) -> ffi::c_long {
        // SAFETY: The data lives until deregistration; the module, and so the device, stays
        // while a file is open (`fops.owner`).
        let data = unsafe { &*shim::iovx_file_data(file).cast::<T>() };
        match data.ioctl(cmd, arg) {
            Ok(v) => v as ffi::c_long,
            Err(e) => e.to_errno() as ffi::c_long,
        }
    }

    /// # Safety
    ///
    /// Called by the VFS when the last reference to a file of this device goes.
    unsafe extern "C" fn release(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: As in `ioctl`.
        let data = unsafe { &*shim::iovx_file_data(file).cast::<T>() };
        data.release();
        0
    }
}

impl<T: IoctlDevice> Drop for MiscIoctl<T> {
    fn drop(&mut self) {
        // SAFETY: `misc` is registered (type invariant).
        unsafe { shim::iovx_misc_deregister(self.misc) };
    }
}
