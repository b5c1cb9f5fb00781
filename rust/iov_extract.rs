// SPDX-License-Identifier: GPL-2.0

//! iov-extract: page extraction from `iov_iter`s (pin, ref or just list) in safe Rust.
//!
//! At load the module shows the abstractions at work on kernel memory and logs what it did.

// Public so that its API is checked as an API (unreachable_pub, missing docs).
pub mod abi;
mod demo;

use abi::{debugfs::Dir, extract::COUNTERS};
use kernel::{c_str, prelude::*};

module! {
    type: IovExtract,
    name: "iov_extract",
    author: "The iov-extract developers",
    description: "Page extraction from iov_iters (pin, ref or just list) in Rust",
    license: "GPL",
}

struct IovExtract {
    _debugfs: Dir,
}

impl kernel::Module for IovExtract {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("loaded\n");
        let debugfs = counters_dir();
        demo::run()?;
        Ok(IovExtract { _debugfs: debugfs })
    }
}

/// `/sys/kernel/debug/iov_extract/`: the page counters of the module.
fn counters_dir() -> Dir {
    let c = &COUNTERS;
    let dir = Dir::new(c_str!("iov_extract"));
    dir.counter(c_str!("pinned"), &c.pinned);
    dir.counter(c_str!("unpinned"), &c.unpinned);
    dir.counter(c_str!("pinned_longterm"), &c.pinned_longterm);
    dir.counter(c_str!("referenced"), &c.referenced);
    dir.counter(c_str!("unreferenced"), &c.unreferenced);
    dir.counter(c_str!("listed"), &c.listed);
    dir.counter(c_str!("unlisted"), &c.unlisted);
    dir.counter(c_str!("dirtied"), &c.dirtied);
    dir
}

impl Drop for IovExtract {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
