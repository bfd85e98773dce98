//! Data/hole map of a sparse file through lseek(SEEK_DATA/SEEK_HOLE).
//! Node's fs has no way to ask for holes, so a backup of a mostly-empty raw
//! image would otherwise read every zero byte from the kernel.

use crate::ffi::{lseek, SEEK_DATA, SEEK_HOLE};
use std::io;

/// Upper bound on extents returned, so a pathological file (millions of
/// 4 KiB fragments) cannot make us build an unbounded JS array.
pub const EXTENTS_COUNT_MAX: usize = 1 << 22;

const ENXIO: i32 = 6;

/// Returns [start, end) ranges of data below `size_bytes`, in file order.
pub fn data_extents(fd: i32, size_bytes: i64) -> io::Result<Vec<(i64, i64)>> {
    let mut extents = Vec::new();
    let mut offset: i64 = 0;
    while offset < size_bytes {
        // SAFETY: lseek only reads its integer arguments.
        let data = unsafe { lseek(fd, offset, SEEK_DATA) };
        if data < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(ENXIO) {
                break; // no data at or after offset: the rest is a hole
            }
            return Err(err);
        }
        if data >= size_bytes {
            break;
        }
        let hole = unsafe { lseek(fd, data, SEEK_HOLE) };
        if hole < 0 {
            return Err(io::Error::last_os_error());
        }
        let end = hole.min(size_bytes);
        if end <= data {
            return Err(io::Error::new(io::ErrorKind::Other, "lseek returned a hole before its data"));
        }
        if extents.len() >= EXTENTS_COUNT_MAX {
            return Err(io::Error::new(io::ErrorKind::Other, "too many extents"));
        }
        extents.push((data, end));
        offset = end;
    }
    Ok(extents)
}
