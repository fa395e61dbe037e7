//! CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4 and btrfs.
//! Hardware path: SSE4.2 `crc32` instruction (8 bytes per step), chosen at run time with
//! `is_x86_feature_detected!`. Fallback: slicing-by-8 tables. Both give identical results;
//! `crc32c(data, seed)` continues a previous CRC when `seed` is the earlier result.

const POLY: u32 = 0x82F6_3B78;

static TABLES: [[u32; 256]; 8] = make_tables();

const fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

/// Slicing-by-8 on the raw (pre-inverted) CRC state.
fn table_update(mut crc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ crc;
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = TABLES[7][(lo & 0xff) as usize]
            ^ TABLES[6][((lo >> 8) & 0xff) as usize]
            ^ TABLES[5][((lo >> 16) & 0xff) as usize]
            ^ TABLES[4][(lo >> 24) as usize]
            ^ TABLES[3][(hi & 0xff) as usize]
            ^ TABLES[2][((hi >> 8) & 0xff) as usize]
            ^ TABLES[1][((hi >> 16) & 0xff) as usize]
            ^ TABLES[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ TABLES[0][((crc ^ b as u32) & 0xff) as usize];
    }
    crc
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn hw_update(crc: u32, data: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let mut c = crc as u64;
    let mut rest = data;
    let mut chunks = rest.chunks_exact(8);
    for ch in &mut chunks {
        let v = u64::from_le_bytes([ch[0], ch[1], ch[2], ch[3], ch[4], ch[5], ch[6], ch[7]]);
        c = _mm_crc32_u64(c, v);
    }
    rest = chunks.remainder();
    let mut c32 = c as u32;
    for &b in rest {
        c32 = _mm_crc32_u8(c32, b);
    }
    c32
}

fn has_hw() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::env::var_os("SANBOX_CRC_TABLE").is_some() {
            return false;
        }
        return is_x86_feature_detected!("sse4.2");
    }
    #[allow(unreachable_code)]
    false
}

static HW: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Which implementation `crc32c` uses on this CPU: "sse4.2" or "table".
pub fn implementation() -> &'static str {
    if *HW.get_or_init(has_hw) { "sse4.2" } else { "table" }
}

/// CRC32C of `data`, continuing from `seed` (0 for a fresh CRC).
pub fn crc32c(seed: u32, data: &[u8]) -> u32 {
    let crc = !seed;
    let r = if *HW.get_or_init(has_hw) {
        #[cfg(target_arch = "x86_64")]
        unsafe {
            hw_update(crc, data)
        }
        #[cfg(not(target_arch = "x86_64"))]
        table_update(crc, data)
    } else {
        table_update(crc, data)
    };
    !r
}

/// Table-only CRC32C (for tests comparing the two paths).
pub fn crc32c_table(seed: u32, data: &[u8]) -> u32 {
    !table_update(!seed, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn vectors() {
        assert_eq!(crc32c(0, b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(0, &[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(0, &[0xffu8; 32]), 0x62A8_AB43);
        let inc: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(0, &inc), 0x46DD_794E);
        assert_eq!(crc32c_table(0, b"123456789"), 0xE306_9283);
        let a = crc32c(0, b"12345");
        assert_eq!(crc32c(a, b"6789"), 0xE306_9283);
        let big: Vec<u8> = (0..100_003u32).map(|i| (i * 7 + 3) as u8).collect();
        assert_eq!(crc32c(0, &big), crc32c_table(0, &big));
    }
}
