// SPDX-License-Identifier: GPL-2.0

//! Structures exchanged with user space through ioctls, read and written back whole.
//!
//! C header: [`mm/gup_test.h`](srctree/mm/gup_test.h) (generated into `generated/gup_test.rs`
//! by bindgen at build time).
//!
//! Bytes copied to user space are initialised bytes. A C structure may have padding (`struct
//! gup_test` and `struct pin_longterm_test` end with four bytes of it), and a Rust value's
//! padding bytes are uninitialised: copying them out is undefined behaviour and may leak kernel
//! memory. So:
//!
//! - bindgen generates the structures with `--explicit-padding`: every padding byte of the C
//!   layout is a named field (`__bindgen_padding_N`), part of every value (zero in `Default`,
//!   the user's own bytes in a value read from user space);
//! - bindgen also emits compile-time assertions that the Rust size, alignment and field offsets
//!   are the C ones (clang's, for the configured kernel's target);
//! - [`UserArg::write`] takes only [`AsBytes`] types (no uninitialised byte), and the generated
//!   structures are [`AsBytes`] and [`FromBytes`] only after a compile-time check that their
//!   fields, each one itself [`AsBytes`] and [`FromBytes`], cover every byte of the structure.
//!   A padded structure cannot be written back: it does not compile.

use core::mem::size_of;
use kernel::{
    prelude::*,
    types::{AsBytes, FromBytes},
    uaccess::UserSlice,
};

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

/// Makes a generated structure [`FromBytes`] and [`AsBytes`], after checking at compile time
/// that it has no implicit padding.
///
/// The list must name every field (the pattern below is exhaustive, so a field added to the C
/// structure and not listed does not compile), each field must be [`FromBytes`] and [`AsBytes`]
/// (integers, arrays of them, bindgen's explicit padding), and their sizes must add up to the
/// structure's: then the fields, which do not overlap in a `repr(C)` structure, cover every
/// byte.
macro_rules! plain_data {
    ($t:ident { $($f:ident),* $(,)? }) => {
        const _: () = {
            /// The size of the field that `_f` projects to, if that field is plain data.
            const fn field_size<F: FromBytes + AsBytes>(_f: fn(&$t) -> &F) -> usize {
                size_of::<F>()
            }
            // Every field is listed.
            let _ = |v: &$t| {
                let $t { $($f: _),* } = v;
            };
            assert!(
                0 $(+ field_size(|v: &$t| &v.$f))* == size_of::<$t>(),
                concat!(stringify!($t), " has padding that is not a named field"),
            );
        };

        // SAFETY: Checked above: every byte belongs to a field (no padding) and every field is
        // `FromBytes` and `AsBytes`, so every bit pattern is a valid value, no value has an
        // uninitialised byte, and there is no interior mutability.
        unsafe impl FromBytes for $t {}
        // SAFETY: As above.
        unsafe impl AsBytes for $t {}
    };
}

plain_data!(GupTest {
    get_delta_usec,
    put_delta_usec,
    addr,
    size,
    nr_pages_per_call,
    gup_flags,
    test_flags,
    which_pages,
    __bindgen_padding_0,
});

plain_data!(PinLongtermTest {
    addr,
    size,
    flags,
    __bindgen_padding_0,
});

// The sizes of the ABI (`_IOWR('g', 1, struct gup_test)` encodes 80, `_IOW('g', 7, struct
// pin_longterm_test)` 24) on the 64-bit targets the module builds for, x86_64 and arm64; the
// generated file also asserts the C layout field by field, as clang computed it.
const _: () = assert!(size_of::<GupTest>() == 80);
const _: () = assert!(size_of::<PinLongtermTest>() == 24);

/// A `T` read from user memory, to look at, change, and for a type without padding write back.
///
/// `T` is [`FromBytes`]: whatever bytes user space passed make a valid value.
pub struct UserArg<T: FromBytes> {
    v: T,
}

impl<T: FromBytes> UserArg<T> {
    /// Copies a `T` from user address `addr`; `EFAULT` if it cannot be read.
    ///
    /// Process context: may sleep (a page fault).
    pub fn read(addr: usize) -> Result<Self> {
        let v = UserSlice::new(addr, size_of::<T>()).reader().read::<T>()?;
        Ok(Self { v })
    }

    /// The value.
    pub fn get(&self) -> &T {
        &self.v
    }

    /// The value, to change.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.v
    }
}

impl<T: FromBytes + AsBytes> UserArg<T> {
    /// Copies the value to user address `addr`, every byte of it; `EFAULT` if it cannot be
    /// written.
    ///
    /// Only for [`AsBytes`] types: a value with padding would copy uninitialised bytes out.
    ///
    /// Process context: may sleep (a page fault).
    pub fn write(&self, addr: usize) -> Result {
        UserSlice::new(addr, size_of::<T>()).writer().write(&self.v)
    }
}

// --- The passthrough ioctl of /dev/iovxN (rust/uapi/iovx.h) ---------------------------------

/// The passthrough ioctl ABI of the RAM disks.
#[allow(
    dead_code,
    non_camel_case_types,
    non_upper_case_globals,
    unreachable_pub,
    missing_docs,
    clippy::all,
    reason = "generated code"
)]
pub mod iovx {
    use kernel::ffi;
    include!("generated/iovx.rs");
}

pub use iovx::{iovx_pt_cmd as PtCmd, iovx_pt_identify as PtIdentify};

plain_data!(PtCmd {
    opcode,
    flags,
    sector,
    addr,
    len,
    result,
    mapping,
    segments,
});

plain_data!(PtIdentify {
    magic,
    capacity_sectors,
    logical_block_size,
    max_hw_sectors,
    max_segments,
    dma_alignment,
    virt_boundary,
});

const _: () = assert!(size_of::<PtCmd>() == 40);
const _: () = assert!(size_of::<PtIdentify>() == 40);

/// `IOVX_IOC_PT`: `_IOWR('X', 0x40, struct iovx_pt_cmd)`.
pub const IOVX_IOC_PT: u32 = kernel::ioctl::_IOWR::<PtCmd>(b'X' as u32, 0x40);

/// `IOVX_URING_CMD_PT`: `_IOWR('X', 0x41, struct iovx_pt_cmd)`, the `cmd_op` of the io_uring
/// command of `/dev/iovx_ngN`.
pub const IOVX_URING_CMD_PT: u32 = kernel::ioctl::_IOWR::<PtCmd>(b'X' as u32, 0x41);

/// A `T` read from the first bytes of `bytes` (e.g. an io_uring command's payload); `EINVAL` if
/// there are fewer than `size_of::<T>()`.
pub fn read_plain<T: FromBytes>(bytes: &[u8]) -> Result<T> {
    if bytes.len() < size_of::<T>() {
        return Err(EINVAL);
    }
    // SAFETY: `bytes` holds at least `size_of::<T>()` initialised bytes, read without alignment;
    // every bit pattern is a valid `T` (`FromBytes`).
    Ok(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// `struct iovec` as user space passes it: two 64-bit words.
#[derive(Clone, Copy, Default)]
#[repr(C)]
pub struct UserIovec {
    /// The address.
    pub base: u64,
    /// The length.
    pub len: u64,
}

// SAFETY: Two `u64`s, no padding: every bit pattern is valid and every byte initialised.
unsafe impl FromBytes for UserIovec {}

/// Reads `n` `struct iovec`s from user address `addr` into a vector.
///
/// Process context: may sleep.
pub fn read_iovecs(addr: usize, n: usize) -> Result<KVec<super::iov::UserVec>> {
    let bytes = n.checked_mul(size_of::<UserIovec>()).ok_or(EINVAL)?;
    let mut r = UserSlice::new(addr, bytes).reader();
    let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        let e = r.read::<UserIovec>()?;
        v.push(
            super::iov::UserVec::new(e.base as usize, e.len as usize),
            GFP_KERNEL,
        )?;
    }
    Ok(v)
}

/// The bytes of a value with no uninitialised byte.
pub fn as_bytes<T: AsBytes>(v: &T) -> &[u8] {
    // SAFETY: `T: AsBytes`: every byte of a `T` is initialised; the slice covers `v` and
    // borrows it.
    unsafe { core::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}
