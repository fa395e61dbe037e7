//! Region bitmap: one bit per region of a LUN. See src/native/bitmap.ts for the documented
//! semantics; this file and the TypeScript twin must behave identically.
//!
//! Invariants (asserted): region size is a power of two in [4 KiB, 64 MiB]; bits beyond the
//! last region are always zero; every range lies inside the LUN.

use crate::crc32c::crc32c;

pub const MIN_REGION: u64 = 4096;
pub const MAX_REGION: u64 = 64 << 20;
pub const MAX_LUN: u64 = 1 << 53;
pub const MAX_REGIONS: u64 = 1 << 32;
pub const HEADER: usize = 64;
pub const MAGIC: &[u8; 8] = b"SBXBMAP\0";
pub const VERSION: u32 = 1;

static POPCNT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn count_popcnt(words: &[u64]) -> u64 {
    let mut n = [0u64; 4];
    let mut c = words.chunks_exact(4);
    for w in &mut c {
        n[0] += w[0].count_ones() as u64;
        n[1] += w[1].count_ones() as u64;
        n[2] += w[2].count_ones() as u64;
        n[3] += w[3].count_ones() as u64;
    }
    let mut t = n[0] + n[1] + n[2] + n[3];
    for w in c.remainder() {
        t += w.count_ones() as u64;
    }
    t
}

#[derive(Clone)]
pub struct Bitmap {
    pub lun_size: u64,
    pub shift: u32,
    pub nregions: u64,
    pub words: Vec<u64>,
    /// One bit per word of `words`: set iff that word is non-zero. Lets run walks and tests skip
    /// clean stretches of a sparse bitmap 4096 regions per summary word instead of reading them.
    summary: Vec<u64>,
}

impl Bitmap {
    pub fn new(lun_size: u64, region_size: u64) -> Result<Bitmap, String> {
        if !region_size.is_power_of_two() || region_size < MIN_REGION || region_size > MAX_REGION {
            return Err(format!("region size {} is not a power of two in [4096, 67108864]", region_size));
        }
        if lun_size == 0 || lun_size > MAX_LUN {
            return Err(format!("LUN size {} out of range (1 .. 2^53)", lun_size));
        }
        let shift = region_size.trailing_zeros();
        let nregions = (lun_size + region_size - 1) >> shift;
        if nregions > MAX_REGIONS {
            return Err(format!("{} regions exceed the limit of 2^32; choose a larger region size", nregions));
        }
        let nwords = ((nregions + 63) / 64) as usize;
        Ok(Bitmap { lun_size, shift, nregions, words: vec![0u64; nwords], summary: vec![0u64; (nwords + 63) / 64] })
    }

    #[inline]
    pub fn region_size(&self) -> u64 {
        1u64 << self.shift
    }

    #[inline]
    fn check(&self, off: u64, len: u64) -> Result<(), String> {
        if off > self.lun_size || len > self.lun_size - off {
            return Err(format!("range {}+{} outside LUN of {} bytes", off, len, self.lun_size));
        }
        Ok(())
    }

    /// Regions touched by the range (rounded outward), as [first, end).
    #[inline]
    fn outward(&self, off: u64, len: u64) -> (u64, u64) {
        if len == 0 {
            return (0, 0);
        }
        (off >> self.shift, ((off + len - 1) >> self.shift) + 1)
    }

    /// Regions fully covered by the range, as [first, end). A range that ends at the end of the
    /// LUN fully covers the (possibly partial) last region.
    #[inline]
    fn inward(&self, off: u64, len: u64) -> (u64, u64) {
        if len == 0 {
            return (0, 0);
        }
        let rs = self.region_size();
        let first = (off + rs - 1) >> self.shift;
        let end = if off + len == self.lun_size { self.nregions } else { (off + len) >> self.shift };
        if first >= end { (0, 0) } else { (first, end) }
    }

    fn set_bits(&mut self, a: u64, b: u64, v: bool) {
        if a >= b {
            return;
        }
        self.set_bits_raw(a, b, v);
        let (wa, wb) = ((a >> 6) as usize, ((b - 1) >> 6) as usize);
        if v {
            set_range(&mut self.summary, wa as u64, wb as u64 + 1, true);
        } else {
            if wb > wa + 1 {
                set_range(&mut self.summary, wa as u64 + 1, wb as u64, false);
            }
            self.refresh(wa);
            self.refresh(wb);
        }
    }

    #[inline]
    fn refresh(&mut self, w: usize) {
        let bit = 1u64 << (w & 63);
        if self.words[w] != 0 { self.summary[w >> 6] |= bit } else { self.summary[w >> 6] &= !bit }
    }

    fn rebuild_summary(&mut self) {
        for x in self.summary.iter_mut() {
            *x = 0;
        }
        for w in 0..self.words.len() {
            if self.words[w] != 0 {
                self.summary[w >> 6] |= 1u64 << (w & 63);
            }
        }
    }

    fn set_bits_raw(&mut self, a: u64, b: u64, v: bool) {
        let (wa, wb) = ((a >> 6) as usize, ((b - 1) >> 6) as usize);
        let ma = !0u64 << (a & 63);
        let mb = !0u64 >> (63 - ((b - 1) & 63));
        if wa == wb {
            let m = ma & mb;
            if v { self.words[wa] |= m } else { self.words[wa] &= !m }
            return;
        }
        if v {
            self.words[wa] |= ma;
            for w in &mut self.words[wa + 1..wb] {
                *w = !0;
            }
            self.words[wb] |= mb;
        } else {
            self.words[wa] &= !ma;
            for w in &mut self.words[wa + 1..wb] {
                *w = 0;
            }
            self.words[wb] &= !mb;
        }
    }

    fn any_bits(&self, a: u64, b: u64) -> bool {
        if a >= b {
            return false;
        }
        match self.next_set(a) {
            Some(i) => i < b,
            None => false,
        }
    }

    fn count_bits(&self, a: u64, b: u64) -> u64 {
        if a >= b {
            return 0;
        }
        let (wa, wb) = ((a >> 6) as usize, ((b - 1) >> 6) as usize);
        let ma = !0u64 << (a & 63);
        let mb = !0u64 >> (63 - ((b - 1) & 63));
        if wa == wb {
            return (self.words[wa] & ma & mb).count_ones() as u64;
        }
        let mut n = (self.words[wa] & ma).count_ones() as u64 + (self.words[wb] & mb).count_ones() as u64;
        for w in &self.words[wa + 1..wb] {
            n += w.count_ones() as u64;
        }
        n
    }

    /// First set bit at index >= i.
    pub fn next_set(&self, i: u64) -> Option<u64> {
        if i >= self.nregions {
            return None;
        }
        let mut wi = (i >> 6) as usize;
        let w = self.words[wi] & (!0u64 << (i & 63));
        if w != 0 {
            return Some(((wi as u64) << 6) + w.trailing_zeros() as u64);
        }
        wi += 1;
        if wi >= self.words.len() {
            return None;
        }
        // Next non-zero word from the summary.
        let mut si = wi >> 6;
        let mut sw = self.summary[si] & (!0u64 << (wi & 63));
        loop {
            if sw != 0 {
                let w = (si << 6) + sw.trailing_zeros() as usize;
                return Some(((w as u64) << 6) + self.words[w].trailing_zeros() as u64);
            }
            si += 1;
            if si >= self.summary.len() {
                return None;
            }
            sw = self.summary[si];
        }
    }

    /// First clear bit at index >= i (nregions when none).
    pub fn next_clear(&self, i: u64) -> u64 {
        if i >= self.nregions {
            return self.nregions;
        }
        let mut wi = (i >> 6) as usize;
        let mut w = !self.words[wi] & (!0u64 << (i & 63));
        loop {
            if w != 0 {
                let r = ((wi as u64) << 6) + w.trailing_zeros() as u64;
                return r.min(self.nregions);
            }
            wi += 1;
            if wi >= self.words.len() {
                return self.nregions;
            }
            w = !self.words[wi];
        }
    }

    pub fn mark(&mut self, off: u64, len: u64) -> Result<(), String> {
        self.check(off, len)?;
        let (a, b) = self.outward(off, len);
        self.set_bits(a, b, true);
        Ok(())
    }

    /// mark() for a range the caller has already validated (batch path).
    #[inline]
    pub fn mark_unchecked(&mut self, off: u64, len: u64) {
        debug_assert!(off + len <= self.lun_size);
        if len == 0 {
            return;
        }
        let a = off >> self.shift;
        let b = (off + len - 1) >> self.shift;
        if a == b {
            let w = (a >> 6) as usize;
            self.words[w] |= 1u64 << (a & 63);
            self.summary[w >> 6] |= 1u64 << (w & 63);
        } else {
            self.set_bits(a, b + 1, true);
        }
    }

    pub fn clear(&mut self, off: u64, len: u64) -> Result<(), String> {
        self.check(off, len)?;
        let (a, b) = self.inward(off, len);
        self.set_bits(a, b, false);
        Ok(())
    }

    pub fn clear_all(&mut self) {
        for w in self.words.iter_mut() {
            *w = 0;
        }
        for w in self.summary.iter_mut() {
            *w = 0;
        }
    }

    pub fn test(&self, off: u64, len: u64) -> Result<bool, String> {
        self.check(off, len)?;
        let (a, b) = self.outward(off, len);
        Ok(self.any_bits(a, b))
    }

    pub fn count_regions(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        {
            if *POPCNT.get_or_init(|| is_x86_feature_detected!("popcnt")) {
                return unsafe { count_popcnt(&self.words) };
            }
        }
        self.words.iter().map(|w| w.count_ones() as u64).sum()
    }

    /// Dirty regions touched by the range (outward).
    pub fn count_regions_in(&self, off: u64, len: u64) -> Result<u64, String> {
        self.check(off, len)?;
        let (a, b) = self.outward(off, len);
        Ok(self.count_bits(a, b))
    }

    /// Bytes covered by dirty regions, the last (partial) region counted only up to the LUN end.
    pub fn dirty_bytes(&self) -> u64 {
        let n = self.count_regions();
        let mut bytes = n << self.shift;
        let tail = self.lun_size & (self.region_size() - 1);
        if tail != 0 {
            let last = self.nregions - 1;
            if self.words[(last >> 6) as usize] >> (last & 63) & 1 == 1 {
                bytes -= self.region_size() - tail;
            }
        }
        bytes
    }

    /// Up to `max` dirty runs starting with the region that contains `from`, appended to `out`
    /// as (byte offset, byte length) pairs; adjacent dirty regions form one run; the last run is
    /// clipped at the LUN end.
    pub fn runs(&self, from: u64, max: usize, out: &mut Vec<f64>) {
        let mut i = from >> self.shift;
        let mut n = 0;
        while n < max {
            let s = match self.next_set(i) {
                Some(s) => s,
                None => break,
            };
            let e = self.next_clear(s);
            let bo = s << self.shift;
            let be = (e << self.shift).min(self.lun_size);
            out.push(bo as f64);
            out.push((be - bo) as f64);
            n += 1;
            i = e;
        }
    }

    pub fn same_geometry(&self, o: &Bitmap) -> bool {
        self.lun_size == o.lun_size && self.shift == o.shift
    }

    pub fn union_with(&mut self, o: &Bitmap) -> Result<(), String> {
        if !self.same_geometry(o) {
            return Err("union of bitmaps with different geometry".into());
        }
        for (a, b) in self.words.iter_mut().zip(o.words.iter()) {
            *a |= *b;
        }
        for (a, b) in self.summary.iter_mut().zip(o.summary.iter()) {
            *a |= *b;
        }
        Ok(())
    }

    pub fn copy_from(&mut self, o: &Bitmap) -> Result<(), String> {
        if !self.same_geometry(o) {
            return Err("copy between bitmaps with different geometry".into());
        }
        self.words.copy_from_slice(&o.words);
        self.summary.copy_from_slice(&o.summary);
        Ok(())
    }

    pub fn serialize(&self, generation: u64) -> Vec<u8> {
        let payload = self.words.len() * 8;
        let mut v = Vec::with_capacity(HEADER + payload);
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&VERSION.to_le_bytes());
        v.extend_from_slice(&(HEADER as u32).to_le_bytes());
        v.extend_from_slice(&self.region_size().to_le_bytes());
        v.extend_from_slice(&self.lun_size.to_le_bytes());
        v.extend_from_slice(&generation.to_le_bytes());
        v.extend_from_slice(&self.nregions.to_le_bytes());
        v.extend_from_slice(&(payload as u64).to_le_bytes());
        v.extend_from_slice(&[0u8; 8]);
        for w in &self.words {
            v.extend_from_slice(&w.to_le_bytes());
        }
        let c = crc32c(crc32c(0, &v[..56]), &v[HEADER..]);
        v[56..60].copy_from_slice(&c.to_le_bytes());
        v
    }

    pub fn load(b: &[u8]) -> Result<(Bitmap, u64), String> {
        if b.len() < HEADER {
            return Err(format!("bitmap image too short ({} bytes)", b.len()));
        }
        if &b[0..8] != MAGIC {
            return Err("bad bitmap magic".into());
        }
        let u32at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let u64at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        if u32at(8) != VERSION {
            return Err(format!("unsupported bitmap version {}", u32at(8)));
        }
        if u32at(12) as usize != HEADER {
            return Err("bad bitmap header size".into());
        }
        let (rs, lun, gen, nreg, payload) = (u64at(16), u64at(24), u64at(32), u64at(40), u64at(48));
        let mut bm = Bitmap::new(lun, rs)?;
        if bm.nregions != nreg || payload != (bm.words.len() * 8) as u64 {
            return Err("bitmap header geometry mismatch".into());
        }
        if b.len() as u64 != HEADER as u64 + payload {
            return Err(format!("bitmap image length {} != {} (torn or truncated)", b.len(), HEADER as u64 + payload));
        }
        let c = crc32c(crc32c(0, &b[..56]), &b[HEADER..]);
        if c != u32at(56) || u32at(60) != 0 {
            return Err("bitmap CRC mismatch (torn or corrupt)".into());
        }
        for (i, w) in bm.words.iter_mut().enumerate() {
            *w = u64at(HEADER + i * 8);
        }
        let last = bm.nregions & 63;
        if last != 0 {
            let lw = *bm.words.last().unwrap();
            if lw >> last != 0 {
                return Err("bitmap has bits beyond the last region".into());
            }
        }
        bm.rebuild_summary();
        Ok((bm, gen))
    }

    /// Checks the summary against the words (tests).
    pub fn summary_ok(&self) -> bool {
        (0..self.words.len()).all(|w| ((self.summary[w >> 6] >> (w & 63)) & 1 == 1) == (self.words[w] != 0))
    }
}

/// Sets or clears bits [a, b) of a word vector.
fn set_range(v: &mut [u64], a: u64, b: u64, on: bool) {
    if a >= b {
        return;
    }
    let (wa, wb) = ((a >> 6) as usize, ((b - 1) >> 6) as usize);
    let ma = !0u64 << (a & 63);
    let mb = !0u64 >> (63 - ((b - 1) & 63));
    if wa == wb {
        if on { v[wa] |= ma & mb } else { v[wa] &= !(ma & mb) }
        return;
    }
    if on {
        v[wa] |= ma;
        for w in &mut v[wa + 1..wb] {
            *w = !0;
        }
        v[wb] |= mb;
    } else {
        v[wa] &= !ma;
        for w in &mut v[wa + 1..wb] {
            *w = 0;
        }
        v[wb] &= !mb;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn basics() {
        let mut b = Bitmap::new(1 << 20, 4096).unwrap();
        b.mark(5000, 10).unwrap();
        assert_eq!(b.count_regions(), 1);
        b.mark(4096 * 10, 4096 * 70).unwrap();
        let mut out = vec![];
        b.runs(0, 10, &mut out);
        assert_eq!(out, vec![4096.0, 4096.0, 40960.0, 4096.0 * 70.0]);
        b.clear(4096 * 10 + 1, 4096 * 2).unwrap();
        assert_eq!(b.count_regions(), 70);
        let s = b.serialize(7);
        let (c, g) = Bitmap::load(&s).unwrap();
        assert_eq!(g, 7);
        assert_eq!(c.words, b.words);
        let mut t = Bitmap::new(10000, 4096).unwrap();
        t.mark(9999, 1).unwrap();
        assert_eq!(t.dirty_bytes(), 10000 - 8192);
        t.clear(8192, 10000 - 8192).unwrap();
        assert_eq!(t.count_regions(), 0);
    }

    #[test]
    fn summary_tracks_words() {
        let mut b = Bitmap::new(1 << 34, 4096).unwrap(); // 4 Mi regions
        let mut s = 7u64;
        let rs = 4096u64;
        for i in 0..20000 {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let off = ((s >> 16) % (1 << 22)) * rs;
            let len = ((s >> 8) % 300) * rs + (s & 0xff);
            let len = len.min((1 << 34) - off);
            if i % 3 == 0 { b.clear(off, len).unwrap() } else { b.mark(off, len).unwrap() }
        }
        assert!(b.summary_ok());
        // next_set agrees with a plain scan
        let mut i = 0;
        while let Some(n) = b.next_set(i) {
            for k in i..n {
                assert_eq!(b.words[(k >> 6) as usize] >> (k & 63) & 1, 0);
            }
            assert_eq!(b.words[(n >> 6) as usize] >> (n & 63) & 1, 1);
            i = n + 1 + (s % 5000);
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
    }
}
