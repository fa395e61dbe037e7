//! SHA-256 (FIPS 180-4) for the link's frame MAC (./hmac.rs).
//! Hardware path: the x86 SHA extensions (`sha256rnds2`, `sha256msg1`, `sha256msg2`, with SSSE3
//! byte shuffles and SSE4.1 blends), chosen at run time with `is_x86_feature_detected!`.
//! Fallback: a plain Rust compression function. Both give identical results;
//! `SANBOX_SHA_PORTABLE=1` forces the fallback for the whole process (as SANBOX_CRC_TABLE does
//! for CRC32C), and a `Sha256` can be asked for it explicitly (tests compare the two paths).

pub const BLOCK_BYTES: usize = 64;
pub const DIGEST_BYTES: usize = 32;

pub const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Compresses whole 64-byte blocks into the state (`blocks.len()` is a multiple of 64).
pub type Compress = fn(&mut [u32; 8], &[u8]);

fn compress_portable(state: &mut [u32; 8], blocks: &[u8]) {
    debug_assert!(blocks.len() % BLOCK_BYTES == 0);
    for b in blocks.chunks_exact(BLOCK_BYTES) {
        let mut w = [0u32; 64];
        for (i, c) in b.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b2, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = h.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b2) ^ (a & c) ^ (b2 & c);
            let t2 = s0.wrapping_add(maj);
            h = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b2;
            b2 = a;
            a = t1.wrapping_add(t2);
        }
        for (s, v) in state.iter_mut().zip([a, b2, c, d, e, f, g, h]) {
            *s = s.wrapping_add(v);
        }
    }
}

/// The SHA-extensions compression (the register layout of Intel's reference: the state kept as
/// ABEF/CDGH, four message-schedule registers rotating through the 16 groups of 4 rounds).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
#[allow(unused_assignments)] // the schedule updates of the last groups are constant-false branches
unsafe fn compress_ni_unsafe(state: &mut [u32; 8], blocks: &[u8]) {
    use std::arch::x86_64::*;
    // big-endian words: reverse the bytes of each 32-bit lane
    let bswap = _mm_set_epi64x(0x0c0d0e0f08090a0b, 0x0405060700010203);
    let tmp = _mm_shuffle_epi32(_mm_loadu_si128(state.as_ptr() as *const __m128i), 0xB1); // CDAB
    let efgh = _mm_shuffle_epi32(_mm_loadu_si128(state.as_ptr().add(4) as *const __m128i), 0x1B); // EFGH
    let mut abef = _mm_alignr_epi8(tmp, efgh, 8);
    let mut cdgh = _mm_blend_epi16(efgh, tmp, 0xF0);
    // one group of 4 rounds; a macro so that every index is a constant and the 16 groups unroll
    // into straight-line code with the schedule in registers (a loop kept them in memory)
    macro_rules! group {
        ($w:expr, $i:literal) => {{
            let i: usize = $i;
            let mut msg = _mm_add_epi32($w[i % 4], _mm_loadu_si128(K.as_ptr().add(4 * i) as *const __m128i));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, msg);
            if i >= 3 && i <= 14 {
                // finish W for the next group: W[i+1] += W[i-1..i] shifted by one word, then msg2
                let t = _mm_alignr_epi8($w[i % 4], $w[(i + 3) % 4], 4);
                $w[(i + 1) % 4] = _mm_sha256msg2_epu32(_mm_add_epi32($w[(i + 1) % 4], t), $w[i % 4]);
            }
            msg = _mm_shuffle_epi32(msg, 0x0E);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, msg);
            if i >= 1 && i <= 12 {
                // start W for group i+3
                $w[(i + 3) % 4] = _mm_sha256msg1_epu32($w[(i + 3) % 4], $w[i % 4]);
            }
        }};
    }
    for b in blocks.chunks_exact(BLOCK_BYTES) {
        let (abef0, cdgh0) = (abef, cdgh);
        // (a macro, not a closure: a closure would not inherit this function's target features)
        macro_rules! word4 {
            ($j:literal) => {
                _mm_shuffle_epi8(_mm_loadu_si128(b.as_ptr().add(16 * $j) as *const __m128i), bswap)
            };
        }
        // the message schedule, four words per register: W[0..16] from the block, then rotating
        let mut w = [word4!(0), word4!(1), word4!(2), word4!(3)];
        group!(w, 0);
        group!(w, 1);
        group!(w, 2);
        group!(w, 3);
        group!(w, 4);
        group!(w, 5);
        group!(w, 6);
        group!(w, 7);
        group!(w, 8);
        group!(w, 9);
        group!(w, 10);
        group!(w, 11);
        group!(w, 12);
        group!(w, 13);
        group!(w, 14);
        group!(w, 15);
        abef = _mm_add_epi32(abef, abef0);
        cdgh = _mm_add_epi32(cdgh, cdgh0);
    }
    let feba = _mm_shuffle_epi32(abef, 0x1B);
    let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128(state.as_mut_ptr() as *mut __m128i, _mm_blend_epi16(feba, dchg, 0xF0)); // state[0..4]: A B C D
    _mm_storeu_si128(state.as_mut_ptr().add(4) as *mut __m128i, _mm_alignr_epi8(dchg, feba, 8)); // state[4..8]: E F G H
}

#[cfg(target_arch = "x86_64")]
fn compress_ni(state: &mut [u32; 8], blocks: &[u8]) {
    debug_assert!(blocks.len() % BLOCK_BYTES == 0);
    // only ever selected by `pick` after the CPU was found to have the features
    unsafe { compress_ni_unsafe(state, blocks) }
}

fn has_ni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::env::var_os("SANBOX_SHA_PORTABLE").is_some_and(|v| v == "1") {
            return false;
        }
        return is_x86_feature_detected!("sha")
            && is_x86_feature_detected!("sse2")
            && is_x86_feature_detected!("ssse3")
            && is_x86_feature_detected!("sse4.1");
    }
    #[allow(unreachable_code)]
    false
}

static NI: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Which implementation SHA-256 uses in this process: "sha-ni" or "portable".
pub fn implementation() -> &'static str {
    if *NI.get_or_init(has_ni) { "sha-ni" } else { "portable" }
}

/// The compression function to use; `portable` forces the fallback.
pub fn pick(portable: bool) -> Compress {
    #[cfg(target_arch = "x86_64")]
    if !portable && *NI.get_or_init(has_ni) {
        return compress_ni;
    }
    let _ = portable;
    compress_portable
}

/// Streaming SHA-256 whose state can be copied (HMAC keeps its padded-key states this way).
#[derive(Clone)]
pub struct Sha256 {
    state: [u32; 8],
    buf: [u8; BLOCK_BYTES],
    buf_len: usize,
    total_bytes: u64,
    compress: Compress,
}

impl Sha256 {
    pub fn new(compress: Compress) -> Self {
        Sha256 { state: H0, buf: [0; BLOCK_BYTES], buf_len: 0, total_bytes: 0, compress }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total_bytes += data.len() as u64;
        if self.buf_len > 0 {
            let n = (BLOCK_BYTES - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + n].copy_from_slice(&data[..n]);
            self.buf_len += n;
            data = &data[n..];
            if self.buf_len < BLOCK_BYTES {
                return;
            }
            (self.compress)(&mut self.state, &self.buf);
            self.buf_len = 0;
        }
        // whole blocks straight from the caller's memory, no copy
        let whole = data.len() - data.len() % BLOCK_BYTES;
        if whole > 0 {
            (self.compress)(&mut self.state, &data[..whole]);
        }
        let rest = &data[whole..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    pub fn finish(mut self) -> [u8; DIGEST_BYTES] {
        let bits = self.total_bytes.wrapping_mul(8);
        let mut pad = [0u8; 2 * BLOCK_BYTES];
        pad[0] = 0x80;
        // 0x80, zeros, then the bit length in the last 8 bytes of the final block
        let pad_len = if self.buf_len < BLOCK_BYTES - 8 { BLOCK_BYTES - self.buf_len } else { 2 * BLOCK_BYTES - self.buf_len };
        pad[pad_len - 8..pad_len].copy_from_slice(&bits.to_be_bytes());
        self.update(&pad[..pad_len]);
        assert_eq!(self.buf_len, 0, "sha256: padding did not end on a block boundary");
        let mut out = [0u8; DIGEST_BYTES];
        for (o, s) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&s.to_be_bytes());
        }
        out
    }
}

/// One-shot SHA-256 of the concatenation of `pieces`.
pub fn digest(pieces: &[&[u8]], portable: bool) -> [u8; DIGEST_BYTES] {
    let mut h = Sha256::new(pick(portable));
    for p in pieces {
        h.update(p);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{:02x}", x)).collect()
    }
    #[test]
    fn vectors_both_paths() {
        for portable in [false, true] {
            assert_eq!(hex(&digest(&[b""], portable)), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
            assert_eq!(hex(&digest(&[b"abc"], portable)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
            let two = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
            assert_eq!(hex(&digest(&[two], portable)), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
            let million = vec![b'a'; 1_000_000];
            assert_eq!(hex(&digest(&[&million], portable)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        }
    }
    #[test]
    fn pieces_at_every_split() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 31 + 7) as u8).collect();
        for n in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 200, 300] {
            let want = digest(&[&data[..n]], true);
            for cut in 0..=n {
                assert_eq!(digest(&[&data[..cut], &data[cut..n]], false), want, "n {} cut {}", n, cut);
                assert_eq!(digest(&[&data[..cut], &data[cut..n]], true), want, "n {} cut {}", n, cut);
            }
        }
    }
}
