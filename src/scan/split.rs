//! split: where each record of a CloudTrail document starts and ends, found without parsing it.
//!
//! A log object is `{"Records":[{…},{…}]}`. Parsing every record to find the next one costs more
//! than inflating it, and only a few percent of records are KMS calls, so the scan locates records
//! structurally, in the manner of simdjson's first stage: for each 64-byte block, bit masks of the
//! quotes, backslashes and braces in it (AVX2 where the CPU has it, a byte loop otherwise — both
//! are tested against each other); escaped quotes are removed, string interiors follow from a
//! prefix XOR of the remaining quotes, and braces outside strings are counted. A record is an
//! object at depth 2. The bytes at depth 1 — between the records — are checked exactly against
//! the envelope's grammar (`"Records"`, `:`, `[`, `,`, `]`, whitespace), so another top-level key,
//! an element that is not an object, unbalanced braces or an unterminated string all end the fast
//! path with [`Unexpected`]; the caller then parses the whole document exactly (or, for a document
//! too large to hold, reports it as not in CloudTrail's layout).
//!
//! What it does not do is validate the inside of a record: that is left to the parser, for the
//! records worth parsing.

use std::ops::Range;

const BLOCK: usize = 64;

/// The bit masks of one 64-byte block (bit i = byte i).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Masks {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
}

fn masks_scalar(block: &[u8; BLOCK]) -> Masks {
    let mut m = Masks::default();
    for (i, &b) in block.iter().enumerate() {
        let bit = 1u64 << i;
        match b {
            b'"' => m.quote |= bit,
            b'\\' => m.backslash |= bit,
            b'{' => m.open |= bit,
            b'}' => m.close |= bit,
            _ => {}
        }
    }
    m
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn masks_avx2(block: &[u8; BLOCK]) -> Masks {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
    };
    // SAFETY: both loads read 32 bytes inside the 64-byte block.
    let (lo, hi) = unsafe {
        (
            _mm256_loadu_si256(block.as_ptr().cast::<__m256i>()),
            _mm256_loadu_si256(block.as_ptr().add(32).cast::<__m256i>()),
        )
    };
    macro_rules! eq {
        ($c:expr) => {{
            let c = _mm256_set1_epi8($c as i8);
            let l = _mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, c)) as u32 as u64;
            let h = _mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, c)) as u32 as u64;
            l | (h << 32)
        }};
    }
    Masks {
        quote: eq!(b'"'),
        backslash: eq!(b'\\'),
        open: eq!(b'{'),
        close: eq!(b'}'),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw")]
#[inline]
fn masks_avx512(block: &[u8; BLOCK]) -> Masks {
    use std::arch::x86_64::{
        __m512i, _mm512_cmpeq_epi8_mask, _mm512_loadu_si512, _mm512_set1_epi8,
    };
    // SAFETY: the load reads the 64 bytes of the block.
    let v = unsafe { _mm512_loadu_si512(block.as_ptr().cast::<__m512i>()) };
    Masks {
        quote: _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'"' as i8)),
        backslash: _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\\' as i8)),
        open: _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'{' as i8)),
        close: _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'}' as i8)),
    }
}

/// [`prefix_xor`] as one carry-less multiply by all ones.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "pclmulqdq")]
#[inline]
fn prefix_xor_clmul(x: u64) -> u64 {
    use std::arch::x86_64::{_mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set_epi64x};
    let r = _mm_clmulepi64_si128(_mm_set_epi64x(0, x as i64), _mm_set_epi64x(0, -1), 0);
    _mm_cvtsi128_si64(r) as u64
}

/// Which instructions the block loop uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Scalar,
    Avx2,
    Avx512,
}

const SCALAR: u8 = 0;
const AVX2: u8 = 1;
const AVX512: u8 = 2;

impl Level {
    fn detect() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let base = has!("pclmulqdq") && has!("popcnt") && has!("bmi1");
            if base && has!("avx512bw") {
                return Level::Avx512;
            }
            if base && has!("avx2") {
                return Level::Avx2;
            }
        }
        Level::Scalar
    }
}

/// The bytes escaped by a backslash (simdjson's branchless odd-run rule); `carry` is 1 when the
/// previous block ended in an unfinished escape.
fn escaped(backslash: u64, carry: &mut u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let backslash = backslash & !*carry;
    let follows_escape = (backslash << 1) | *carry;
    let odd_starts = backslash & !EVEN & !follows_escape;
    let (even_series, overflow) = odd_starts.overflowing_add(backslash);
    *carry = u64::from(overflow);
    (EVEN ^ (even_series << 1)) & follows_escape
}

/// Bit i = XOR of bits 0..=i: the inside of strings, from their opening quotes.
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The document is not in the layout the splitter reads; says what was found where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexpected(pub String);

/// One record found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Its bytes in the buffer (empty when `truncated`).
    pub range: Range<usize>,
    /// It contains a backslash (so it may spell a value with `\u` escapes).
    pub backslash: bool,
    /// Its bytes were let go before it ended because it outgrew the record cap.
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Carry {
    /// All ones when the previous block ended inside a string.
    in_string: u64,
    /// 1 when the previous block ended in an unfinished escape.
    escape: u64,
    /// Braces open outside strings.
    depth: usize,
    last_backslash: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Envelope {
    Before,
    Open,
    Done,
}

/// An incremental splitter: feed it a growing buffer (and tell it where it may forget the front).
#[derive(Debug, Clone)]
pub struct Splitter {
    /// Bytes of the buffer scanned so far.
    pos: usize,
    /// What one block hands the next (kept in registers while scanning).
    carry: Carry,
    envelope: Envelope,
    gap_start: usize,
    record_start: usize,
    truncated: bool,
    records: u64,
    /// The instructions to use (detected; tests force each).
    level: Level,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter::new()
    }
}

fn trim_ws(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(b.len());
    &b[n..]
}

/// `gap` is whitespace and exactly these tokens.
fn gap_is(gap: &[u8], tokens: &[&[u8]]) -> bool {
    let mut rest = gap;
    for t in tokens {
        match trim_ws(rest).strip_prefix(*t) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    trim_ws(rest).is_empty()
}

fn shown(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(24)]).into_owned();
    if b.len() > 24 {
        format!("{s}…")
    } else {
        s
    }
}

impl Splitter {
    pub fn new() -> Splitter {
        static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
        Splitter::with_level(*LEVEL.get_or_init(Level::detect))
    }

    fn with_level(level: Level) -> Splitter {
        Splitter {
            pos: 0,
            carry: Carry::default(),
            envelope: Envelope::Before,
            gap_start: 0,
            record_start: 0,
            truncated: false,
            records: 0,
            level,
        }
    }

    /// Bytes scanned so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The first byte still needed: the start of the open record, or of the bytes between records.
    pub fn keep_from(&self) -> usize {
        if self.carry.depth >= 2 {
            self.record_start
        } else {
            self.gap_start
        }
    }

    /// Inside a record (as opposed to between records).
    pub fn in_record(&self) -> bool {
        self.carry.depth >= 2
    }

    /// Lets go of the open record's bytes scanned so far; it will be reported `truncated`.
    pub fn truncate_record(&mut self) {
        if self.carry.depth >= 2 {
            self.truncated = true;
            self.record_start = self.pos;
        }
    }

    /// The caller dropped the first `n` bytes of its buffer (`n <= keep_from()`).
    pub fn shift(&mut self, n: usize) {
        debug_assert!(n <= self.keep_from());
        self.pos -= n;
        self.gap_start = self.gap_start.saturating_sub(n);
        self.record_start = self.record_start.saturating_sub(n);
        self.carry.last_backslash = self.carry.last_backslash.and_then(|b| b.checked_sub(n));
    }

    /// Scans `buf[pos..]`: whole blocks only, unless `last` (then to the end, which must also be
    /// the end of the document). Calls `on_record` for each record completed, in order.
    pub fn scan(
        &mut self,
        buf: &[u8],
        last: bool,
        mut on_record: impl FnMut(Span),
    ) -> Result<(), Unexpected> {
        let whole = self.pos + (buf.len() - self.pos) / BLOCK * BLOCK;
        self.blocks(buf, whole, &mut on_record)?;
        if !last {
            return Ok(());
        }
        if self.pos < buf.len() {
            // The tail, padded with spaces (which are nothing to the masks).
            let mut padded = buf[self.pos..].to_vec();
            let tail = padded.len();
            padded.resize(BLOCK, b' ');
            let base = self.pos;
            let block: &[u8; BLOCK] = padded[..].try_into().expect("one block");
            let masks = masks_scalar(block);
            let mut c = self.carry;
            self.block::<SCALAR>(&mut c, buf, base, masks, &mut on_record)?;
            self.carry = c;
            self.pos = base + tail;
        }
        self.finish(buf)
    }

    fn finish(&self, buf: &[u8]) -> Result<(), Unexpected> {
        if self.carry.in_string != 0 {
            return Err(Unexpected("unterminated string at the end".into()));
        }
        if self.envelope != Envelope::Done || self.carry.depth != 0 {
            return Err(Unexpected(format!(
                "document ends inside an object (depth {})",
                self.carry.depth
            )));
        }
        let rest = &buf[self.gap_start.min(buf.len())..];
        if !trim_ws(rest).is_empty() {
            return Err(Unexpected(format!(
                "`{}` after the document",
                shown(trim_ws(rest))
            )));
        }
        Ok(())
    }

    fn blocks(
        &mut self,
        buf: &[u8],
        end: usize,
        on_record: &mut impl FnMut(Span),
    ) -> Result<(), Unexpected> {
        match self.level {
            // SAFETY: `level` is only Avx512/Avx2 when the CPU has those features.
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => unsafe { self.blocks_avx512(buf, end, on_record) },
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => unsafe { self.blocks_avx2(buf, end, on_record) },
            _ => self.blocks_with::<SCALAR>(buf, end, on_record),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512bw,avx2,pclmulqdq,popcnt,bmi1")]
    fn blocks_avx512(
        &mut self,
        buf: &[u8],
        end: usize,
        on_record: &mut impl FnMut(Span),
    ) -> Result<(), Unexpected> {
        self.blocks_with::<AVX512>(buf, end, on_record)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,pclmulqdq,popcnt,bmi1")]
    fn blocks_avx2(
        &mut self,
        buf: &[u8],
        end: usize,
        on_record: &mut impl FnMut(Span),
    ) -> Result<(), Unexpected> {
        self.blocks_with::<AVX2>(buf, end, on_record)
    }

    #[inline(always)]
    fn blocks_with<const L: u8>(
        &mut self,
        buf: &[u8],
        end: usize,
        on_record: &mut impl FnMut(Span),
    ) -> Result<(), Unexpected> {
        let mut c = self.carry;
        while self.pos < end {
            let base = self.pos;
            let block: &[u8; BLOCK] = buf[base..base + BLOCK].try_into().expect("a whole block");
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX512/AVX2 are only instantiated from the functions enabling them.
            let masks = unsafe {
                match L {
                    AVX512 => masks_avx512(block),
                    AVX2 => masks_avx2(block),
                    _ => masks_scalar(block),
                }
            };
            #[cfg(not(target_arch = "x86_64"))]
            let masks = masks_scalar(block);
            let done = self.block::<L>(&mut c, buf, base, masks, on_record);
            self.pos = base + BLOCK;
            if done.is_err() {
                self.carry = c;
                return done;
            }
        }
        self.carry = c;
        Ok(())
    }

    #[inline(always)]
    fn block<const L: u8>(
        &mut self,
        c: &mut Carry,
        buf: &[u8],
        base: usize,
        m: Masks,
        on_record: &mut impl FnMut(Span),
    ) -> Result<(), Unexpected> {
        let escaped = if m.backslash == 0 && c.escape == 0 {
            0
        } else {
            escaped(m.backslash, &mut c.escape)
        };
        if m.backslash != 0 {
            c.last_backslash = Some(base + 63 - m.backslash.leading_zeros() as usize);
        }
        let quotes = m.quote & !escaped;
        #[cfg(target_arch = "x86_64")]
        let inside = if L == SCALAR {
            prefix_xor(quotes)
        } else {
            // SAFETY: only instantiated with L != SCALAR where pclmulqdq is enabled.
            unsafe { prefix_xor_clmul(quotes) }
        };
        #[cfg(not(target_arch = "x86_64"))]
        let inside = prefix_xor(quotes);
        let inside = inside ^ c.in_string;
        c.in_string = ((inside as i64) >> 63) as u64;
        let open = m.open & !inside;
        let close = m.close & !inside;
        let closes = close.count_ones() as usize;
        if c.depth >= 2 + closes {
            // Never back to the records' level in this block: nothing starts or ends here. (Most
            // blocks: one well-predicted branch, whether or not the block holds braces.)
            c.depth = c.depth + open.count_ones() as usize - closes;
            return Ok(());
        }
        let mut bits = open | close;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let p = base + i;
            if open >> i & 1 == 1 {
                match c.depth {
                    0 => self.document_opens(buf, p)?,
                    1 => self.record_opens(buf, p)?,
                    _ => {}
                }
                c.depth += 1;
            } else {
                match c.depth {
                    0 => return Err(Unexpected(format!("`}}` outside the document at {p}"))),
                    1 => self.document_closes(buf, p)?,
                    2 => {
                        self.records += 1;
                        let span = Span {
                            range: if self.truncated {
                                p + 1..p + 1
                            } else {
                                self.record_start..p + 1
                            },
                            backslash: c.last_backslash.is_some_and(|b| b >= self.record_start),
                            truncated: self.truncated,
                        };
                        self.truncated = false;
                        self.gap_start = p + 1;
                        on_record(span);
                    }
                    _ => {}
                }
                c.depth -= 1;
            }
        }
        Ok(())
    }

    fn document_opens(&mut self, buf: &[u8], p: usize) -> Result<(), Unexpected> {
        let gap = &buf[self.gap_start..p];
        if self.envelope != Envelope::Before || !gap_is(gap, &[]) {
            return Err(Unexpected(format!(
                "`{}` before an object at {p}",
                shown(gap)
            )));
        }
        self.envelope = Envelope::Open;
        self.gap_start = p + 1;
        Ok(())
    }

    fn record_opens(&mut self, buf: &[u8], p: usize) -> Result<(), Unexpected> {
        let gap = &buf[self.gap_start..p];
        let ok = if self.records == 0 {
            gap_is(gap, &[b"\"Records\"", b":", b"["])
        } else {
            gap_is(gap, &[b","])
        };
        if !ok {
            return Err(Unexpected(format!(
                "`{}` before record {} at byte {p}",
                shown(trim_ws(gap)),
                self.records + 1
            )));
        }
        self.record_start = p;
        Ok(())
    }

    fn document_closes(&mut self, buf: &[u8], p: usize) -> Result<(), Unexpected> {
        let gap = &buf[self.gap_start..p];
        let ok = if self.records == 0 {
            gap_is(gap, &[b"\"Records\"", b":", b"[", b"]"])
        } else {
            gap_is(gap, &[b"]"])
        };
        if !ok {
            return Err(Unexpected(format!(
                "`{}` where the Records array should end, at byte {p}",
                shown(trim_ws(gap))
            )));
        }
        self.envelope = Envelope::Done;
        self.gap_start = p + 1;
        Ok(())
    }
}

/// Splits a whole document; `Err` when it is not in the envelope's layout.
pub fn split(json: &[u8], on_record: impl FnMut(Span)) -> Result<(), Unexpected> {
    Splitter::new().scan(json, true, on_record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The byte-at-a-time reference: a JSON lexer's view of strings and braces.
    fn reference(json: &[u8]) -> Option<Vec<Range<usize>>> {
        let v: serde_json::Value = serde_json::from_slice(json).ok()?;
        let arr = v.as_object()?.get("Records")?.as_array()?;
        if v.as_object()?.len() != 1 || !arr.iter().all(|r| r.is_object()) {
            return None;
        }
        let (mut depth, mut in_str, mut esc, mut start) = (0usize, false, false, 0);
        let mut out = Vec::new();
        for (i, &b) in json.iter().enumerate() {
            if in_str {
                match (esc, b) {
                    (true, _) => esc = false,
                    (false, b'\\') => esc = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' => {
                    depth += 1;
                    if depth == 2 {
                        start = i;
                    }
                }
                b'}' => {
                    if depth == 2 {
                        out.push(start..i + 1);
                    }
                    depth -= 1;
                }
                _ => {}
            }
        }
        Some(out)
    }

    fn spans(json: &[u8], level: Level, chunk: usize) -> Result<Vec<Range<usize>>, Unexpected> {
        let mut s = Splitter::with_level(level);
        let mut out = Vec::new();
        let mut end = 0;
        while end < json.len() {
            end = (end + chunk).min(json.len());
            s.scan(&json[..end], end == json.len(), |sp| out.push(sp.range))?;
        }
        if json.is_empty() {
            s.scan(json, true, |sp| out.push(sp.range))?;
        }
        Ok(out)
    }

    /// The levels this CPU can run: all of them are checked against the reference.
    fn levels() -> Vec<Level> {
        match Level::detect() {
            Level::Avx512 => vec![Level::Scalar, Level::Avx2, Level::Avx512],
            Level::Avx2 => vec![Level::Scalar, Level::Avx2],
            Level::Scalar => vec![Level::Scalar],
        }
    }

    fn check(json: &[u8]) {
        let want = reference(json);
        for level in levels() {
            for chunk in [1, 63, 64, 100, usize::MAX / 2] {
                let got = spans(json, level, chunk).ok();
                assert_eq!(
                    got,
                    want,
                    "{level:?}, chunk {chunk}: {}",
                    String::from_utf8_lossy(json)
                );
            }
        }
    }

    #[test]
    fn masks_agree() {
        let block: [u8; 64] = std::array::from_fn(|i| b"a\"\\{}b"[i * 7 % 6]);
        let scalar = masks_scalar(&block);
        assert_eq!(scalar.quote.count_ones() + scalar.open.count_ones(), 22);
        // SAFETY: each is called only where the CPU has it.
        #[cfg(target_arch = "x86_64")]
        for level in levels() {
            match level {
                Level::Avx2 => assert_eq!(unsafe { masks_avx2(&block) }, scalar),
                Level::Avx512 => {
                    assert_eq!(unsafe { masks_avx512(&block) }, scalar);
                    for x in [0u64, 1, 0x8000_0000_0000_0001, 0xdead_beef_f00d_cafe] {
                        assert_eq!(unsafe { prefix_xor_clmul(x) }, prefix_xor(x));
                    }
                }
                Level::Scalar => {}
            }
        }
    }

    #[test]
    fn hand_worked_documents() {
        for doc in [
            r#"{"Records":[]}"#,
            r#" { "Records" : [ ] } "#,
            r#"{"Records":[{"a":"}"},{"b":{"c":"\"}{"}}]}"#,
            r#"{"Records":[{"a":"\\"},{"b":"\\\"{"}]}"#,
            r#"{"Records":[{},{} , {"x":[{"y":{}}]}]}"#,
        ] {
            check(doc.as_bytes());
            assert!(reference(doc.as_bytes()).is_some(), "{doc}");
        }
        // Not the envelope: the reference says None and so must the splitter.
        for doc in [
            r#"{"Records":[1,{}]}"#,
            r#"{"Records":[{}],"More":{}}"#,
            r#"{"Other":[{}]}"#,
            r#"{"Records":[{}]"#,
            r#"{"Records":[{"a":"}]}"#,
            r#"{"Records":[{}]}{}"#,
            r#"{"Records":[{}]} x"#,
            r#"[]"#,
            r#""#,
        ] {
            assert_eq!(reference(doc.as_bytes()), None, "{doc}");
            check(doc.as_bytes());
        }
    }

    #[test]
    fn records_crossing_blocks_and_long_backslash_runs() {
        let mut doc = String::from(r#"{"Records":["#);
        for i in 0..50 {
            if i > 0 {
                doc.push(',');
            }
            let slashes = "\\\\".repeat(i % 40);
            doc.push_str(&format!(
                r#"{{"i":{i},"s":"{slashes}\"{{{}","n":{{"m":"{}"}}}}"#,
                "x".repeat(i * 7),
                "}".repeat(i % 3)
            ));
        }
        doc.push_str("]}");
        let want = reference(doc.as_bytes()).expect("valid");
        assert_eq!(want.len(), 50);
        check(doc.as_bytes());
    }

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("{".to_string()),
            Just("}".to_string()),
            Just("\"".to_string()),
            Just("\\".to_string()),
            Just("\\\"".to_string()),
            Just("\\\\".to_string()),
            Just(",".to_string()),
            Just(":".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            "[a-z ]{1,70}",
        ]
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            proptest::collection::vec(piece(), 0..8).prop_map(|v| v.concat().into()),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map(
                    proptest::collection::vec(piece(), 0..4).prop_map(|v| v.concat()),
                    inner,
                    0..5
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Valid documents: the splitter finds exactly the reference's records, in any chunking.
        #[test]
        fn splits_like_a_lexer(records in proptest::collection::vec(
            proptest::collection::btree_map("[a-zA-Z{}\"\\\\]{0,6}", json_value(), 0..6), 0..6)
        ) {
            let doc = serde_json::json!({ "Records": records });
            check(serde_json::to_string(&doc).unwrap().as_bytes());
            check(serde_json::to_string_pretty(&doc).unwrap().as_bytes());
        }

        /// Arbitrary bytes: never a panic, and never a split the reference disagrees with.
        #[test]
        fn junk_is_refused_or_split_correctly(pieces in proptest::collection::vec(piece(), 0..40)) {
            let doc = format!(r#"{{"Records":[{}]}}"#, pieces.concat());
            let got = spans(doc.as_bytes(), Level::detect(), 64).ok();
            if let Some(want) = reference(doc.as_bytes()) {
                prop_assert_eq!(got, Some(want));
            }
        }
    }
}
