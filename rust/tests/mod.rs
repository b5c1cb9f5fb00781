// SPDX-License-Identifier: GPL-2.0

//! The KUnit suites of iov-extract, one file per subject.

mod bio;
mod extract;
mod harness;
mod miscdev;
