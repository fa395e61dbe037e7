//! File operations Node's fs lacks: punch a hole, find data/holes. Linux x86_64 constants.
use std::os::raw::c_int;

extern "C" {
    fn fallocate(fd: c_int, mode: c_int, offset: i64, len: i64) -> c_int;
    fn lseek(fd: c_int, offset: i64, whence: c_int) -> i64;
}

const FALLOC_FL_KEEP_SIZE: c_int = 1;
const FALLOC_FL_PUNCH_HOLE: c_int = 2;
const SEEK_DATA: c_int = 3;
const SEEK_HOLE: c_int = 4;
const ENXIO: i32 = 6;

/// errno of the last failed call as (name, message).
fn last_err() -> (String, String) {
    let e = std::io::Error::last_os_error();
    let code = e.raw_os_error().unwrap_or(0);
    let name = match code {
        1 => "EPERM", 5 => "EIO", 9 => "EBADF", 22 => "EINVAL", 27 => "EFBIG", 28 => "ENOSPC",
        29 => "ESPIPE", 6 => "ENXIO", 19 => "ENODEV", 95 => "EOPNOTSUPP", 38 => "ENOSYS", 4 => "EINTR",
        30 => "EROFS", 13 => "EACCES", 21 => "EISDIR",
        _ => "EUNKNOWN",
    };
    (name.to_string(), e.to_string())
}

pub fn punch_hole(fd: i32, off: i64, len: i64) -> Result<(), (String, String)> {
    if len == 0 {
        return Ok(());
    }
    loop {
        let r = unsafe { fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) };
        if r == 0 {
            return Ok(());
        }
        let e = last_err();
        if e.0 != "EINTR" {
            return Err(e);
        }
    }
}

fn seek(fd: i32, off: i64, whence: c_int) -> Result<i64, (String, String)> {
    let r = unsafe { lseek(fd, off, whence) };
    if r >= 0 {
        return Ok(r);
    }
    if std::io::Error::last_os_error().raw_os_error() == Some(ENXIO) {
        return Ok(-1);
    }
    Err(last_err())
}

pub fn seek_data(fd: i32, off: i64) -> Result<i64, (String, String)> {
    seek(fd, off, SEEK_DATA)
}
pub fn seek_hole(fd: i32, off: i64) -> Result<i64, (String, String)> {
    seek(fd, off, SEEK_HOLE)
}
