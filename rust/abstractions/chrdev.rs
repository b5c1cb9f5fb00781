// SPDX-License-Identifier: GPL-2.0

//! Character devices: direct-I/O devices and ioctl devices.
//!
//! C headers: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h),
//! [`include/linux/fs.h`](srctree/include/linux/fs.h)
//!
//! A [`MiscDevice`] registers `/dev/<name>` with a [`DirectIo`] implementation, whose calls
//! [`direct_io`](super::direct_io) makes (see there for the kiocb and the token that ends a
//! call).

use kernel::{bindings, prelude::*, sync::Arc};

use super::direct_io::{self, DirectIo};
use super::shim;

use kernel::ffi;

/// The file operations table of a device, read-only once made.
struct Fops(bindings::file_operations);

// SAFETY: The table is only read (by the VFS) after it is made; its pointers are to functions
// and to the owning module, which may be used from any thread.
unsafe impl Send for Fops {}
// SAFETY: As above.
unsafe impl Sync for Fops {}

/// What a device registration shares with the device's open files.
#[pin_data]
struct Shared<D> {
    fops: Fops,
    #[pin]
    data: D,
}

/// A registered misc character device `/dev/<name>` with data `D`.
///
/// The file operations table and the data are reference-counted: the registration holds one
/// reference and every open file another (taken in `open`, dropped in `release`), so that a file
/// opened before the device was deregistered keeps both. The table names the module as owner, so
/// the module stays loaded while a file is open.
///
/// # Invariants
///
/// `misc` is a misc device registered with `shared`'s table and with `shared` (one reference,
/// from `Arc::into_raw`) as its data, until `drop` deregisters it and gives the reference back.
struct Registration<D: Send + Sync + 'static> {
    misc: *mut ffi::c_void,
    shared: *const Shared<D>,
}

// SAFETY: Registration and deregistration may happen on any thread; `D` is `Send + Sync`.
unsafe impl<D: Send + Sync + 'static> Send for Registration<D> {}
// SAFETY: Only `D` is reachable through a shared reference, and it is `Sync`.
unsafe impl<D: Send + Sync + 'static> Sync for Registration<D> {}

impl<D: Send + Sync + 'static> Registration<D> {
    fn new(
        name: &CStr,
        fops: bindings::file_operations,
        data: impl PinInit<D, Error>,
    ) -> Result<Self> {
        let shared = Arc::pin_init(
            try_pin_init!(Shared {
                fops: Fops(fops),
                data <- data,
            }),
            GFP_KERNEL,
        )?;
        let raw = Arc::into_raw(shared);
        // SAFETY: `raw` is a live `Shared` whose table outlives the registration (the reference
        // given to it here is only dropped after deregistration); `name` is copied.
        let misc = unsafe {
            shim::iovx_misc_register(name.as_char_ptr(), &(*raw).fops.0, raw.cast_mut().cast())
        };
        match kernel::error::from_err_ptr(misc) {
            // INVARIANT: Registered with the table and the reference.
            Ok(misc) => Ok(Self { misc, shared: raw }),
            Err(e) => {
                // SAFETY: The reference was not handed over; take it back.
                drop(unsafe { Arc::from_raw(raw) });
                Err(e)
            }
        }
    }

    fn data(&self) -> &D {
        // SAFETY: The registration holds a reference (type invariant).
        unsafe { &(*self.shared).data }
    }

    /// `open`: the file takes a reference of its own, kept in `private_data`.
    ///
    /// # Safety
    ///
    /// Called by `misc_open()` (which holds the misc lock, so the device is registered) with a
    /// file of a device registered by [`Registration::new`] for this `D`.
    unsafe extern "C" fn open(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: The misc data of the device is `shared`, alive while registered.
        let raw = unsafe { shim::iovx_file_data(file) }
            .cast::<Shared<D>>()
            .cast_const();
        // SAFETY: `raw` came from `Arc::into_raw` and its reference is still held by the
        // registration; this makes another one for the file.
        let mine = unsafe { core::mem::ManuallyDrop::new(Arc::from_raw(raw)) };
        let file_ref = Arc::into_raw((*mine).clone());
        // SAFETY: `file` is being opened; `private_data` (the miscdevice, set by misc_open) is
        // replaced by the file's reference, given back in `release`. O_DIRECT is allowed: the
        // devices do direct I/O or none.
        unsafe {
            shim::iovx_file_set_private(file, file_ref.cast_mut().cast());
            shim::iovx_file_allow_odirect(file);
        }
        0
    }

    /// `release`: drops the file's reference.
    ///
    /// # Safety
    ///
    /// Called by the VFS once, when the last reference to a file opened by `open` goes.
    unsafe extern "C" fn release(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: `private_data` holds the file's reference, made in `open`.
        drop(unsafe {
            Arc::from_raw(
                shim::iovx_file_private(file)
                    .cast::<Shared<D>>()
                    .cast_const(),
            )
        });
        0
    }

    /// The data of an open file.
    ///
    /// # Safety
    ///
    /// `file` is a file opened by `open` and not yet released.
    unsafe fn file_data<'f>(file: *mut bindings::file) -> &'f D {
        // SAFETY: The file's reference, in `private_data`, keeps `Shared` alive until `release`.
        unsafe { &(*(*file).private_data.cast::<Shared<D>>()).data }
    }
}

impl<D: Send + Sync + 'static> Drop for Registration<D> {
    fn drop(&mut self) {
        // SAFETY: `misc` is registered (type invariant); afterwards no new file can open it, and
        // the registration's reference is given back (open files keep their own).
        unsafe {
            shim::iovx_misc_deregister(self.misc);
            drop(Arc::from_raw(self.shared));
        }
    }
}

/// A registered misc character device `/dev/<name>` doing direct I/O with a `T`.
pub struct MiscDevice<T: DirectIo> {
    reg: Registration<T>,
}

impl<T: DirectIo> MiscDevice<T> {
    /// Registers `/dev/<name>`, owned by `module` (which cannot be unloaded while it is open).
    pub fn register(name: &CStr, module: &'static ThisModule, data: T) -> Result<Self> {
        let fops = bindings::file_operations {
            owner: module.as_ptr(),
            open: Some(Registration::<T>::open),
            release: Some(Registration::<T>::release),
            read_iter: Some(Self::read_iter),
            write_iter: Some(Self::write_iter),
            llseek: Some(Self::llseek),
            // SAFETY: All-zero is "not implemented" for the other operations.
            ..unsafe { core::mem::zeroed() }
        };
        Ok(Self {
            reg: Registration::new(name, fops, data)?,
        })
    }

    /// The device's data.
    pub fn data(&self) -> &T {
        self.reg.data()
    }

    /// # Safety
    ///
    /// Called by the VFS with a kiocb and iterator of an open file of this device.
    unsafe extern "C" fn read_iter(
        iocb: *mut bindings::kiocb,
        iter: *mut bindings::iov_iter,
    ) -> isize {
        // SAFETY: The kiocb's file is an open file of this device.
        let data = unsafe { Registration::<T>::file_data((*iocb).ki_filp) };
        // SAFETY: The arguments of this `read_iter` call of the VFS.
        unsafe { direct_io::read_iter(data, iocb, iter) }
    }

    /// # Safety
    ///
    /// Called by the VFS with a kiocb and iterator of an open file of this device.
    unsafe extern "C" fn write_iter(
        iocb: *mut bindings::kiocb,
        iter: *mut bindings::iov_iter,
    ) -> isize {
        // SAFETY: The kiocb's file is an open file of this device.
        let data = unsafe { Registration::<T>::file_data((*iocb).ki_filp) };
        // SAFETY: The arguments of this `write_iter` call of the VFS.
        unsafe { direct_io::write_iter(data, iocb, iter) }
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
        let size = unsafe { Registration::<T>::file_data(file) }.size();
        // SAFETY: `file` is valid; `fixed_size_llseek()` takes the file's position lock itself.
        unsafe { bindings::fixed_size_llseek(file, off, whence, size as _) }
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
pub struct MiscIoctl<T: IoctlDevice> {
    reg: Registration<T>,
}

impl<T: IoctlDevice> MiscIoctl<T> {
    /// Registers `/dev/<name>`, owned by `module`, with data made by `init`.
    pub fn register(
        name: &CStr,
        module: &'static ThisModule,
        init: impl PinInit<T, Error>,
    ) -> Result<Self> {
        let fops = bindings::file_operations {
            owner: module.as_ptr(),
            open: Some(Registration::<T>::open),
            release: Some(Self::release),
            unlocked_ioctl: Some(Self::ioctl),
            // SAFETY: Returns a constant.
            compat_ioctl: unsafe { shim::iovx_compat_ptr_ioctl() },
            // SAFETY: All-zero is "not implemented" for the other operations.
            ..unsafe { core::mem::zeroed() }
        };
        Ok(Self {
            reg: Registration::new(name, fops, init)?,
        })
    }

    /// The device's data.
    pub fn data(&self) -> &T {
        self.reg.data()
    }

    /// # Safety
    ///
    /// Called by the VFS with an open file of this device.
    unsafe extern "C" fn ioctl(
        file: *mut bindings::file,
        cmd: ffi::c_uint,
        arg: ffi::c_ulong,
    ) -> ffi::c_long {
        // SAFETY: `file` is an open file of this device.
        let data = unsafe { Registration::<T>::file_data(file) };
        match data.ioctl(cmd, arg) {
            Ok(v) => v as ffi::c_long,
            Err(e) => e.to_errno() as ffi::c_long,
        }
    }

    /// # Safety
    ///
    /// Called by the VFS once, when the last reference to a file of this device goes.
    unsafe extern "C" fn release(
        inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: `file` is an open file of this device until the reference is dropped below.
        unsafe { Registration::<T>::file_data(file) }.release();
        // SAFETY: As required by `Registration::release`.
        unsafe { Registration::<T>::release(inode, file) }
    }
}
