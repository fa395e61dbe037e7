//! sanbox native hot path: CRC32C, HMAC-SHA256, region bitmaps, the writelog ring and file operations, as a
//! dependency-free Node-API addon. JavaScript-facing semantics are documented in src/native/*.ts
//! (the TypeScript twin), which this addon must match bit for bit.
//!
//! Calling convention: plain functions on the exports object; objects are passed as externals
//! (tagged, so a wrong handle throws instead of corrupting memory); bulk arguments and results
//! are typed arrays so one call does a batch of work.

pub mod bitmap;
pub mod crc32c;
pub mod fileops;
pub mod hmac;
mod napi;
pub mod ring;
pub mod sha256;

use napi::*;
use std::ffi::CString;
use std::os::raw::c_void;
use std::ptr::null_mut;

enum Err {
    Msg(String),
    Code(String, String),
}
impl From<String> for Err {
    fn from(s: String) -> Self {
        Err::Msg(s)
    }
}
impl From<&str> for Err {
    fn from(s: &str) -> Self {
        Err::Msg(s.to_string())
    }
}
type R<T> = Result<T, Err>;

struct Cx {
    env: napi_env,
    args: [napi_value; 8],
    argc: usize,
}

const TAG_BITMAP: u32 = 0xB17A_0001;
const TAG_RING: u32 = 0x7106_0002;
const TAG_HMAC: u32 = 0x4AC0_0003;
struct Handle<T> {
    tag: u32,
    v: T,
}

unsafe extern "C" fn finalize<T>(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
    drop(Box::from_raw(data as *mut Handle<T>));
}

impl Cx {
    fn st(&self, s: napi_status, what: &str) -> R<()> {
        if s == NAPI_OK { Ok(()) } else { Err(Err::Msg(format!("napi call failed: {} ({})", what, s))) }
    }
    fn arg(&self, i: usize) -> R<napi_value> {
        if i >= self.argc {
            return Err(format!("missing argument {}", i).into());
        }
        Ok(self.args[i])
    }
    fn f64(&self, i: usize) -> R<f64> {
        let mut v = 0f64;
        let s = unsafe { napi_get_value_double(self.env, self.arg(i)?, &mut v) };
        if s != NAPI_OK {
            return Err(format!("argument {} must be a number", i).into());
        }
        Ok(v)
    }
    /// Non-negative safe integer.
    fn u64(&self, i: usize) -> R<u64> {
        let v = self.f64(i)?;
        if !(v >= 0.0) || v > 9007199254740991.0 || (v as i64) as f64 != v {
            return Err(format!("argument {} must be a non-negative integer, got {}", i, v).into());
        }
        Ok(v as u64)
    }
    fn i64(&self, i: usize) -> R<i64> {
        let v = self.f64(i)?;
        if !(v.abs() <= 9007199254740991.0) || (v as i64) as f64 != v {
            return Err(format!("argument {} must be an integer", i).into());
        }
        Ok(v as i64)
    }
    fn bool(&self, i: usize) -> R<bool> {
        let mut b = false;
        self.st(unsafe { napi_get_value_bool(self.env, self.arg(i)?, &mut b) }, "bool")?;
        Ok(b)
    }
    fn typed<'a>(&self, v: napi_value, want: i32, elem: usize) -> R<&'a mut [u8]> {
        let mut is = false;
        unsafe { napi_is_typedarray(self.env, v, &mut is) };
        if !is {
            return Err("expected a typed array".into());
        }
        let (mut ty, mut len, mut data, mut off) = (0i32, 0usize, null_mut(), 0usize);
        let mut ab = null_mut();
        self.st(unsafe { napi_get_typedarray_info(self.env, v, &mut ty, &mut len, &mut data, &mut ab, &mut off) }, "typedarray")?;
        if want == NAPI_UINT8 {
            if ty != NAPI_UINT8 && ty != 2 {
                return Err("expected a Uint8Array or Buffer".into());
            }
        } else if ty != want {
            return Err("expected a Float64Array".into());
        }
        if len == 0 {
            return Ok(&mut []);
        }
        Ok(unsafe { std::slice::from_raw_parts_mut(data as *mut u8, len * elem) })
    }
    fn bytes<'a>(&self, i: usize) -> R<&'a [u8]> {
        Ok(self.typed(self.arg(i)?, NAPI_UINT8, 1)?)
    }
    fn f64s<'a>(&self, i: usize) -> R<&'a [f64]> {
        let b = self.typed(self.arg(i)?, NAPI_FLOAT64, 8)?;
        if b.is_empty() {
            return Ok(&[]);
        }
        Ok(unsafe { std::slice::from_raw_parts(b.as_ptr() as *const f64, b.len() / 8) })
    }
    fn handle<'a, T>(&self, i: usize, tag: u32) -> R<&'a mut T> {
        let mut p: *mut c_void = null_mut();
        let s = unsafe { napi_get_value_external(self.env, self.arg(i)?, &mut p) };
        if s != NAPI_OK || p.is_null() {
            return Err("expected a native handle".into());
        }
        let h = unsafe { &mut *(p as *mut Handle<T>) };
        if h.tag != tag {
            return Err("native handle of the wrong kind".into());
        }
        Ok(&mut h.v)
    }
    fn new_handle<T>(&self, tag: u32, v: T) -> R<napi_value> {
        let b = Box::into_raw(Box::new(Handle { tag, v }));
        let mut r = null_mut();
        self.st(unsafe { napi_create_external(self.env, b as *mut c_void, Some(finalize::<T>), null_mut(), &mut r) }, "external")?;
        Ok(r)
    }
    fn num(&self, v: f64) -> R<napi_value> {
        let mut r = null_mut();
        self.st(unsafe { napi_create_double(self.env, v, &mut r) }, "double")?;
        Ok(r)
    }
    fn boolean(&self, v: bool) -> R<napi_value> {
        let mut r = null_mut();
        self.st(unsafe { napi_get_boolean(self.env, v, &mut r) }, "bool")?;
        Ok(r)
    }
    fn undef(&self) -> R<napi_value> {
        let mut r = null_mut();
        self.st(unsafe { napi_get_undefined(self.env, &mut r) }, "undefined")?;
        Ok(r)
    }
    fn string(&self, s: &str) -> R<napi_value> {
        let mut r = null_mut();
        self.st(unsafe { napi_create_string_utf8(self.env, s.as_ptr() as *const _, s.len(), &mut r) }, "string")?;
        Ok(r)
    }
    fn buffer(&self, b: &[u8]) -> R<napi_value> {
        let mut r = null_mut();
        let mut d: *mut c_void = null_mut();
        self.st(unsafe { napi_create_buffer(self.env, b.len(), &mut d, &mut r) }, "buffer")?;
        if !b.is_empty() {
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), d as *mut u8, b.len()) };
        }
        Ok(r)
    }
    fn f64_array(&self, v: &[f64]) -> R<napi_value> {
        let mut ab = null_mut();
        let mut d: *mut c_void = null_mut();
        self.st(unsafe { napi_create_arraybuffer(self.env, v.len() * 8, &mut d, &mut ab) }, "arraybuffer")?;
        if !v.is_empty() {
            unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), d as *mut f64, v.len()) };
        }
        let mut r = null_mut();
        self.st(unsafe { napi_create_typedarray(self.env, NAPI_FLOAT64, v.len(), ab, 0, &mut r) }, "typedarray")?;
        Ok(r)
    }
}

unsafe fn call(env: napi_env, info: napi_callback_info, f: fn(&Cx) -> R<napi_value>) -> napi_value {
    let mut cx = Cx { env, args: [null_mut(); 8], argc: 8 };
    let s = napi_get_cb_info(env, info, &mut cx.argc, cx.args.as_mut_ptr(), null_mut(), null_mut());
    let res = if s != NAPI_OK {
        Err(Err::Msg("napi_get_cb_info failed".into()))
    } else {
        cx.argc = cx.argc.min(8);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&cx))) {
            Ok(r) => r,
            Err(p) => {
                let m = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "panic".into());
                Err(Err::Code("ESANBOX_INVARIANT".into(), format!("native invariant violated: {}", m)))
            }
        }
    };
    match res {
        Ok(v) => v,
        Err(e) => {
            let (code, msg) = match e {
                Err::Msg(m) => ("ESANBOX_NATIVE".to_string(), m),
                Err::Code(c, m) => (c, m),
            };
            let c = CString::new(code).unwrap_or_default();
            let m = CString::new(msg.replace('\0', " ")).unwrap_or_default();
            napi_throw_error(env, c.as_ptr(), m.as_ptr());
            null_mut()
        }
    }
}

macro_rules! export {
    ($($name:ident => $body:expr;)*) => {
        $(
            #[allow(non_snake_case)]
            unsafe extern "C" fn $name(env: napi_env, info: napi_callback_info) -> napi_value {
                call(env, info, $body)
            }
        )*
        const EXPORTS: &[(&str, napi_callback)] = &[$((stringify!($name), $name as napi_callback)),*];
    };
}

fn fo_err(e: (String, String)) -> Err {
    Err::Code(e.0.clone(), format!("{}: {}", e.0, e.1))
}

/// Arguments `from..argc` as byte slices (the pieces of one MAC'd message, at most 8 - from).
fn pieces<'a>(cx: &Cx, from: usize) -> R<([&'a [u8]; 8], usize)> {
    let mut out: [&[u8]; 8] = [&[]; 8];
    let n = cx.argc.saturating_sub(from);
    for (i, slot) in out.iter_mut().enumerate().take(n) {
        *slot = cx.bytes(from + i)?;
    }
    Ok((out, n))
}

/// hmacMac(h, out, offset, ...pieces): the MAC of the pieces into out[offset..offset + tagBytes].
fn hmac_mac(cx: &Cx) -> R<napi_value> {
    let h = cx.handle::<hmac::Hmac>(0, TAG_HMAC)?;
    let off = cx.u64(2)? as usize;
    let (p, n) = pieces(cx, 3)?;
    // the MAC is computed before `out` is borrowed mutably: out may share memory with a piece
    let tag = h.full(&p[..n]);
    let out = cx.typed(cx.arg(1)?, NAPI_UINT8, 1)?;
    let t = h.tag_bytes();
    if off > out.len() || out.len() - off < t {
        return Err(Err::Code("ERR_OUT_OF_RANGE".into(), format!("hmacMac: {} bytes at offset {} do not fit in {}", t, off, out.len())));
    }
    out[off..off + t].copy_from_slice(&tag[..t]);
    cx.undef()
}

fn ranges(b: &mut bitmap::Bitmap, r: &[f64], mark: bool) -> R<()> {
    if r.len() % 2 != 0 {
        return Err("ranges array must hold offset/length pairs".into());
    }
    // Validate every range first: a bad batch changes nothing.
    let lun = b.lun_size as f64;
    for p in r.chunks_exact(2) {
        let (o, l) = (p[0], p[1]);
        // (f64 -> u64 casts saturate; comparing back rejects fractions, NaN and negatives)
        if !(o >= 0.0 && l >= 0.0) || (o as i64) as f64 != o || (l as i64) as f64 != l || o + l > lun {
            return Err(Err::Code("ERR_OUT_OF_RANGE".into(), format!("range {}+{} outside LUN of {} bytes", o, l, b.lun_size)));
        }
    }
    if mark {
        for p in r.chunks_exact(2) {
            b.mark_unchecked(p[0] as i64 as u64, p[1] as i64 as u64);
        }
    } else {
        for p in r.chunks_exact(2) {
            b.clear(p[0] as u64, p[1] as u64)?;
        }
    }
    Ok(())
}

export! {
    version => |cx| cx.string(env!("CARGO_PKG_VERSION"));
    crcImpl => |cx| cx.string(crc32c::implementation());
    crc32c => |cx| {
        let seed = if cx.argc > 1 { cx.u64(1)? } else { 0 };
        if seed > u32::MAX as u64 { return Err("seed must be a 32-bit unsigned integer".into()); }
        cx.num(crc32c::crc32c(seed as u32, cx.bytes(0)?) as f64)
    };
    shaImpl => |cx| cx.string(sha256::implementation());
    hmacNew => |cx| {
        let portable = cx.argc > 2 && cx.bool(2)?;
        cx.new_handle(TAG_HMAC, hmac::Hmac::new(cx.bytes(0)?, cx.u64(1)? as usize, portable)?)
    };
    hmacMac => hmac_mac;
    hmacVerify => |cx| {
        let h = cx.handle::<hmac::Hmac>(0, TAG_HMAC)?;
        let tag = cx.bytes(1)?;
        if tag.len() != h.tag_bytes() { return Err(format!("hmacVerify: tag of {} bytes, expected {}", tag.len(), h.tag_bytes()).into()); }
        let (p, n) = pieces(cx, 2)?;
        cx.boolean(h.verify(tag, &p[..n]))
    };
    punchHole => |cx| {
        fileops::punch_hole(cx.i64(0)? as i32, cx.u64(1)? as i64, cx.u64(2)? as i64).map_err(fo_err)?;
        cx.undef()
    };
    seekData => |cx| cx.num(fileops::seek_data(cx.i64(0)? as i32, cx.u64(1)? as i64).map_err(fo_err)? as f64);
    seekHole => |cx| cx.num(fileops::seek_hole(cx.i64(0)? as i32, cx.u64(1)? as i64).map_err(fo_err)? as f64);

    bmNew => |cx| cx.new_handle(TAG_BITMAP, bitmap::Bitmap::new(cx.u64(0)?, cx.u64(1)?)?);
    bmMark => |cx| { cx.handle::<bitmap::Bitmap>(0, TAG_BITMAP)?.mark(cx.u64(1)?, cx.u64(2)?)?; cx.undef() };
    bmClear => |cx| { cx.handle::<bitmap::Bitmap>(0, TAG_BITMAP)?.clear(cx.u64(1)?, cx.u64(2)?)?; cx.undef() };
    bmMarkMany => |cx| { ranges(cx.handle(0, TAG_BITMAP)?, cx.f64s(1)?, true)?; cx.undef() };
    bmClearMany => |cx| { ranges(cx.handle(0, TAG_BITMAP)?, cx.f64s(1)?, false)?; cx.undef() };
    bmTest => |cx| cx.boolean(cx.handle::<bitmap::Bitmap>(0, TAG_BITMAP)?.test(cx.u64(1)?, cx.u64(2)?)?);
    bmCount => |cx| cx.num(cx.handle::<bitmap::Bitmap>(0, TAG_BITMAP)?.count_regions() as f64);
    bmCountIn => |cx| cx.num(cx.handle::<bitmap::Bitmap>(0, TAG_BITMAP)?.count_regions_in(cx.u64(1)?, cx.u64(2)?)? as f64);
    bmDirtyBytes => |cx| cx.num(cx.handle::<bitmap::Bitmap>(0, TAG_BITMAP)?.dirty_bytes() as f64);
    bmRuns => |cx| {
        let b = cx.handle::<bitmap::Bitmap>(0, TAG_BITMAP)?;
        let max = cx.u64(2)?.min(1 << 24) as usize;
        let mut out = Vec::with_capacity(2 * max.min(4096));
        b.runs(cx.u64(1)?, max, &mut out);
        cx.f64_array(&out)
    };
    bmUnion => |cx| {
        let o = cx.handle::<bitmap::Bitmap>(1, TAG_BITMAP)?.clone();
        cx.handle::<bitmap::Bitmap>(0, TAG_BITMAP)?.union_with(&o)?; cx.undef()
    };
    bmCopy => |cx| {
        let o = cx.handle::<bitmap::Bitmap>(1, TAG_BITMAP)?.clone();
        cx.handle::<bitmap::Bitmap>(0, TAG_BITMAP)?.copy_from(&o)?; cx.undef()
    };
    bmClearAll => |cx| { cx.handle::<bitmap::Bitmap>(0, TAG_BITMAP)?.clear_all(); cx.undef() };
    bmSerialize => |cx| cx.buffer(&cx.handle::<bitmap::Bitmap>(0, TAG_BITMAP)?.serialize(cx.u64(1)?));
    bmLoad => |cx| {
        let (b, _gen) = bitmap::Bitmap::load(cx.bytes(0)?).map_err(|m| Err::Code("ESANBOX_CORRUPT".into(), m))?;
        cx.new_handle(TAG_BITMAP, b)
    };

    rgNew => |cx| {
        let fd = cx.i64(0)?;
        let cap = cx.u64(2)?;
        let store = if fd < 0 {
            if cap > (1u64 << 40) { return Err("memory writelog too large".into()); }
            ring::Store::Mem(vec![0u8; cap as usize])
        } else {
            ring::file_store(fd as i32, cx.u64(1)?)
        };
        cx.new_handle(TAG_RING, ring::Ring::new(store, cap, cx.u64(3)? as u32)?)
    };
    rgReset => |cx| { cx.handle::<ring::Ring>(0, TAG_RING)?.reset(cx.u64(1)?, cx.u64(2)?); cx.undef() };
    rgAppend => |cx| {
        let r = cx.handle::<ring::Ring>(0, TAG_RING)?;
        let first = cx.u64(1)?;
        let meta = cx.f64s(2)?;
        let arr = cx.arg(3)?;
        let mut n = 0u32;
        cx.st(unsafe { napi_get_array_length(cx.env, arr, &mut n) }, "array length")?;
        if meta.len() != 4 * n as usize {
            return Err("append: meta must hold 4 numbers per record".into());
        }
        let mut recs = Vec::with_capacity(n as usize);
        for i in 0..n as usize {
            let mut v = null_mut();
            cx.st(unsafe { napi_get_element(cx.env, arr, i as u32, &mut v) }, "element")?;
            let data = cx.typed(v, NAPI_UINT8, 1)?;
            let m = &meta[4 * i..4 * i + 4];
            for x in m {
                if !(*x >= 0.0) || (*x as i64) as f64 != *x || *x > 9007199254740991.0 {
                    return Err(format!("append: bad record field {}", x).into());
                }
            }
            if m[0] > u32::MAX as f64 || m[2] > 0x7fff as f64 || data.len() > u32::MAX as usize {
                return Err("append: lun id, flags or length out of range".into());
            }
            recs.push(ring::NewRec { lun: m[0] as u32, off: m[1] as u64, flags: m[2] as u16, ts: m[3] as u64, data });
        }
        cx.num(r.append(first, &recs)? as f64)
    };
    rgRead => |cx| {
        let r = cx.handle::<ring::Ring>(0, TAG_RING)?;
        let (i0, j, total) = r.read_plan(cx.u64(1)?, cx.u64(2)?, cx.u64(3)?);
        let verify = cx.bool(4)?;
        let mut buf = null_mut();
        let mut d: *mut c_void = null_mut();
        cx.st(unsafe { napi_create_buffer(cx.env, total as usize, &mut d, &mut buf) }, "buffer")?;
        if total > 0 {
            let out = unsafe { std::slice::from_raw_parts_mut(d as *mut u8, total as usize) };
            r.read_fill(i0, j, out, verify).map_err(|m| Err::Code("ESANBOX_CORRUPT".into(), m))?;
        }
        Ok(buf)
    };
    rgAck => |cx| cx.num(cx.handle::<ring::Ring>(0, TAG_RING)?.ack(cx.u64(1)?) as f64);
    rgCommitTail => |cx| { cx.handle::<ring::Ring>(0, TAG_RING)?.commit_tail(cx.u64(1)?)?; cx.undef() };
    rgTruncateAfter => |cx| { cx.handle::<ring::Ring>(0, TAG_RING)?.truncate_after(cx.u64(1)?); cx.undef() };
    rgRecover => |cx| cx.num(cx.handle::<ring::Ring>(0, TAG_RING)?.recover(cx.u64(1)?, cx.u64(2)?)? as f64);
    rgStats => |cx| cx.f64_array(&cx.handle::<ring::Ring>(0, TAG_RING)?.stats());
    rgNeed => |cx| cx.num(cx.handle::<ring::Ring>(0, TAG_RING)?.need(cx.u64(1)?) as f64);
}

#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    for (name, cb) in EXPORTS {
        let cname = CString::new(*name).unwrap();
        let mut f = null_mut();
        if napi_create_function(env, cname.as_ptr(), name.len(), *cb, null_mut(), &mut f) == NAPI_OK {
            napi_set_named_property(env, exports, cname.as_ptr(), f);
        }
    }
    exports
}
