//! HMAC-SHA256 (RFC 2104) shaped for the link's frame MAC: a key is turned once into the two
//! SHA-256 states after the padded-key blocks (inner and outer), so a MAC costs only the
//! message's blocks plus one outer block, and it takes the message as several pieces (sequence
//! number + header, JSON, payload as they lie in memory) without concatenating them.

use crate::sha256::{self, Sha256, BLOCK_BYTES, DIGEST_BYTES};

const IPAD: u8 = 0x36;
const OPAD: u8 = 0x5c;

pub struct Hmac {
    inner: Sha256,
    outer: Sha256,
    /// bytes of the MAC given out (the leftmost of the 32; RFC 2104 section 5 truncation)
    tag_bytes: usize,
}

impl Hmac {
    /// `tag_bytes` in 1..=32; `portable` forces the plain-Rust SHA-256 (tests).
    pub fn new(key: &[u8], tag_bytes: usize, portable: bool) -> Result<Hmac, String> {
        if tag_bytes == 0 || tag_bytes > DIGEST_BYTES {
            return Err(format!("HMAC tag length must be 1..{} bytes, got {}", DIGEST_BYTES, tag_bytes));
        }
        let compress = sha256::pick(portable);
        // a key longer than a block is replaced by its hash (RFC 2104 section 2)
        let mut k = [0u8; BLOCK_BYTES];
        if key.len() > BLOCK_BYTES {
            k[..DIGEST_BYTES].copy_from_slice(&sha256::digest(&[key], portable));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let (mut inner, mut outer) = (Sha256::new(compress), Sha256::new(compress));
        inner.update(&k.map(|b| b ^ IPAD));
        outer.update(&k.map(|b| b ^ OPAD));
        Ok(Hmac { inner, outer, tag_bytes })
    }

    pub fn tag_bytes(&self) -> usize {
        self.tag_bytes
    }

    /// The full 32-byte HMAC of the concatenation of `pieces`.
    pub fn full(&self, pieces: &[&[u8]]) -> [u8; DIGEST_BYTES] {
        let mut i = self.inner.clone();
        for p in pieces {
            i.update(p);
        }
        let mut o = self.outer.clone();
        o.update(&i.finish());
        o.finish()
    }

    /// Writes the (truncated) MAC into `out`, which must be exactly `tag_bytes` long.
    pub fn mac_into(&self, out: &mut [u8], pieces: &[&[u8]]) {
        assert_eq!(out.len(), self.tag_bytes, "hmac: output slice of the wrong length");
        out.copy_from_slice(&self.full(pieces)[..self.tag_bytes]);
    }

    /// Whether `tag` is the MAC of `pieces`; the comparison takes the same time wherever the
    /// first difference is (a forger learns nothing from how long a refusal took).
    pub fn verify(&self, tag: &[u8], pieces: &[&[u8]]) -> bool {
        assert_eq!(tag.len(), self.tag_bytes, "hmac: tag of the wrong length");
        let want = self.full(pieces);
        let mut diff = 0u8;
        for (a, b) in want[..self.tag_bytes].iter().zip(tag) {
            diff |= a ^ b;
        }
        std::hint::black_box(diff) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
    #[test]
    fn rfc4231() {
        let k131 = vec![0xaau8; 131];
        let long_msg = b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.";
        let cases: [(&[u8], &[u8], &str); 5] = [
            (&[0x0b; 20], b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            (&[0xaa; 20], &[0xdd; 50], "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            (&k131, b"Test Using Larger Than Block-Size Key - Hash Key First", "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            (&k131, long_msg, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        ];
        for portable in [false, true] {
            for (key, msg, want) in cases.iter() {
                let h = Hmac::new(key, 32, portable).unwrap();
                assert_eq!(h.full(&[msg]).to_vec(), unhex(want));
                assert!(h.verify(&unhex(want), &[&msg[..3], &msg[3..]]));
            }
            // test case 5: truncated to 128 bits
            let h = Hmac::new(&[0x0c; 20], 16, portable).unwrap();
            let mut out = [0u8; 16];
            h.mac_into(&mut out, &[b"Test With ", b"Truncation"]);
            assert_eq!(out.to_vec(), unhex("a3b6167473100ee06e0c796c2955552b"));
            out[15] ^= 1;
            assert!(!h.verify(&out, &[b"Test With Truncation"]));
        }
    }
}
