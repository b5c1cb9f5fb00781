// SPDX-License-Identifier: GPL-2.0

//! What `make run` shows: the abstractions at work, logged to the kernel log.

use crate::abi::iov::{Dest, IovIter, Kvec, Source};
use kernel::prelude::*;

/// Copies a message through a source and a destination KVEC iterator and logs each step.
pub(crate) fn run() -> Result {
    let msg = b"iov-extract: bytes through an iov_iter";
    let mut out = [0u8; 64];

    let mut src_segs = [Kvec::<Source>::new(&msg[..10]), Kvec::<Source>::new(&msg[10..])];
    let mut src = IovIter::kvec(&mut src_segs)?;
    pr_info!(
        "demo: source {:?} iterator, {} bytes in {} segments, will pin: {}\n",
        src.kind(),
        src.len(),
        src.nr_segs(),
        src.extract_will_pin()
    );
    let mut staged = [0u8; 64];
    let n = src.copy_from_iter(&mut staged);

    let mut dst_segs = [Kvec::<Dest>::new(&mut out)];
    let mut dst = IovIter::kvec(&mut dst_segs)?;
    let m = dst.copy_to_iter(&staged[..n]);
    pr_info!("demo: copied {} bytes out of the source and {} into the destination\n", n, m);
    drop(dst);

    if out[..m] != msg[..] {
        pr_err!("demo: destination does not hold the source bytes\n");
        return Err(EIO);
    }
    pr_info!("demo: destination holds the source bytes\n");
    Ok(())
}
