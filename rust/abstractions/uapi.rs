// SPDX-License-Identifier: GPL-2.0

//! Structures exchanged with user space through ioctls, read and written back whole.
//!
//! C header: [`mm/gup_test.h`](srctree/mm/gup_test.h) (generated into `generated/gup_test.rs`
//! by bindgen at build time).

use core::mem::{size_of, MaybeUninit};
use kernel::{prelude::*, uaccess::UserSlice};

/// The ioctl ABI of the kernel's gup_test device.
#[allow(
    dead_code,
    non_camel_case_types,
    non_upper_case_globals,
    unreachable_pub,
    missing_docs,
    clippy::all,
    reason = "generated code"
)]
mod gup {
    use kernel::ffi;
    include!("generated/gup_test.rs");
}

pub use gup::{gup_test as GupTest, pin_longterm_test as PinLongtermTest};

/// `GUP_TEST_MAX_PAGES_TO_DUMP`.
pub const GUP_TEST_MAX_PAGES_TO_DUMP: usize = gup::GUP_TEST_MAX_PAGES_TO_DUMP as usize;
/// `GUP_TEST_FLAG_DUMP_PAGES_USE_PIN`.
pub const GUP_TEST_FLAG_DUMP_PAGES_USE_PIN: u32 = gup::GUP_TEST_FLAG_DUMP_PAGES_USE_PIN;
/// `PIN_LONGTERM_TEST_FLAG_USE_WRITE`.
pub const PIN_LONGTERM_TEST_FLAG_USE_WRITE: u32 = gup::PIN_LONGTERM_TEST_FLAG_USE_WRITE;
/// `PIN_LONGTERM_TEST_FLAG_USE_FAST`.
pub const PIN_LONGTERM_TEST_FLAG_USE_FAST: u32 = gup::PIN_LONGTERM_TEST_FLAG_USE_FAST;

/// A plain-data ioctl structure.
///
/// # Safety
///
/// Every bit pattern of `size_of::<Self>()` bytes is a valid value, and the type has no
/// pointers or references.
pub unsafe trait Pod: Copy {}

// SAFETY: Integers and arrays of integers only.
unsafe impl Pod for GupTest {}
// SAFETY: Integers only.
unsafe impl Pod for PinLongtermTest {}
// SAFETY: An integer.
unsafe impl Pod for u64 {}

/// A `T` read from user memory, kept byte for byte, padding included, so that it can be written
/// back exactly as the C code would with `copy_to_user(&struct)`.
///
/// # Invariants
///
/// All `size_of::<T>()` bytes of `v` are initialised.
pub struct UserArg<T: Pod> {
    v: MaybeUninit<T>,
}

impl<T: Pod> UserArg<T> {
    /// Copies a `T` from user address `addr`; `EFAULT` if it cannot be read.
    pub fn read(addr: usize) -> Result<Self> {
        let mut v = MaybeUninit::<T>::zeroed();
        // SAFETY: `v` is `size_of::<T>()` bytes, all initialised (zeroed), viewed as bytes.
        let bytes =
            unsafe { core::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), size_of::<T>()) };
        UserSlice::new(addr, size_of::<T>())
            .reader()
            .read_slice(bytes)?;
        // INVARIANT: Every byte was zeroed, then written from user memory.
        Ok(Self { v })
    }

    /// The value.
    pub fn get(&self) -> &T {
        // SAFETY: All bytes are initialised (type invariant) and any pattern is valid (`Pod`).
        unsafe { self.v.assume_init_ref() }
    }

    /// The value, to change fields in place. Assign fields, not the whole value: the bytes
    /// written back are those in memory, and a whole-value assignment may copy padding bytes
    /// from elsewhere.
    pub fn get_mut(&mut self) -> &mut T {
        // SAFETY: As in `get`; field writes keep every byte initialised.
        unsafe { self.v.assume_init_mut() }
    }

    /// Copies the bytes back to user address `addr`; `EFAULT` if it cannot be written.
    pub fn write(&self, addr: usize) -> Result {
        // SAFETY: All `size_of::<T>()` bytes are initialised (type invariant).
        let bytes =
            unsafe { core::slice::from_raw_parts(self.v.as_ptr().cast::<u8>(), size_of::<T>()) };
        UserSlice::new(addr, size_of::<T>())
            .writer()
            .write_slice(bytes)
    }
}
