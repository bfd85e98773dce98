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

mod extents;
mod ffi;

use ffi::*;
use std::ffi::CString;
use std::ptr;

unsafe fn throw(env: napi_env, code: &str, message: &str) -> napi_value {
    let code = CString::new(code).unwrap_or_default();
    let message = CString::new(message).unwrap_or_default();
    napi_throw_error(env, code.as_ptr(), message.as_ptr());
    ptr::null_mut()
}

unsafe extern "C" fn data_extents_js(env: napi_env, info: napi_callback_info) -> napi_value {
    let mut argc: usize = 2;
    let mut argv: [napi_value; 2] = [ptr::null_mut(); 2];
    if napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()) != NAPI_OK
        || argc < 2
    {
        return throw(env, "EINVAL", "dataExtents(fd, sizeBytes) takes two numbers");
    }
    let mut fd: i32 = -1;
    let mut size: f64 = 0.0;
    if napi_get_value_int32(env, argv[0], &mut fd) != NAPI_OK
        || napi_get_value_double(env, argv[1], &mut size) != NAPI_OK
        || fd < 0
        || !(size >= 0.0)
        || size > 9.0e15
    {
        return throw(env, "EINVAL", "dataExtents: fd must be >= 0 and sizeBytes a safe integer");
    }
    let extents = match extents::data_extents(fd, size as i64) {
        Ok(e) => e,
        Err(err) => {
            let code = match err.raw_os_error() {
                Some(22) | Some(95) => "ENOTSUP", // EINVAL / EOPNOTSUPP: no hole support here
                _ => "EIO",
            };
            return throw(env, code, &format!("lseek(SEEK_DATA/SEEK_HOLE) failed: {err}"));
        }
    };
    let mut array: napi_value = ptr::null_mut();
    if napi_create_array_with_length(env, extents.len() * 2, &mut array) != NAPI_OK {
        return throw(env, "ENOMEM", "cannot create result array");
    }
    for (i, (start, end)) in extents.iter().enumerate() {
        for (j, v) in [*start, *end].iter().enumerate() {
            let mut value: napi_value = ptr::null_mut();
            napi_create_double(env, *v as f64, &mut value);
            napi_set_element(env, array, (i * 2 + j) as u32, value);
        }
    }
    array
}

/// posix_fadvise over (fd, offset, length) from JS; `name` and `what` word the errors.
unsafe fn advise(env: napi_env, info: napi_callback_info, advice: std::os::raw::c_int, name: &str, what: &str) -> napi_value {
    let Some((fd, offset, length)) = fd_range_args(env, info) else {
        return throw(env, "EINVAL", &format!("{name}(fd, offset, length) takes an fd >= 0 and two safe integers >= 0"));
    };
    let err = posix_fadvise(fd, offset, length, advice);
    if err != 0 {
        return throw(env, "EIO", &format!("posix_fadvise({what}) failed: errno {err}"));
    }
    ptr::null_mut()
}

unsafe extern "C" fn drop_cache_js(env: napi_env, info: napi_callback_info) -> napi_value {
    advise(env, info, POSIX_FADV_DONTNEED, "dropCache", "DONTNEED")
}

unsafe extern "C" fn will_need_js(env: napi_env, info: napi_callback_info) -> napi_value {
    advise(env, info, POSIX_FADV_WILLNEED, "willNeed", "WILLNEED")
}

unsafe extern "C" fn misalignment_js(env: napi_env, info: napi_callback_info) -> napi_value {
    let mut argc: usize = 2;
    let mut argv: [napi_value; 2] = [ptr::null_mut(); 2];
    let mut alignment: f64 = 0.0;
    let mut kind: std::os::raw::c_int = 0;
    let mut length: usize = 0;
    let mut data: *mut std::os::raw::c_void = ptr::null_mut();
    let mut buffer: napi_value = ptr::null_mut();
    let mut byte_offset: usize = 0;
    if napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()) != NAPI_OK
        || argc < 2
        || napi_get_typedarray_info(env, argv[0], &mut kind, &mut length, &mut data, &mut buffer, &mut byte_offset) != NAPI_OK
        || napi_get_value_double(env, argv[1], &mut alignment) != NAPI_OK
        || !(alignment >= 1.0 && alignment <= 1048576.0)
    {
        return throw(env, "EINVAL", "misalignment(view, alignment) takes a typed array and an alignment from 1 to 1048576");
    }
    let mut result: napi_value = ptr::null_mut();
    napi_create_double(env, ((data as usize) % (alignment as usize)) as f64, &mut result);
    result
}

/// Reads (fd, offset, length) with offset and length safe non-negative integers.
unsafe fn fd_range_args(env: napi_env, info: napi_callback_info) -> Option<(i32, i64, i64)> {
    let mut argc: usize = 3;
    let mut argv: [napi_value; 3] = [ptr::null_mut(); 3];
    let mut fd: i32 = -1;
    let mut offset: f64 = -1.0;
    let mut length: f64 = -1.0;
    let ok = napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()) == NAPI_OK
        && argc >= 3
        && napi_get_value_int32(env, argv[0], &mut fd) == NAPI_OK
        && napi_get_value_double(env, argv[1], &mut offset) == NAPI_OK
        && napi_get_value_double(env, argv[2], &mut length) == NAPI_OK
        && fd >= 0
        && offset >= 0.0 && offset <= 9.0e15 && length >= 0.0 && length <= 9.0e15;
    if ok { Some((fd, offset as i64, length as i64)) } else { None }
}

unsafe extern "C" fn start_writeback_js(env: napi_env, info: napi_callback_info) -> napi_value {
    let Some((fd, offset, length)) = fd_range_args(env, info) else {
        return throw(env, "EINVAL", "startWriteback(fd, offset, length) takes an fd >= 0 and two safe integers >= 0");
    };
    if sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE) != 0 {
        let err = std::io::Error::last_os_error();
        return throw(env, "EIO", &format!("sync_file_range(WRITE) failed: {err}"));
    }
    ptr::null_mut()
}

unsafe fn export(env: napi_env, exports: napi_value, name: &str, callback: napi_callback) {
    let name = CString::new(name).unwrap();
    let mut function: napi_value = ptr::null_mut();
    if napi_create_function(env, name.as_ptr(), usize::MAX, callback, ptr::null_mut(), &mut function) == NAPI_OK {
        napi_set_named_property(env, exports, name.as_ptr(), function);
    }
}

/// Entry point Node looks up when it loads a Node-API addon.
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    export(env, exports, "dataExtents", Some(data_extents_js));
    export(env, exports, "dropCache", Some(drop_cache_js));
    export(env, exports, "startWriteback", Some(start_writeback_js));
    export(env, exports, "willNeed", Some(will_need_js));
    export(env, exports, "misalignment", Some(misalignment_js));
    exports
}
