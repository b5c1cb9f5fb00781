// SPDX-License-Identifier: GPL-2.0

//! Misc character devices `/dev/<name>`: registration, and the file operations that hand each
//! call to the device's data.
//!
//! C headers: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h),
//! [`include/linux/fs.h`](srctree/include/linux/fs.h)
//!
//! Two kinds of device: a [`MiscDevice`] does direct I/O through a [`DirectIo`] implementation
//! (`read_iter`, `write_iter`, `llseek`); a [`MiscIoctl`] answers ioctls through an
//! [`IoctlDevice`] implementation (`unlocked_ioctl`, `compat_ioctl`, `release`).
//!
//! # Lifetimes
//!
//! - The `file_operations` table is a `const` of the device type, promoted to a `'static` in
//!   the module's read-only data: one table per type, never freed while the module is loaded.
//!   The VFS may read it as long as a file uses it, including after `release` (`__fput()` calls
//!   `fops_put(file->f_op)` after `release`, which reads `owner`).
//! - The table's `owner` is this module, so `misc_open()` takes a module reference for each open
//!   file (`fops_get()`) and `__fput()` drops it last: the module, and with it the table and the
//!   callbacks' code, cannot be unloaded while a file is open.
//! - The data is an `Arc<T>`: the registration holds one reference, and each open file one of
//!   its own (taken in `open`, dropped in `release`), so a file opened before the device was
//!   dropped keeps its data until it is closed.

use kernel::{
    bindings, ffi,
    prelude::*,
    sync::{Arc, ArcBorrow},
};

use super::direct_io::{self, DirectIo};
use super::shim;
use super::uring_cmd::{self, UringDevice};

/// What an ioctl character device does.
pub trait IoctlDevice: Send + Sync + Sized + 'static {
    /// An ioctl: `cmd` and its argument (for most commands a user address).
    ///
    /// Process context: may sleep.
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize>;

    /// A file of the device is closed (its last reference went).
    ///
    /// Process context: may sleep.
    fn release(&self) {}
}

/// A registered misc device `/dev/<name>` whose data is a `T`.
///
/// # Invariants
///
/// `misc` is a misc device registered (by [`Registration::new`]) with a table whose `open`,
/// `release` and other callbacks are those of `Registration<T>` and its wrappers, and with
/// `data` as its data: a reference from `Arc::into_raw` that the registration holds until `drop`
/// deregisters the device and gives it back.
struct Registration<T: Send + Sync + 'static> {
    misc: *mut ffi::c_void,
    data: *const T,
}

// SAFETY: Registration and deregistration may happen on any thread; `T` is `Send + Sync`.
unsafe impl<T: Send + Sync + 'static> Send for Registration<T> {}
// SAFETY: Nothing is reachable through a shared reference to a registration.
unsafe impl<T: Send + Sync + 'static> Sync for Registration<T> {}

impl<T: Send + Sync + 'static> Registration<T> {
    /// Registers `/dev/<name>` (mode 0600) with the table `fops` and the data made by `init`.
    ///
    /// Process context: may sleep.
    ///
    /// # Safety
    ///
    /// `fops`'s `open` is [`Registration::<T>::open_callback`] and its `release` is
    /// [`Registration::<T>::release_callback`] (or calls it last); its other callbacks find their
    /// data with [`Registration::<T>::file_data`].
    unsafe fn new(
        name: &CStr,
        fops: &'static bindings::file_operations,
        init: impl PinInit<T, Error>,
    ) -> Result<Self> {
        let data = Arc::into_raw(Arc::pin_init(init, GFP_KERNEL)?);
        // SAFETY: `fops` is a `'static` table; `data` is a reference given to the device, taken
        // back below on failure or in `drop` after deregistration; `name` is copied.
        let misc =
            unsafe { shim::iovx_misc_register(name.as_char_ptr(), fops, data.cast_mut().cast()) };
        match kernel::error::from_err_ptr(misc) {
            // INVARIANT: Registered with the table (by the safety requirements, that of `T`) and
            // the reference.
            Ok(misc) => Ok(Self { misc, data }),
            Err(e) => {
                // SAFETY: The reference was not handed over; take it back.
                drop(unsafe { Arc::from_raw(data) });
                Err(e)
            }
        }
    }

    /// `open`: the file takes a data reference of its own, kept in `private_data`.
    ///
    /// # Safety
    ///
    /// Called by `misc_open()` (which holds the misc lock, so the device is still registered)
    /// with a file of a device registered by [`Registration::new`] for this `T`.
    unsafe extern "C" fn open_callback(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: `misc_open()` left the device in `private_data`; its data is the
        // registration's reference (type invariant).
        let raw = unsafe { shim::iovx_file_data(file) }
            .cast::<T>()
            .cast_const();
        // SAFETY: `raw` came from `Arc::into_raw`, and the registration's reference stays until
        // deregistration, which waits for the misc lock that `misc_open()` holds.
        let file_ref: Arc<T> = unsafe { ArcBorrow::from_raw(raw) }.into();
        // SAFETY: `file` is being opened; `private_data` (the miscdevice) is replaced by the
        // file's reference, given back in `release`. O_DIRECT is allowed: the devices do direct
        // I/O or none.
        unsafe {
            shim::iovx_file_set_private(file, Arc::into_raw(file_ref).cast_mut().cast());
            shim::iovx_file_allow_odirect(file);
        }
        0
    }

    /// `release`: drops the file's data reference.
    ///
    /// # Safety
    ///
    /// Called by the VFS once, when the last reference to a file opened by
    /// [`Registration::open_callback`] goes.
    unsafe extern "C" fn release_callback(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: `private_data` holds the file's reference, made in `open`; no callback runs
        // after `release`, so it is given back once.
        drop(unsafe { Arc::from_raw((*file).private_data.cast::<T>().cast_const()) });
        0
    }

    /// The data of an open file.
    ///
    /// # Safety
    ///
    /// `file` is a file opened by [`Registration::open_callback`] and not yet released, and stays
    /// so for `'f`.
    #[inline]
    unsafe fn file_data<'f>(file: *mut bindings::file) -> &'f T {
        // SAFETY: `file` is valid; the file's reference, in `private_data` (set once by `open`),
        // keeps the data alive until `release`.
        unsafe { &*(*file).private_data.cast::<T>().cast_const() }
    }
}

impl<T: Send + Sync + 'static> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: `misc` is registered (type invariant). Once deregistered no file can open it
        // (`misc_open()` looks the device up under the misc lock, which deregistration takes);
        // the registration's reference is then given back, while open files keep their own.
        unsafe {
            shim::iovx_misc_deregister(self.misc);
            drop(Arc::from_raw(self.data));
        }
    }
}

/// A registered misc character device `/dev/<name>` doing direct I/O with a `T`.
///
/// Dropping it removes `/dev/<name>`; files already open keep working on their own reference to
/// the `T` until they are closed.
pub struct MiscDevice<T: DirectIo> {
    _reg: Registration<T>,
}

impl<T: DirectIo> MiscDevice<T> {
    /// The file operations of every `MiscDevice<T>`, in the module's read-only data.
    const FOPS: bindings::file_operations = bindings::file_operations {
        // Every open file holds the module: no unload while a file is open.
        owner: &raw mut bindings::__this_module,
        open: Some(Self::open_callback),
        release: Some(Self::release_callback),
        read_iter: Some(Self::read_iter_callback),
        write_iter: Some(Self::write_iter_callback),
        llseek: Some(Self::llseek_callback),
        // SAFETY: All-zero is "not implemented" for the other operations and no flags.
        ..unsafe { core::mem::zeroed() }
    };

    /// Registers `/dev/<name>` (mode 0600) with `data`.
    ///
    /// Process context: may sleep.
    pub fn register(name: &CStr, data: T) -> Result<Self> {
        Ok(Self {
            // SAFETY: `FOPS`'s `open` calls that of `Registration<T>` first and its `release`
            // calls that of `Registration<T>` last; its other callbacks use
            // `Registration::<T>::file_data`.
            _reg: unsafe { Registration::new(name, &Self::FOPS, data)? },
        })
    }

    /// `open`: the file takes its data reference, then the data may refuse the open
    /// ([`DirectIo::open`]), which gives the reference back.
    ///
    /// # Safety
    ///
    /// As [`Registration::open_callback`].
    unsafe extern "C" fn open_callback(
        inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: By the safety requirements.
        let r = unsafe { Registration::<T>::open_callback(inode, file) };
        if r != 0 {
            return r;
        }
        // SAFETY: The file holds its data reference, taken just above.
        if let Err(e) = unsafe { Registration::<T>::file_data(file) }.open() {
            // SAFETY: The open fails, so the VFS will not call `release`: the file's reference
            // is given back here, once.
            unsafe { Registration::<T>::release_callback(inode, file) };
            return e.to_errno();
        }
        0
    }

    /// `release`: the data hears of it, then the file's reference goes.
    ///
    /// # Safety
    ///
    /// Called by the VFS once, when the last reference to a file of a `MiscDevice<T>` goes.
    unsafe extern "C" fn release_callback(
        inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: `file` is an open file of this device until its reference is dropped below.
        unsafe { Registration::<T>::file_data(file) }.release();
        // SAFETY: The VFS's one `release` call for this file.
        unsafe { Registration::<T>::release_callback(inode, file) }
    }

    /// # Safety
    ///
    /// Called by the VFS with the kiocb and iterator of a `read_iter` call on an open file of a
    /// `MiscDevice<T>`.
    unsafe extern "C" fn read_iter_callback(
        iocb: *mut bindings::kiocb,
        iter: *mut bindings::iov_iter,
    ) -> isize {
        // SAFETY: The kiocb's file is an open file of this device, held during the call.
        let data = unsafe { Registration::<T>::file_data((*iocb).ki_filp) };
        // SAFETY: The arguments of the VFS's `read_iter` call.
        unsafe { direct_io::read_iter(data, iocb, iter) }
    }

    /// # Safety
    ///
    /// Called by the VFS with the kiocb and iterator of a `write_iter` call on an open file of a
    /// `MiscDevice<T>`.
    unsafe extern "C" fn write_iter_callback(
        iocb: *mut bindings::kiocb,
        iter: *mut bindings::iov_iter,
    ) -> isize {
        // SAFETY: The kiocb's file is an open file of this device, held during the call.
        let data = unsafe { Registration::<T>::file_data((*iocb).ki_filp) };
        // SAFETY: The arguments of the VFS's `write_iter` call.
        unsafe { direct_io::write_iter(data, iocb, iter) }
    }

    /// # Safety
    ///
    /// Called by the VFS with an open file of a `MiscDevice<T>`.
    unsafe extern "C" fn llseek_callback(
        file: *mut bindings::file,
        off: bindings::loff_t,
        whence: ffi::c_int,
    ) -> bindings::loff_t {
        // SAFETY: `file` is an open file of this device, held during the call.
        let size = unsafe { Registration::<T>::file_data(file) }.size();
        // SAFETY: `file` is valid; `fixed_size_llseek()` takes the file's position lock itself.
        unsafe { bindings::fixed_size_llseek(file, off, whence, size as _) }
    }
}

/// A registered misc character device `/dev/<name>` answering ioctls with a `T`.
///
/// Dropping it removes `/dev/<name>`; files already open keep working on their own reference to
/// the `T` until they are closed.
pub struct MiscIoctl<T: IoctlDevice> {
    _reg: Registration<T>,
}

impl<T: IoctlDevice> MiscIoctl<T> {
    /// The file operations of every `MiscIoctl<T>`, in the module's read-only data.
    const FOPS: bindings::file_operations = bindings::file_operations {
        // Every open file holds the module: no unload while a file is open.
        owner: &raw mut bindings::__this_module,
        open: Some(Registration::<T>::open_callback),
        release: Some(Self::release_callback),
        unlocked_ioctl: Some(Self::ioctl_callback),
        // The arguments are user addresses or integers: `compat_ptr()` is all the translation.
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: Some(bindings::compat_ptr_ioctl),
        // SAFETY: All-zero is "not implemented" for the other operations and no flags.
        ..unsafe { core::mem::zeroed() }
    };

    /// Registers `/dev/<name>` (mode 0600) with data made by `init`.
    ///
    /// Process context: may sleep.
    pub fn register(name: &CStr, init: impl PinInit<T, Error>) -> Result<Self> {
        Ok(Self {
            // SAFETY: `FOPS`'s `open` is that of `Registration<T>`, its `release` calls that of
            // `Registration<T>` last, and `ioctl` uses `Registration::<T>::file_data`.
            _reg: unsafe { Registration::new(name, &Self::FOPS, init)? },
        })
    }

    /// # Safety
    ///
    /// Called by the VFS with an open file of a `MiscIoctl<T>`.
    unsafe extern "C" fn ioctl_callback(
        file: *mut bindings::file,
        cmd: ffi::c_uint,
        arg: ffi::c_ulong,
    ) -> ffi::c_long {
        // SAFETY: `file` is an open file of this device, held during the call.
        let data = unsafe { Registration::<T>::file_data(file) };
        match data.ioctl(cmd, arg) {
            Ok(v) => v as ffi::c_long,
            Err(e) => e.to_errno() as ffi::c_long,
        }
    }

    /// # Safety
    ///
    /// Called by the VFS once, when the last reference to a file of a `MiscIoctl<T>` goes.
    unsafe extern "C" fn release_callback(
        inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: `file` is an open file of this device until its reference is dropped below.
        unsafe { Registration::<T>::file_data(file) }.release();
        // SAFETY: The VFS's one `release` call for this file.
        unsafe { Registration::<T>::release_callback(inode, file) }
    }
}

/// A registered misc character device `/dev/<name>` answering io_uring commands
/// (`IORING_OP_URING_CMD`) with a `T`.
///
/// Dropping it removes `/dev/<name>`; files already open (and io_uring holds the file of each
/// command until it is answered) keep working on their own reference to the `T`.
pub struct MiscUring<T: UringDevice> {
    _reg: Registration<T>,
}

impl<T: UringDevice> MiscUring<T> {
    /// The file operations of every `MiscUring<T>`, in the module's read-only data.
    const FOPS: bindings::file_operations = bindings::file_operations {
        // Every open file holds the module: no unload while a file is open, or a command is in
        // flight (io_uring holds its file).
        owner: &raw mut bindings::__this_module,
        open: Some(Registration::<T>::open_callback),
        release: Some(Self::release_callback),
        uring_cmd: Some(Self::uring_cmd_callback),
        // SAFETY: All-zero is "not implemented" for the other operations and no flags.
        ..unsafe { core::mem::zeroed() }
    };

    /// Registers `/dev/<name>` (mode 0600) with data made by `init`.
    ///
    /// Process context: may sleep.
    pub fn register(name: &CStr, init: impl PinInit<T, Error>) -> Result<Self> {
        Ok(Self {
            // SAFETY: `FOPS`'s `open` is that of `Registration<T>`, its `release` calls that of
            // `Registration<T>` last, and `uring_cmd` uses `Registration::<T>::file_data`.
            _reg: unsafe { Registration::new(name, &Self::FOPS, init)? },
        })
    }

    /// # Safety
    ///
    /// Called by io_uring with a command on an open file of a `MiscUring<T>`.
    unsafe extern "C" fn uring_cmd_callback(
        ioucmd: *mut bindings::io_uring_cmd,
        issue_flags: ffi::c_uint,
    ) -> ffi::c_int {
        // SAFETY: The command's file is an open file of this device, held by io_uring.
        let data = unsafe { Registration::<T>::file_data(shim::iovx_uring_cmd_file(ioucmd)) };
        // SAFETY: As io_uring passed them; `data` is the file's.
        unsafe { uring_cmd::dispatch(data, ioucmd, issue_flags) }
    }

    /// # Safety
    ///
    /// Called by the VFS once, when the last reference to a file of a `MiscUring<T>` goes.
    unsafe extern "C" fn release_callback(
        inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: `file` is an open file of this device until its reference is dropped below.
        unsafe { Registration::<T>::file_data(file) }.release();
        // SAFETY: The VFS's one `release` call for this file.
        unsafe { Registration::<T>::release_callback(inode, file) }
    }
}

/// A file opened by the kernel itself, for the KUnit suites: `open` and the last `close` take
/// the VFS paths of a user's (`misc_open()` with `fops_get()`; `__fput()` with `release` and
/// then `fops_put()`).
///
/// # Invariants
///
/// `raw` is a file opened by `filp_open()`, whose reference this handle owns.
#[cfg(iovx_kunit)]
pub struct KernelFile {
    raw: *mut bindings::file,
}

#[cfg(iovx_kunit)]
impl KernelFile {
    /// Opens `path` for reading and writing.
    ///
    /// Process context: may sleep.
    pub fn open(path: &CStr) -> Result<Self> {
        // SAFETY: `path` is NUL-terminated and lives across the call.
        let raw = unsafe { bindings::filp_open(path.as_char_ptr(), bindings::O_RDWR as _, 0) };
        // INVARIANT: An open file, or an error.
        Ok(Self {
            raw: kernel::error::from_err_ptr(raw)?,
        })
    }

    /// An ioctl through the file's `unlocked_ioctl`, as `vfs_ioctl()` makes it; `ENOTTY` if
    /// there is none. `arg` is passed as is: for a command that takes a user address, the
    /// device finds no user memory there (`EFAULT`) when the caller is a kernel thread.
    ///
    /// Process context: may sleep.
    pub fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        // SAFETY: The file is open (type invariant), so `f_op` is its table.
        let ioctl = unsafe { (*(*self.raw).f_op).unlocked_ioctl }.ok_or(ENOTTY)?;
        // SAFETY: The file is open, and held across the call.
        let r = unsafe { ioctl(self.raw, cmd, arg as _) };
        if r < 0 {
            Err(Error::from_errno(r as i32))
        } else {
            Ok(r)
        }
    }
}

#[cfg(iovx_kunit)]
impl Drop for KernelFile {
    fn drop(&mut self) {
        // SAFETY: The handle owns its reference (type invariant), which `filp_close()` drops.
        // The last `fput()` of a kernel thread is deferred to a work item; `flush_delayed_fput()`
        // runs it, so `release` and `fops_put()` are done when `drop` returns.
        unsafe {
            bindings::filp_close(self.raw, core::ptr::null_mut());
            bindings::flush_delayed_fput();
        }
    }
}
