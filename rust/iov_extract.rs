// SPDX-License-Identifier: GPL-2.0

//! iov-extract: page extraction from `iov_iter`s (pin, ref or just list) in safe Rust.
//!
//! At load the module shows the abstractions at work on kernel memory and logs what it did.

#[allow(dead_code, reason = "the layer is shared with iov_extract_kunit.ko, which uses more of it")]
mod abi;
mod demo;

use kernel::prelude::*;

module! {
    type: IovExtract,
    name: "iov_extract",
    author: "The iov-extract developers",
    description: "Page extraction from iov_iters (pin, ref or just list) in Rust",
    license: "GPL",
}

struct IovExtract;

impl kernel::Module for IovExtract {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("loaded\n");
        demo::run()?;
        Ok(IovExtract)
    }
}

impl Drop for IovExtract {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
