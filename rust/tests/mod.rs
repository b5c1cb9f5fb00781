// SPDX-License-Identifier: GPL-2.0

//! The KUnit suites of iov-extract, one file per subject.

#![deny(unsafe_code)]

mod bio;
mod direct_io;
mod extract;
mod folios;
mod harness;
mod legacy;
mod miscdev;
mod passthrough;
