//! blockvault's native helpers, loaded by engine/source/native.ts.
//! Exports: dataExtents(fd: number, sizeBytes: number): number[]
//!   flat [start0, end0, start1, end1, ...] of the data regions of a file.
//! dropCache(fd: number, offset: number, length: number): undefined
//!   drops a range of a file from the page cache (clean pages only).
//! willNeed(fd: number, offset: number, length: number): undefined
//!   asks the kernel to read a range into the page cache in the background.
//! misalignment(view: Uint8Array, alignment: number): number
//!   the view's memory address modulo alignment (O_DIRECT needs 0 at 4096).
//! startWriteback(fd: number, offset: number, length: number): undefined
//!   starts writing a range's dirty pages to disk and returns at once
//!   (sync_file_range WRITE): a restore's final fsync then finds little left.
//! alignedCdcCuts / fastCdcCuts: the chunkers' hot loops (src/cdc.rs).
//!
//! The Node-API glue (src/glue.rs) is left out of `cargo test`: the test
//! binary has no node to resolve napi_* from. The pure modules are tested.

#![cfg_attr(test, allow(dead_code))]

mod cdc;
mod extents;
mod ffi;
#[cfg(not(test))]
mod glue;
