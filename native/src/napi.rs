//! Minimal Node-API bindings: only what sanbox uses, declared by hand (no crates available).
#![allow(non_camel_case_types, dead_code)]
use std::os::raw::{c_char, c_void};

pub type napi_env = *mut c_void;
pub type napi_value = *mut c_void;
pub type napi_callback_info = *mut c_void;
pub type napi_status = i32;
pub type napi_callback = unsafe extern "C" fn(napi_env, napi_callback_info) -> napi_value;
pub type napi_finalize = unsafe extern "C" fn(napi_env, *mut c_void, *mut c_void);

pub const NAPI_OK: napi_status = 0;
pub const NAPI_UINT8: i32 = 1;
pub const NAPI_FLOAT64: i32 = 8;

extern "C" {
    pub fn napi_create_function(env: napi_env, name: *const c_char, len: usize, cb: napi_callback, data: *mut c_void, result: *mut napi_value) -> napi_status;
    pub fn napi_set_named_property(env: napi_env, obj: napi_value, name: *const c_char, value: napi_value) -> napi_status;
    pub fn napi_get_cb_info(env: napi_env, info: napi_callback_info, argc: *mut usize, argv: *mut napi_value, this: *mut napi_value, data: *mut *mut c_void) -> napi_status;
    pub fn napi_get_value_double(env: napi_env, v: napi_value, r: *mut f64) -> napi_status;
    pub fn napi_get_value_bool(env: napi_env, v: napi_value, r: *mut bool) -> napi_status;
    pub fn napi_create_double(env: napi_env, v: f64, r: *mut napi_value) -> napi_status;
    pub fn napi_get_boolean(env: napi_env, v: bool, r: *mut napi_value) -> napi_status;
    pub fn napi_get_undefined(env: napi_env, r: *mut napi_value) -> napi_status;
    pub fn napi_get_null(env: napi_env, r: *mut napi_value) -> napi_status;
    pub fn napi_create_string_utf8(env: napi_env, s: *const c_char, len: usize, r: *mut napi_value) -> napi_status;
    pub fn napi_create_object(env: napi_env, r: *mut napi_value) -> napi_status;
    pub fn napi_throw_error(env: napi_env, code: *const c_char, msg: *const c_char) -> napi_status;
    pub fn napi_get_typedarray_info(env: napi_env, v: napi_value, ty: *mut i32, len: *mut usize, data: *mut *mut c_void, ab: *mut napi_value, off: *mut usize) -> napi_status;
    pub fn napi_is_typedarray(env: napi_env, v: napi_value, r: *mut bool) -> napi_status;
    pub fn napi_create_buffer(env: napi_env, size: usize, data: *mut *mut c_void, r: *mut napi_value) -> napi_status;
    pub fn napi_create_arraybuffer(env: napi_env, size: usize, data: *mut *mut c_void, r: *mut napi_value) -> napi_status;
    pub fn napi_create_typedarray(env: napi_env, ty: i32, len: usize, ab: napi_value, off: usize, r: *mut napi_value) -> napi_status;
    pub fn napi_create_external(env: napi_env, data: *mut c_void, fin: Option<napi_finalize>, hint: *mut c_void, r: *mut napi_value) -> napi_status;
    pub fn napi_get_value_external(env: napi_env, v: napi_value, r: *mut *mut c_void) -> napi_status;
    pub fn napi_get_array_length(env: napi_env, v: napi_value, r: *mut u32) -> napi_status;
    pub fn napi_get_element(env: napi_env, v: napi_value, i: u32, r: *mut napi_value) -> napi_status;
    pub fn napi_adjust_external_memory(env: napi_env, change: i64, r: *mut i64) -> napi_status;
}
