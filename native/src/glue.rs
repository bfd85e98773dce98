//! Node-API callbacks: argument checks, then the pure modules.

use crate::ffi::*;
use crate::{cdc, extents};
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

/// The arguments of a call, exactly N of them (fewer: None).
unsafe fn args<const N: usize>(env: napi_env, info: napi_callback_info) -> Option<[napi_value; N]> {
    let mut argc: usize = N;
    let mut argv: [napi_value; N] = [ptr::null_mut(); N];
    let ok = napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()) == NAPI_OK && argc >= N;
    if ok { Some(argv) } else { None }
}

/// A typed array's bytes, if `value` is of kind `want` (napi_typedarray_type: 1 uint8, 6 uint32, 8 float64).
unsafe fn typed<'a>(env: napi_env, value: napi_value, want: std::os::raw::c_int) -> Option<&'a mut [u8]> {
    let (mut kind, mut length, mut data, mut buffer, mut offset) = (0, 0usize, ptr::null_mut(), ptr::null_mut(), 0usize);
    if napi_get_typedarray_info(env, value, &mut kind, &mut length, &mut data, &mut buffer, &mut offset) != NAPI_OK || kind != want {
        return None;
    }
    let bytes = match want { 6 => length * 4, 8 => length * 8, _ => length };
    if bytes == 0 { return Some(&mut []); }
    Some(std::slice::from_raw_parts_mut(data as *mut u8, bytes))
}

/// A u32 argument (a number from 0 to 2^32 - 1, integral).
unsafe fn uint(env: napi_env, value: napi_value) -> Option<u32> {
    let mut v: f64 = -1.0;
    if napi_get_value_double(env, value, &mut v) != NAPI_OK || !(v >= 0.0 && v <= 4294967295.0) || v.fract() != 0.0 { return None; }
    Some(v as u32)
}

/// Writes `cuts` into the Uint32Array `out` (checked for room); returns their count as a JS number.
unsafe fn put_cuts(env: napi_env, out: &mut [u8], cuts: &[u32], extra: Option<u32>) -> napi_value {
    let need = cuts.len() + extra.is_some() as usize;
    if out.len() < need * 4 {
        return throw(env, "EINVAL", "the output Uint32Array has no room for every cut");
    }
    for (k, c) in cuts.iter().chain(extra.iter()).enumerate() {
        out[4 * k..4 * k + 4].copy_from_slice(&c.to_ne_bytes());
    }
    let mut result: napi_value = ptr::null_mut();
    napi_create_double(env, cuts.len() as f64, &mut result);
    result
}

/// alignedCdcCuts(data, state: Float64Array [blocks, openZero 0|1, position], minBlocks, avgBlocks, maxBlocks,
/// maskStrict, maskLoose, out): the cuts in `data`'s whole blocks, state carried in place; out[0..n)
/// their lengths. Returns n.
unsafe extern "C" fn aligned_cdc_cuts_js(env: napi_env, info: napi_callback_info) -> napi_value {
    let usage = "alignedCdcCuts(data: Uint8Array, state: Float64Array(3), minBlocks, avgBlocks, maxBlocks, maskStrict, maskLoose: u32, out: Uint32Array)";
    let Some(a) = args::<8>(env, info) else { return throw(env, "EINVAL", usage) };
    let (Some(data), Some(state), Some(out)) = (typed(env, a[0], 1), typed(env, a[1], 8), typed(env, a[7], 6)) else { return throw(env, "EINVAL", usage) };
    let n: Vec<Option<u32>> = (2..7).map(|k| uint(env, a[k])).collect();
    let [Some(min_blocks), Some(avg_blocks), Some(max_blocks), Some(mask_strict), Some(mask_loose)] = n[..] else { return throw(env, "EINVAL", usage) };
    if state.len() < 24 || !(1 <= min_blocks && min_blocks < avg_blocks && avg_blocks < max_blocks) { return throw(env, "EINVAL", usage) }
    let word = |k: usize| f64::from_ne_bytes(state[8 * k..8 * k + 8].try_into().unwrap());
    let (blocks, open_zero, position) = (word(0), word(1), word(2));
    if !(blocks >= 0.0 && blocks < max_blocks as f64 && blocks.fract() == 0.0 && position >= 0.0 && position <= 9.0e15 && position % 4096.0 == 0.0) {
        return throw(env, "EINVAL", usage);
    }
    let mut st = cdc::AlignedState { blocks: blocks as u32, open_zero: open_zero != 0.0, position: position as u64 };
    let p = cdc::Aligned { min_blocks, avg_blocks, max_blocks, mask_strict, mask_loose };
    let mut cuts = Vec::with_capacity(data.len() / cdc::ALIGN + 1);
    cdc::aligned_cuts(data, &mut st, &p, &mut cuts);
    for (k, v) in [st.blocks as f64, st.open_zero as u8 as f64, st.position as f64].iter().enumerate() {
        state[8 * k..8 * k + 8].copy_from_slice(&v.to_ne_bytes());
    }
    put_cuts(env, out, &cuts, None)
}

/// fastCdcCuts(data, state: Uint32Array [hash, length], min, avg, max, maskStrict, maskLoose, out): the
/// cuts in `data`, state carried in place; out[0..n) their lengths. Returns n.
unsafe extern "C" fn fast_cdc_cuts_js(env: napi_env, info: napi_callback_info) -> napi_value {
    let usage = "fastCdcCuts(data: Uint8Array, state: Uint32Array(2), min, avg, max, maskStrict, maskLoose: u32, out: Uint32Array)";
    let Some(a) = args::<8>(env, info) else { return throw(env, "EINVAL", usage) };
    let (Some(data), Some(state), Some(out)) = (typed(env, a[0], 1), typed(env, a[1], 6), typed(env, a[7], 6)) else { return throw(env, "EINVAL", usage) };
    let n: Vec<Option<u32>> = (2..7).map(|k| uint(env, a[k])).collect();
    let [Some(min), Some(avg), Some(max), Some(mask_strict), Some(mask_loose)] = n[..] else { return throw(env, "EINVAL", usage) };
    if state.len() < 8 || !(1 <= min && min < avg && avg < max) { return throw(env, "EINVAL", usage) }
    let mut hash = u32::from_ne_bytes([state[0], state[1], state[2], state[3]]);
    let mut length = u32::from_ne_bytes([state[4], state[5], state[6], state[7]]);
    if length >= max { return throw(env, "EINVAL", usage) }
    let p = cdc::Fast { min, avg, max, mask_strict, mask_loose };
    let mut cuts = Vec::with_capacity(data.len() / min as usize + 2);
    cdc::fastcdc_cuts(data, &mut hash, &mut length, &p, &GEAR, &mut cuts);
    state[0..4].copy_from_slice(&hash.to_ne_bytes());
    state[4..8].copy_from_slice(&length.to_ne_bytes());
    put_cuts(env, out, &cuts, None)
}

static GEAR: std::sync::LazyLock<[u32; 256]> = std::sync::LazyLock::new(cdc::gear_table);

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
    export(env, exports, "alignedCdcCuts", Some(aligned_cdc_cuts_js));
    export(env, exports, "fastCdcCuts", Some(fast_cdc_cuts_js));
    exports
}
