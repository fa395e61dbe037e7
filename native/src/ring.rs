//! Writelog ring: one circular segment (the main writelog file or one extension) holding
//! records `[header 64 B][data][pad to 8 B]`. The journal orchestration (segments, metadata
//! block, durability, recovery across segments) lives in src/native/writelog.ts and drives
//! either this ring or its TypeScript twin (src/native/ring.ts); both must behave identically.
//!
//! Positions are virtual byte offsets that only grow; the physical offset is `v % cap`.
//! Invariants (asserted):
//! - `reclaim <= tail <= head` and `head - reclaim <= cap`: bytes between the reclaim point
//!   (the tail last persisted in the metadata block) and the head are never overwritten, so a
//!   recovery that starts at the persisted tail always finds intact records.
//! - records carry consecutive local sequence numbers (wrap markers consume one too) and
//!   strictly increasing global sequence numbers.

use crate::crc32c::crc32c;
use std::collections::VecDeque;
use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::unix::fs::FileExt;
use std::os::unix::io::FromRawFd;

pub const HDR: u64 = 64;
pub const MAGIC: u32 = u32::from_le_bytes(*b"SBWR");
pub const VERSION: u16 = 1;
pub const FLAG_WRAP: u16 = 0x8000;

#[inline]
pub fn align8(x: u64) -> u64 {
    (x + 7) & !7
}

pub enum Store {
    Mem(Vec<u8>),
    File { f: ManuallyDrop<File>, base: u64 },
}

impl Store {
    fn write(&mut self, phys: u64, b: &[u8]) -> Result<(), String> {
        match self {
            Store::Mem(v) => {
                v[phys as usize..phys as usize + b.len()].copy_from_slice(b);
                Ok(())
            }
            Store::File { f, base } => f.write_all_at(b, *base + phys).map_err(|e| format!("writelog write: {}", e)),
        }
    }
    fn read(&self, phys: u64, b: &mut [u8]) -> Result<(), String> {
        match self {
            Store::Mem(v) => {
                b.copy_from_slice(&v[phys as usize..phys as usize + b.len()]);
                Ok(())
            }
            Store::File { f, base } => f.read_exact_at(b, *base + phys).map_err(|e| format!("writelog read: {}", e)),
        }
    }
    fn is_file(&self) -> bool {
        matches!(self, Store::File { .. })
    }
}

#[derive(Clone, Copy)]
pub struct Entry {
    pub gseq: u64,
    pub local: u64,
    pub pos: u64,
    pub len: u32,
    pub ts: u64,
}

pub struct Ring {
    pub store: Store,
    pub cap: u64,
    pub epoch: u32,
    pub head: u64,
    pub tail: u64,
    pub reclaim: u64,
    pub next_local: u64,
    pub data_bytes: u64,
    pub index: VecDeque<Entry>,
    stage: Vec<u8>,
    stage_pos: u64,
}

pub fn encode_header(h: &mut [u8], flags: u16, gseq: u64, local: u64, ts: u64, lun: u32, len: u32, off: u64, epoch: u32) {
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    h[6..8].copy_from_slice(&flags.to_le_bytes());
    h[8..16].copy_from_slice(&gseq.to_le_bytes());
    h[16..24].copy_from_slice(&local.to_le_bytes());
    h[24..32].copy_from_slice(&ts.to_le_bytes());
    h[32..36].copy_from_slice(&lun.to_le_bytes());
    h[36..40].copy_from_slice(&len.to_le_bytes());
    h[40..48].copy_from_slice(&off.to_le_bytes());
    h[48..52].copy_from_slice(&epoch.to_le_bytes());
    h[52..64].fill(0);
}

#[inline]
fn rd32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
#[inline]
fn rd64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// One record to append: (lun, offset, flags, timestamp, data).
pub struct NewRec<'a> {
    pub lun: u32,
    pub off: u64,
    pub flags: u16,
    pub ts: u64,
    pub data: &'a [u8],
}

impl Ring {
    pub fn new(store: Store, cap: u64, epoch: u32) -> Result<Ring, String> {
        if cap < 4096 || cap % 8 != 0 {
            return Err(format!("writelog segment capacity {} must be a multiple of 8 and >= 4096", cap));
        }
        Ok(Ring {
            store,
            cap,
            epoch,
            head: 0,
            tail: 0,
            reclaim: 0,
            next_local: 0,
            data_bytes: 0,
            index: VecDeque::new(),
            stage: Vec::new(),
            stage_pos: 0,
        })
    }

    fn check_invariants(&self) {
        assert!(self.reclaim <= self.tail && self.tail <= self.head, "ring positions out of order");
        assert!(self.head - self.reclaim <= self.cap, "ring overfull");
    }

    pub fn reset(&mut self, head: u64, next_local: u64) {
        self.head = head;
        self.tail = head;
        self.reclaim = head;
        self.next_local = next_local;
        self.data_bytes = 0;
        self.index.clear();
    }

    pub fn tail_local(&self) -> u64 {
        self.index.front().map(|e| e.local).unwrap_or(self.next_local)
    }

    fn flush_stage(&mut self) -> Result<(), String> {
        if !self.stage.is_empty() {
            let st = std::mem::take(&mut self.stage);
            let r = self.store.write(self.stage_pos % self.cap, &st);
            self.stage = st;
            self.stage.clear();
            r?;
        }
        Ok(())
    }

    fn put(&mut self, vpos: u64, parts: &[&[u8]]) -> Result<(), String> {
        if self.store.is_file() {
            if !self.stage.is_empty() && self.stage_pos + self.stage.len() as u64 != vpos {
                self.flush_stage()?;
            }
            if self.stage.is_empty() {
                self.stage_pos = vpos;
            }
            for p in parts {
                self.stage.extend_from_slice(p);
            }
            if self.stage.len() >= 1 << 20 {
                self.flush_stage()?;
            }
            Ok(())
        } else {
            let mut phys = vpos % self.cap;
            for p in parts {
                self.store.write(phys, p)?;
                phys += p.len() as u64;
            }
            Ok(())
        }
    }

    /// Bytes a record of `len` data bytes needs if appended now (including a wrap skip).
    pub fn need(&self, len: u64) -> u64 {
        let sz = align8(HDR + len);
        let p = self.head % self.cap;
        if self.cap - p < sz { self.cap - p + sz } else { sz }
    }

    /// Appends records with global sequence numbers first_gseq, first_gseq+1, ... until one does
    /// not fit. Returns how many were appended (never overwrites unreclaimed bytes).
    pub fn append(&mut self, first_gseq: u64, recs: &[NewRec]) -> Result<usize, String> {
        let mut n = 0;
        let mut hdr = [0u8; 64];
        let pad = [0u8; 8];
        for r in recs {
            let len = r.data.len() as u64;
            let sz = align8(HDR + len);
            if sz > self.cap {
                self.flush_stage()?;
                return Err(format!("record of {} bytes larger than writelog segment ({} bytes)", len, self.cap));
            }
            let p = self.head % self.cap;
            let skip = if self.cap - p < sz { self.cap - p } else { 0 };
            if self.head - self.reclaim + skip + sz > self.cap {
                break;
            }
            if skip > 0 {
                if skip >= HDR {
                    encode_header(&mut hdr, FLAG_WRAP, first_gseq + n as u64, self.next_local, r.ts, 0, 0, 0, self.epoch);
                    let c = crc32c(0, &hdr[..56]);
                    hdr[56..60].copy_from_slice(&c.to_le_bytes());
                    let h2 = hdr;
                    self.put(self.head, &[&h2])?;
                    self.next_local += 1;
                }
                self.flush_stage()?;
                self.head += skip;
            }
            let gseq = first_gseq + n as u64;
            encode_header(&mut hdr, r.flags & !FLAG_WRAP, gseq, self.next_local, r.ts, r.lun, len as u32, r.off, self.epoch);
            let c = crc32c(crc32c(0, &hdr[..56]), r.data);
            hdr[56..60].copy_from_slice(&c.to_le_bytes());
            let padn = (sz - HDR - len) as usize;
            let h2 = hdr;
            self.put(self.head, &[&h2, r.data, &pad[..padn]])?;
            self.index.push_back(Entry { gseq, local: self.next_local, pos: self.head, len: len as u32, ts: r.ts });
            self.data_bytes += len;
            self.next_local += 1;
            self.head += sz;
            n += 1;
        }
        self.flush_stage()?;
        self.check_invariants();
        Ok(n)
    }

    /// Index of the first entry with gseq >= s.
    fn find(&self, s: u64) -> usize {
        self.index.partition_point(|e| e.gseq < s)
    }

    fn verify(&self, b: &[u8], e: &Entry) -> Result<(), String> {
        let len = rd32(b, 36) as usize;
        if rd32(b, 0) != MAGIC || rd64(b, 8) != e.gseq || rd64(b, 16) != e.local || len != e.len as usize || rd32(b, 48) != self.epoch {
            return Err(format!("writelog record {} corrupt (header)", e.gseq));
        }
        let c = crc32c(crc32c(0, &b[..56]), &b[64..64 + len]);
        if c != rd32(b, 56) {
            return Err(format!("writelog record {} corrupt (CRC)", e.gseq));
        }
        Ok(())
    }

    /// Records from global seq `from` (or the first after it), in order, until `max_count`
    /// records or `max_bytes` of output (at least one record). Output: `[header][data][pad]...`.
    pub fn read(&self, from: u64, max_bytes: u64, max_count: u64, verify: bool) -> Result<Vec<u8>, String> {
        let (i0, j, total) = self.read_plan(from, max_bytes, max_count);
        let mut out = vec![0u8; total as usize];
        self.read_fill(i0, j, &mut out, verify)?;
        Ok(out)
    }

    /// Which entries a read returns, [i0, j), and the output size.
    pub fn read_plan(&self, from: u64, max_bytes: u64, max_count: u64) -> (usize, usize, u64) {
        let i0 = self.find(from);
        let mut j = i0;
        let mut total = 0u64;
        while j < self.index.len() && ((j - i0) as u64) < max_count {
            let sz = align8(HDR + self.index[j].len as u64);
            if j > i0 && total + sz > max_bytes {
                break;
            }
            total += sz;
            j += 1;
        }
        (i0, j, total)
    }

    /// Copies entries [i0, j) into `out` (sized by read_plan), contiguous spans at a time.
    pub fn read_fill(&self, i0: usize, j: usize, out: &mut [u8], verify: bool) -> Result<(), String> {
        let mut o = 0usize;
        let mut k = i0;
        while k < j {
            let start = self.index[k].pos;
            let mut end = start + align8(HDR + self.index[k].len as u64);
            let mut m = k + 1;
            while m < j && self.index[m].pos == end && (end % self.cap) != 0 {
                end += align8(HDR + self.index[m].len as u64);
                m += 1;
            }
            let n = (end - start) as usize;
            self.store.read(start % self.cap, &mut out[o..o + n])?;
            if verify {
                let mut q = o;
                for e in self.index.range(k..m) {
                    self.verify(&out[q..], e)?;
                    q += align8(HDR + e.len as u64) as usize;
                }
            }
            o += n;
            k = m;
        }
        Ok(())
    }

    /// Releases records with gseq <= s. Returns how many were released.
    pub fn ack(&mut self, s: u64) -> u64 {
        let mut n = 0;
        while let Some(e) = self.index.front() {
            if e.gseq > s {
                break;
            }
            self.data_bytes -= e.len as u64;
            self.index.pop_front();
            n += 1;
        }
        self.tail = self.index.front().map(|e| e.pos).unwrap_or(self.head);
        self.check_invariants();
        n
    }

    /// Space up to `v` (a tail that has been persisted) may be reused; `v` below the current
    /// reclaim point is ignored, beyond the tail is an error.
    pub fn commit_tail(&mut self, v: u64) -> Result<(), String> {
        if v > self.tail {
            return Err(format!("commit_tail {} beyond the tail {}", v, self.tail));
        }
        // An older persisted tail (a slower metadata write finishing late) changes nothing.
        if v > self.reclaim {
            self.reclaim = v;
        }
        Ok(())
    }

    /// Drops records with gseq > s (recovery of a valid prefix).
    pub fn truncate_after(&mut self, s: u64) {
        while let Some(e) = self.index.back() {
            if e.gseq <= s {
                break;
            }
            let e = *e;
            self.head = e.pos;
            self.next_local = e.local;
            self.data_bytes -= e.len as u64;
            self.index.pop_back();
        }
        if self.index.is_empty() {
            self.tail = self.head;
            if self.reclaim > self.head {
                self.reclaim = self.head;
            }
        }
        self.check_invariants();
    }

    /// Rebuilds the index by scanning from the persisted tail `tail_v` whose record carries
    /// local sequence `tail_local`. Stops at the first position that does not hold the next
    /// record (bad magic/epoch/CRC, wrong local sequence, non-increasing global sequence, or a
    /// full lap). Returns the reason it stopped: 0 = clean end (next slot is an older or never
    /// written record), 1 = damaged header/CRC with the expected local sequence (torn record).
    pub fn recover(&mut self, tail_v: u64, tail_local: u64) -> Result<u32, String> {
        self.reset(tail_v, tail_local);
        let mut v = tail_v;
        let mut local = tail_local;
        let mut last_g: Option<u64> = None;
        let mut hdr = [0u8; 64];
        let mut buf: Vec<u8> = Vec::new();
        let mut why = 0u32;
        loop {
            if v - tail_v >= self.cap {
                break;
            }
            let p = v % self.cap;
            if self.cap - p < HDR {
                v += self.cap - p;
                continue;
            }
            self.store.read(p, &mut hdr)?;
            if rd32(&hdr, 0) != MAGIC || rd32(&hdr, 48) != self.epoch || rd64(&hdr, 16) != local {
                if rd64(&hdr, 16) == local && rd32(&hdr, 0) == MAGIC {
                    why = 1;
                }
                break;
            }
            let flags = u16::from_le_bytes([hdr[6], hdr[7]]);
            if u16::from_le_bytes([hdr[4], hdr[5]]) != VERSION || rd32(&hdr, 52) != 0 || rd32(&hdr, 60) != 0 {
                why = 1;
                break;
            }
            if flags & FLAG_WRAP != 0 {
                if crc32c(0, &hdr[..56]) != rd32(&hdr, 56) || rd32(&hdr, 36) != 0 {
                    why = 1;
                    break;
                }
                local += 1;
                v += self.cap - p;
                continue;
            }
            let len = rd32(&hdr, 36) as u64;
            let sz = align8(HDR + len);
            let g = rd64(&hdr, 8);
            if p + sz > self.cap || v + sz - tail_v > self.cap || last_g.map_or(false, |lg| g <= lg) {
                why = 1;
                break;
            }
            buf.resize(len as usize, 0);
            self.store.read(p + HDR, &mut buf)?;
            if crc32c(crc32c(0, &hdr[..56]), &buf) != rd32(&hdr, 56) {
                why = 1;
                break;
            }
            self.index.push_back(Entry { gseq: g, local, pos: v, len: len as u32, ts: rd64(&hdr, 24) });
            self.data_bytes += len;
            last_g = Some(g);
            local += 1;
            v += sz;
        }
        self.head = v;
        self.next_local = local;
        // Skipped wrap space with no record after it is not part of the ring content.
        if let Some(e) = self.index.back() {
            let end = e.pos + align8(HDR + e.len as u64);
            if end < self.head && self.next_local == e.local + 1 {
                self.head = end;
            }
        } else if local == tail_local {
            self.head = tail_v;
        }
        self.tail = self.index.front().map(|e| e.pos).unwrap_or(self.head);
        self.reclaim = tail_v.min(self.tail);
        self.check_invariants();
        Ok(why)
    }

    /// [count, used (head-reclaim), head, tail, reclaim, tailLocal, nextLocal, firstSeq,
    ///  lastSeq, oldestTs, dataBytes, cap]; -1 for absent values.
    pub fn stats(&self) -> [f64; 12] {
        let f = self.index.front();
        let b = self.index.back();
        [
            self.index.len() as f64,
            (self.head - self.reclaim) as f64,
            self.head as f64,
            self.tail as f64,
            self.reclaim as f64,
            self.tail_local() as f64,
            self.next_local as f64,
            f.map_or(-1.0, |e| e.gseq as f64),
            b.map_or(-1.0, |e| e.gseq as f64),
            f.map_or(-1.0, |e| e.ts as f64),
            self.data_bytes as f64,
            self.cap as f64,
        ]
    }
}

pub fn file_store(fd: i32, base: u64) -> Store {
    Store::File { f: ManuallyDrop::new(unsafe { File::from_raw_fd(fd) }), base }
}
