// SPDX-License-Identifier: GPL-2.0

//! iov-extract KUnit suites. They run when this module is loaded and report in KTAP.

// Public so that its API is checked as an API (unreachable_pub, missing docs).
pub mod abstractions;
mod tests;

use kernel::prelude::*;

module! {
    type: IovExtractKunit,
    name: "iov_extract_kunit",
    author: "The iov-extract developers",
    description: "KUnit suites for iov-extract",
    license: "GPL",
}

struct IovExtractKunit;

impl kernel::Module for IovExtractKunit {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(IovExtractKunit)
    }
}

impl Drop for IovExtractKunit {
    fn drop(&mut self) {
        // The suites ran at load; a bio of theirs may have handed its pages to this module's own
        // re-dirtying worker, which must not run after the module's code is gone.
        // Passthrough completions first: their release may hand pages to that worker.
        abstractions::passthrough::drain_async();
        abstractions::bio::flush_redirty();
    }
}
