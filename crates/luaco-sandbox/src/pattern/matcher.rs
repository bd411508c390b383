//! The matcher: Lua 5.4's pattern language over bytes, explored in the
//! same order as Lua's own so that it finds the same match and raises the
//! same error at the same point, with every step counted and charged to a
//! [`Meter`].

use super::Meter;

/// Lua's `LUA_MAXCAPTURES`.
pub(crate) const MAX_CAPTURES: usize = 32;
/// Lua's `MAXCCALLS` for the matcher: nested match calls before
/// "pattern too complex".
const MAX_DEPTH: u32 = 200;
/// Steps between two charges to the meter: small enough that a runaway
/// pattern is stopped within microseconds of its budget, large enough that
/// the meter's cost vanishes beside the matching.
pub(crate) const BATCH: u64 = 1024;
const ESC: u8 = b'%';

/// A capture's length while it is still open.
const UNFINISHED: isize = -1;
/// The length that marks a position capture `()`.
const POSITION: isize = -2;

/// A malformed pattern (or a bad capture reference), as Lua words it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatternError {
    EndsWithEscape,
    MissingBracket,
    MissingFrontierSet,
    MissingBalanceArgs,
    /// `%n` naming a capture that does not exist (yet): Lua's number, so
    /// `%0` in a pattern reports index 0.
    CaptureIndex(i32),
    InvalidPatternCapture,
    UnfinishedCapture,
    TooManyCaptures,
    TooComplex,
}

impl PatternError {
    /// Lua 5.4's message, without the position prefix.
    pub(crate) fn message(self) -> String {
        match self {
            PatternError::EndsWithEscape => "malformed pattern (ends with '%')".into(),
            PatternError::MissingBracket => "malformed pattern (missing ']')".into(),
            PatternError::MissingFrontierSet => "missing '[' after '%f' in pattern".into(),
            PatternError::MissingBalanceArgs => {
                "malformed pattern (missing arguments to '%b')".into()
            }
            PatternError::CaptureIndex(n) => format!("invalid capture index %{n}"),
            PatternError::InvalidPatternCapture => "invalid pattern capture".into(),
            PatternError::UnfinishedCapture => "unfinished capture".into(),
            PatternError::TooManyCaptures => "too many captures".into(),
            PatternError::TooComplex => "pattern too complex".into(),
        }
    }
}

/// Why matching stopped before it had an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    Pattern(PatternError),
    /// The meter refused; its error waits in [`Counter::take_error`]. Kept
    /// out of this type so that the matcher's results stay two words.
    Stopped,
}

impl From<PatternError> for Fail {
    fn from(e: PatternError) -> Self {
        Fail::Pattern(e)
    }
}

type Step = Result<Option<usize>, Fail>;

/// Counts steps and charges them to the meter in batches.
pub(crate) struct Counter<'m> {
    meter: &'m dyn Meter,
    pending: u64,
    error: Option<mlua::Error>,
}

impl<'m> Counter<'m> {
    pub(crate) fn new(meter: &'m dyn Meter) -> Self {
        Counter {
            meter,
            pending: 0,
            error: None,
        }
    }

    /// Adds `steps`, charging the meter once a batch is full.
    #[inline]
    pub(crate) fn add(&mut self, steps: u64) -> Result<(), Fail> {
        self.pending += steps;
        if self.pending >= BATCH {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Charges whatever is pending: at each batch and at the end of a call.
    pub(crate) fn flush(&mut self) -> Result<(), Fail> {
        if self.pending == 0 {
            return Ok(());
        }
        let steps = std::mem::take(&mut self.pending);
        self.meter.charge(steps).map_err(|e| {
            self.error = Some(e);
            Fail::Stopped
        })
    }

    /// The meter's error after a [`Fail::Stopped`].
    pub(crate) fn take_error(&mut self) -> Option<mlua::Error> {
        self.error.take()
    }
}

#[derive(Clone, Copy)]
struct Capture {
    start: usize,
    len: isize,
}

/// One capture's value, as `get_onecapture` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cap {
    /// A substring of the subject, as a byte range.
    Text(usize, usize),
    /// A position capture: a 1-based index into the subject.
    Position(usize),
}

/// Matches one pattern against one subject, at as many start positions as
/// the caller asks for.
pub(crate) struct Matcher<'a, 'm> {
    src: &'a [u8],
    pat: &'a [u8],
    level: usize,
    depth: u32,
    caps: [Capture; MAX_CAPTURES],
    pub(crate) counter: Counter<'m>,
}

impl<'a, 'm> Matcher<'a, 'm> {
    /// A matcher for `pat`, which no longer has its `^` anchor: the
    /// anchor is the caller's business, as in Lua.
    pub(crate) fn new(src: &'a [u8], pat: &'a [u8], meter: &'m dyn Meter) -> Self {
        Matcher {
            src,
            pat,
            level: 0,
            depth: MAX_DEPTH,
            caps: [Capture { start: 0, len: 0 }; MAX_CAPTURES],
            counter: Counter::new(meter),
        }
    }

    /// Tries a match starting exactly at `s`; the end of the match if any.
    pub(crate) fn match_at(&mut self, s: usize) -> Step {
        self.level = 0;
        self.depth = MAX_DEPTH;
        self.do_match(s, 0)
    }

    /// How many values the last match yields: its captures, or the whole
    /// match when there are none and `whole` is wanted (find wants none).
    pub(crate) fn capture_count(&self, whole: bool) -> usize {
        if self.level == 0 && whole {
            1
        } else {
            self.level
        }
    }

    /// Capture `i` of the last match `s..e`; index 0 without captures is
    /// the whole match.
    pub(crate) fn capture(&self, i: usize, s: usize, e: usize) -> Result<Cap, PatternError> {
        if i >= self.level {
            if i != 0 {
                return Err(PatternError::CaptureIndex(i as i32 + 1));
            }
            return Ok(Cap::Text(s, e));
        }
        let cap = self.caps[i];
        match cap.len {
            UNFINISHED => Err(PatternError::UnfinishedCapture),
            POSITION => Ok(Cap::Position(cap.start + 1)),
            len => Ok(Cap::Text(cap.start, cap.start + len as usize)),
        }
    }

    /// The pattern byte at `i`, or NUL past the end: Lua reads its
    /// patterns' terminating NUL in several places, and so must we.
    #[inline]
    fn at(&self, i: usize) -> u8 {
        self.pat.get(i).copied().unwrap_or(0)
    }

    fn do_match(&mut self, mut s: usize, mut p: usize) -> Step {
        if self.depth == 0 {
            return Err(PatternError::TooComplex.into());
        }
        self.depth -= 1;
        self.counter.add(1)?;
        let end = loop {
            if p == self.pat.len() {
                break Some(s);
            }
            match (self.pat[p], self.at(p + 1)) {
                (b'(', b')') => break self.start_capture(s, p + 2, POSITION)?,
                (b'(', _) => break self.start_capture(s, p + 1, UNFINISHED)?,
                (b')', _) => break self.end_capture(s, p + 1)?,
                (b'$', _) if p + 1 == self.pat.len() => break (s == self.src.len()).then_some(s),
                (ESC, b'b') => match self.balance(s, p + 2)? {
                    Some(e) => {
                        s = e;
                        p += 4;
                    }
                    None => break None,
                },
                (ESC, b'f') => {
                    p += 2;
                    if self.at(p) != b'[' {
                        return Err(PatternError::MissingFrontierSet.into());
                    }
                    let ep = self.class_end(p)?;
                    let previous = if s == 0 { 0 } else { self.src[s - 1] };
                    let current = self.src.get(s).copied().unwrap_or(0);
                    if self.in_set(previous, p, ep - 1) || !self.in_set(current, p, ep - 1) {
                        break None;
                    }
                    p = ep;
                }
                (ESC, digit @ b'0'..=b'9') => match self.back_reference(s, digit)? {
                    Some(e) => {
                        s = e;
                        p += 2;
                    }
                    None => break None,
                },
                _ => {
                    let ep = self.class_end(p)?;
                    let suffix = self.at(ep);
                    self.counter.add(1)?;
                    if !self.single(s, p, ep) {
                        if matches!(suffix, b'*' | b'?' | b'-') {
                            p = ep + 1;
                            continue;
                        }
                        break None;
                    }
                    match suffix {
                        b'?' => {
                            if let Some(e) = self.do_match(s + 1, ep + 1)? {
                                break Some(e);
                            }
                            p = ep + 1;
                        }
                        b'+' => break self.max_expand(s + 1, p, ep)?,
                        b'*' => break self.max_expand(s, p, ep)?,
                        b'-' => break self.min_expand(s, p, ep)?,
                        _ => {
                            s += 1;
                            p = ep;
                        }
                    }
                }
            }
        };
        self.depth += 1;
        Ok(end)
    }

    /// The index just past the single-character class at `p`.
    fn class_end(&self, p: usize) -> Result<usize, PatternError> {
        let len = self.pat.len();
        match self.pat[p] {
            ESC if p + 1 >= len => Err(PatternError::EndsWithEscape),
            ESC => Ok(p + 2),
            b'[' => {
                let mut q = p + 1;
                if self.at(q) == b'^' {
                    q += 1;
                }
                // The first byte is taken before looking for ']', so a set
                // may start with ']'.
                loop {
                    if q >= len {
                        return Err(PatternError::MissingBracket);
                    }
                    let b = self.pat[q];
                    q += 1;
                    if b == ESC && q < len {
                        q += 1;
                    }
                    if self.at(q) == b']' {
                        return Ok(q + 1);
                    }
                }
            }
            _ => Ok(p + 1),
        }
    }

    /// Whether the subject byte at `s` matches the class `p..ep`.
    #[inline]
    fn single(&self, s: usize, p: usize, ep: usize) -> bool {
        let Some(&c) = self.src.get(s) else {
            return false;
        };
        match self.pat[p] {
            b'.' => true,
            ESC => class_matches(c, self.pat[p + 1]),
            b'[' => self.in_set(c, p, ep - 1),
            b => b == c,
        }
    }

    /// Whether `c` is in the set that opens at `p` and closes at `close`.
    fn in_set(&self, c: u8, p: usize, close: usize) -> bool {
        let mut q = p + 1;
        let member = if self.at(q) == b'^' {
            q += 1;
            false
        } else {
            true
        };
        while q < close {
            let b = self.pat[q];
            if b == ESC {
                q += 1;
                if class_matches(c, self.at(q)) {
                    return member;
                }
            } else if self.at(q + 1) == b'-' && q + 2 < close {
                if b <= c && c <= self.pat[q + 2] {
                    return member;
                }
                q += 2;
            } else if b == c {
                return member;
            }
            q += 1;
        }
        !member
    }

    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> Step {
        let mut i = 0;
        while self.single(s + i, p, ep) {
            i += 1;
        }
        // The greedy scan is linear: charged in one go.
        self.counter.add(i as u64 + 1)?;
        loop {
            if let Some(e) = self.do_match(s + i, ep + 1)? {
                return Ok(Some(e));
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    fn min_expand(&mut self, mut s: usize, p: usize, ep: usize) -> Step {
        loop {
            if let Some(e) = self.do_match(s, ep + 1)? {
                return Ok(Some(e));
            }
            self.counter.add(1)?;
            if !self.single(s, p, ep) {
                return Ok(None);
            }
            s += 1;
        }
    }

    fn start_capture(&mut self, s: usize, p: usize, len: isize) -> Step {
        if self.level >= MAX_CAPTURES {
            return Err(PatternError::TooManyCaptures.into());
        }
        self.caps[self.level] = Capture { start: s, len };
        self.level += 1;
        let end = self.do_match(s, p)?;
        if end.is_none() {
            self.level -= 1;
        }
        Ok(end)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> Step {
        let open = (0..self.level)
            .rev()
            .find(|&l| self.caps[l].len == UNFINISHED)
            .ok_or(PatternError::InvalidPatternCapture)?;
        self.caps[open].len = (s - self.caps[open].start) as isize;
        let end = self.do_match(s, p)?;
        if end.is_none() {
            self.caps[open].len = UNFINISHED;
        }
        Ok(end)
    }

    /// `%bxy` with `x` and `y` at `p`.
    fn balance(&mut self, s: usize, p: usize) -> Step {
        if p + 1 >= self.pat.len() {
            return Err(PatternError::MissingBalanceArgs.into());
        }
        let (open, close) = (self.pat[p], self.pat[p + 1]);
        if self.src.get(s) != Some(&open) {
            return Ok(None);
        }
        let mut depth = 1usize;
        for (i, &c) in self.src.iter().enumerate().skip(s + 1) {
            if c == close {
                depth -= 1;
                if depth == 0 {
                    self.counter.add((i - s) as u64)?;
                    return Ok(Some(i + 1));
                }
            } else if c == open {
                depth += 1;
            }
        }
        self.counter.add((self.src.len() - s) as u64)?;
        Ok(None)
    }

    /// `%1`..`%9` (and the invalid `%0`): the text of an earlier capture.
    fn back_reference(&mut self, s: usize, digit: u8) -> Step {
        let l = i32::from(digit) - i32::from(b'1');
        if l < 0 || l as usize >= self.level || self.caps[l as usize].len == UNFINISHED {
            return Err(PatternError::CaptureIndex(l + 1).into());
        }
        let cap = self.caps[l as usize];
        // A position capture has no text: Lua's length check fails for it.
        let Ok(len) = usize::try_from(cap.len) else {
            return Ok(None);
        };
        self.counter.add(len as u64)?;
        let rest = &self.src[s..];
        Ok(
            (rest.len() >= len && rest[..len] == self.src[cap.start..cap.start + len])
                .then_some(s + len),
        )
    }
}

/// `%a`, `%d`, ... in the C locale; an uppercase letter is the complement;
/// any other byte stands for itself.
#[inline]
pub(crate) fn class_matches(c: u8, class: u8) -> bool {
    let hit = match class.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        // C's isspace includes the vertical tab, Rust's is_ascii_whitespace not.
        b's' => matches!(c, b' ' | b'\t'..=b'\r'),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        // Deprecated since 5.2, still accepted by 5.4.
        b'z' => c == 0,
        _ => return class == c,
    };
    hit != class.is_ascii_uppercase()
}

/// Whether `pat` has none of the bytes that make a pattern more than a
/// literal: `find` then searches for it plainly.
pub(crate) fn is_literal(pat: &[u8]) -> bool {
    !pat.iter().any(|b| b"^$*+?.([%-".contains(b))
}

/// Where `needle` first occurs in `hay`, charging one step per byte looked
/// at.
pub(crate) fn find_plain(
    hay: &[u8],
    needle: &[u8],
    counter: &mut Counter,
) -> Result<Option<usize>, Fail> {
    let Some((&first, rest)) = needle.split_first() else {
        return Ok(Some(0));
    };
    if needle.len() > hay.len() {
        return Ok(None);
    }
    let last_start = hay.len() - needle.len();
    let mut from = 0;
    while from <= last_start {
        // Scan a window at a time so that a long search is charged as it goes.
        let window_end = (from + 64 * BATCH as usize).min(last_start + 1);
        let Some(i) = find_byte(&hay[from..window_end], first) else {
            counter.add((window_end - from) as u64)?;
            from = window_end;
            continue;
        };
        let at = from + i;
        counter.add((i + needle.len()) as u64)?;
        if hay[at + 1..at + needle.len()] == *rest {
            return Ok(Some(at));
        }
        from = at + 1;
    }
    Ok(None)
}

/// The first `b` in `hay`. Whole blocks are checked with no early exit,
/// which the compiler turns into wide compares; the block that has `b`,
/// and the tail, are searched a word at a time.
fn find_byte(hay: &[u8], b: u8) -> Option<usize> {
    const BLOCK: usize = 128;
    let mut blocks = hay.chunks_exact(BLOCK);
    let mut base = 0;
    for block in &mut blocks {
        let hit = block.iter().fold(0u8, |acc, &c| acc | u8::from(c == b));
        if hit != 0 {
            return find_byte_in_words(block, b).map(|i| base + i);
        }
        base += BLOCK;
    }
    find_byte_in_words(blocks.remainder(), b).map(|i| base + i)
}

/// The first `b` in `hay`, eight bytes at a time.
fn find_byte_in_words(hay: &[u8], b: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let splat = ONES * u64::from(b);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ splat;
        // The lowest high bit set marks the first zero byte of x exactly
        // (borrows only corrupt the bytes above it).
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(base + (zero.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == b)
        .map(|i| base + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Count(Cell<u64>, Cell<u32>);

    impl Meter for Count {
        fn charge(&self, steps: u64) -> mlua::Result<()> {
            self.0.set(self.0.get() + steps);
            self.1.set(self.1.get() + 1);
            Ok(())
        }
    }

    fn first_match(src: &str, pat: &str) -> Result<Option<(usize, usize)>, Fail> {
        let meter = Count(Cell::new(0), Cell::new(0));
        let mut m = Matcher::new(src.as_bytes(), pat.as_bytes(), &meter);
        for s in 0..=src.len() {
            if let Some(e) = m.match_at(s)? {
                return Ok(Some((s, e)));
            }
        }
        Ok(None)
    }

    #[test]
    fn matches_like_lua() {
        assert_eq!(first_match("hello world", "o w"), Ok(Some((4, 7))));
        assert_eq!(first_match("x = (a(b)c)", "%b()"), Ok(Some((4, 11))));
        assert_eq!(
            first_match("THE (quick) fox", "%f[%a]%a+"),
            Ok(Some((0, 3)))
        );
        assert_eq!(first_match("aaab", "a-b"), Ok(Some((0, 4))));
        assert_eq!(
            first_match("abc", "[]"),
            Err(Fail::Pattern(PatternError::MissingBracket))
        );
    }

    #[test]
    fn vertical_tab_is_space() {
        assert!(class_matches(0x0b, b's'));
        assert!(!class_matches(0x0b, b'S'));
        assert!(class_matches(b'!', b'p') && !class_matches(b'a', b'p'));
    }

    #[test]
    fn find_byte_finds_the_first() {
        let hay: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for start in 0..hay.len() {
            for b in [0u8, 7, 128, 255] {
                let hay = &hay[start..];
                assert_eq!(find_byte(hay, b), hay.iter().position(|&c| c == b));
            }
        }
        assert_eq!(find_byte(&[0x80, 0x01], 0x01), Some(1));
    }

    #[test]
    fn steps_are_charged_in_batches() {
        let meter = Count(Cell::new(0), Cell::new(0));
        let src = "a".repeat(5000);
        let mut m = Matcher::new(src.as_bytes(), b"a*b", &meter);
        for s in 0..=src.len() {
            assert_eq!(m.match_at(s), Ok(None));
        }
        let _ = m.counter.flush();
        assert!(meter.0.get() > 1_000_000, "{} steps", meter.0.get());
        assert!(u64::from(meter.1.get()) <= meter.0.get() / BATCH + 1);
    }
}
