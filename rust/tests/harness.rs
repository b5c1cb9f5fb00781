// SPDX-License-Identifier: GPL-2.0

//! Suite `iovx_harness`: the KUnit glue and the C shim against the kernel they were built for.

#![deny(unsafe_code)]

use crate::abstractions::iov::{Dest, IovIter, Kind, Kvec, Source, UserVec};
use crate::abstractions::kunit::{CaseResult, Test};
use crate::{kunit_assert, kunit_assert_eq, kunit_suite};
use kernel::prelude::*;

/// A KVEC source iterator reports its kind, length and segments through the shim.
fn kvec_source_shape(t: &Test) -> CaseResult {
    let a = [1u8; 100];
    let b = [2u8; 28];
    let mut segs = [
        Kvec::<Source>::new(&a),
        Kvec::<Source>::new(&[]),
        Kvec::<Source>::new(&b),
    ];
    let it = IovIter::kvec(&mut segs)?;
    kunit_assert_eq!(t, it.kind(), Kind::Kvec);
    kunit_assert_eq!(t, it.len(), 128);
    kunit_assert_eq!(t, it.nr_segs(), 3);
    kunit_assert!(t, !it.extract_will_pin());
    Ok(())
}

/// copy_to_iter() through the shim fills a KVEC destination across segments and advances.
fn kvec_copy_to_iter(t: &Test) -> CaseResult {
    let mut a = [0u8; 3];
    let mut b = [0u8; 5];
    let src = *b"abcdefgh";
    {
        let mut segs = [Kvec::<Dest>::new(&mut a), Kvec::<Dest>::new(&mut b)];
        let mut it = IovIter::kvec(&mut segs)?;
        kunit_assert_eq!(t, it.copy_to_iter(&src[..6]), 6);
        kunit_assert_eq!(t, it.len(), 2);
        // Only two bytes are left.
        kunit_assert_eq!(t, it.copy_to_iter(&src[6..]), 2);
        kunit_assert!(t, it.is_empty());
    }
    kunit_assert_eq!(t, &a, b"abc");
    kunit_assert_eq!(t, &b, b"defgh");
    Ok(())
}

/// Revert only steps back over what this handle advanced.
fn revert_is_bounded(t: &Test) -> CaseResult {
    let a = [7u8; 16];
    let mut segs = [Kvec::<Source>::new(&a)];
    let mut it = IovIter::kvec(&mut segs)?;
    kunit_assert_eq!(t, it.advance(10), 10);
    kunit_assert_eq!(t, it.revert(11), Err(EINVAL));
    kunit_assert_eq!(t, it.revert(4), Ok(()));
    kunit_assert_eq!(t, it.len(), 10);
    Ok(())
}

/// A user buffer from kunit_vm_mmap() makes a UBUF iterator that extraction would pin.
fn ubuf_will_pin(t: &Test) -> CaseResult {
    let addr = t.vm_mmap(4096, true, true)?;
    let it = IovIter::<Dest>::ubuf(addr, 4096)?;
    kunit_assert_eq!(t, it.kind(), Kind::Ubuf);
    kunit_assert_eq!(t, it.len(), 4096);
    kunit_assert!(t, it.extract_will_pin());
    Ok(())
}

/// A range outside user space is refused with EFAULT, as import_ubuf() does.
fn ubuf_kernel_address_efault(t: &Test) -> CaseResult {
    let kernel_addr = t as *const Test as usize;
    kunit_assert_eq!(t, IovIter::<Dest>::ubuf(kernel_addr, 8).err(), Some(EFAULT));
    let segs = [UserVec::new(0x1000, 8), UserVec::new(kernel_addr, 8)];
    kunit_assert_eq!(t, IovIter::<Source>::iovec(&segs).err(), Some(EFAULT));
    Ok(())
}

kunit_suite!(
    iovx_harness,
    [
        kvec_source_shape,
        kvec_copy_to_iter,
        revert_is_bounded,
        ubuf_will_pin,
        ubuf_kernel_address_efault,
    ]
);
