//! One pass over a reply: its JSON grammar (exactly what `JSON.parse` accepts), its UTF-8, and
//! the two fields that make it a Blender response, checked incrementally as the bytes arrive.
//!
//! [`Validator::feed`] is given the growing buffer after every read and resumes where it
//! stopped, so every byte is examined once, right after the read that brought it (still in the
//! cache), and a reply is known valid the moment its last byte is in. For bare-JSON framing the
//! same pass finds where the reply ends (`framing::json`); for length-prefixed framing it runs
//! over the body (`framing::length_prefixed`).
//!
//! What is accepted, as `JSON.parse` does: any nesting depth (the stack is a bit per level, on
//! the heap, bounded by the reply size), numbers of any magnitude (`1e400`), lone UTF-16
//! surrogate escapes (`"\udce9"`) anywhere; only space, tab, LF and CR as whitespace; no raw
//! control character inside a string. What makes it a Blender response: a JSON object whose
//! last `status` is `"success"` or `"error"` (escapes decoded), and whose last `message`, if
//! any, is a string.
//!
//! Two speeds, one judge. The byte-by-byte scanner here is the reference: every byte it reads
//! it checks, and it alone reports faults. Two fast lanes skip what it would only confirm, in
//! 64-byte blocks classified at once (`blocks.rs`, stage one; vector code in `simd.rs`, chosen
//! per CPU, a portable kernel everywhere else):
//! - the body of a long string, simple escapes included (`walk.rs`, `skip_string`): a screenshot,
//!   printed JSON;
//! - whole blocks of structure two levels deep or more, where the Blender checks have nothing to
//!   look at (`walk.rs`, stage two): each block's numbers and literals checked over masks
//!   (`runs.rs`) and its grammar as a rule on neighbours, one addition per kind of thing
//!   (`grammar.rs`), with no step per event; a block those checks do not take whole goes through
//!   an event loop instead (the grammar event by event, numbers and literals where they stand).
//!
//! Both hand back to the scanner, in its own state, before anything they do not take whole (a
//! control character in a string, non-ASCII, a `\u` escape, a byte the grammar does not allow,
//! a token cut by the buffer's end), so a bad byte is reported at the same offset with the same
//! fault whichever lane reached it, and whichever kernel classified it. A construct cut by the
//! end of the buffer (an escape, a UTF-8 sequence, `true`) is checked as far as it goes and read
//! again whole on the next call: at most 6 bytes are looked at twice (less than a block when a
//! fast lane stopped short of the buffer's end).

use std::fmt;

mod blocks;
mod classes;
mod grammar;
mod runs;
mod simd;
mod tokens;
mod walk;

use tokens::{escape, is_ws, literal, number, short_string, stops_plain, unescaped, utf8_char, Num, NumStep, Step};
use walk::{skip_string, Handback};

/// The name of the stage-one kernel this process runs (`avx2`, `sse2`, `neon` or `portable`),
/// for tests and measurements; `BLENDER_MCP_POOL_SCAN_KERNEL` picks another one this CPU runs.
pub fn kernel_name() -> &'static str {
    blocks::kernel_name()
}

/// The names of every stage-one kernel this CPU runs, the portable one last (for tests and
/// measurements).
pub fn kernel_names() -> Vec<&'static str> {
    blocks::kernel_names()
}

/// Runs `f` with the stage-one kernel called `name` on this thread, to test or measure each;
/// `None` if this CPU does not run it. Not for production use: the best kernel is the default.
pub fn with_kernel<R>(name: &str, f: impl FnOnce() -> R) -> Option<R> {
    blocks::with_kernel(name, f)
}

/// Why bytes are not a valid reply, found at a given byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The bytes are not UTF-8.
    Utf8,
    /// The bytes are not JSON; this is what the byte was found instead of.
    Json(Expected),
    /// The first value is not an object.
    NotAnObject,
}

/// What the grammar allowed where an invalid byte was found (for the error message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A value.
    Value,
    /// A string key, or `}` right after `{`.
    Key,
    /// `:` after a key.
    Colon,
    /// `,` or the end of the enclosing object or array.
    CommaOrClose,
    /// A digit in a number.
    Digit,
    /// The rest of `true`, `false` or `null`.
    Literal,
    /// A valid escape after `\`.
    Escape,
    /// A hex digit of a `\u` escape.
    Hex,
    /// A string's characters (a raw control character was found).
    StringChar,
    /// Whitespace only, after the reply.
    End,
    /// More of the value: the message ended inside it.
    More,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expected::Value => "expected a value",
            Expected::Key => "expected a string key",
            Expected::Colon => "expected ':'",
            Expected::CommaOrClose => "expected ',' or the end of the object or array",
            Expected::Digit => "expected a digit",
            Expected::Literal => "expected true, false or null",
            Expected::Escape => "invalid escape",
            Expected::Hex => "expected a hex digit in \\u escape",
            Expected::StringChar => "control character in a string",
            Expected::End => "trailing characters after the reply",
            Expected::More => "the message ended inside the value",
        })
    }
}

/// Why a valid JSON object is not a Blender response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotBlender {
    /// No `status` field.
    NoStatus,
    /// The last `status` is not `"success"` or `"error"`.
    BadStatus,
    /// The last `message` is not a string.
    MessageNotString,
}

impl NotBlender {
    /// The error message's wording.
    pub fn message(self) -> &'static str {
        match self {
            NotBlender::NoStatus => "Reply has no status field",
            NotBlender::BadStatus => "Reply status is not \"success\" or \"error\"",
            NotBlender::MessageNotString => "Reply message is not a string",
        }
    }
}

/// What a complete, valid reply was found to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Every byte is ASCII (so also Latin-1: JavaScript can use it as it is).
    pub ascii: bool,
}

/// How far the validator got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Only whitespace so far.
    Empty,
    /// A valid start of a reply; more must come.
    More,
    /// The reply's object opened at `start` and closed just before `end`.
    Done { start: usize, end: usize },
    /// The byte at `at` cannot continue a reply.
    Bad { at: usize, fault: Fault },
}

/// What the grammar expects at the next byte outside a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Leading whitespace, then `{`.
    Start,
    /// Just after `{`: a key or `}`.
    KeyOrClose,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After `:`, or `,` in an array: a value.
    Value,
    /// Just after `[`: a value or `]`.
    ValueOrClose,
    /// After a value: `,` or the end of the enclosing container.
    CommaOrClose,
    /// The object ended.
    Done,
}

/// A token in progress at the resume point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    None,
    /// Inside a string (past its opening quote).
    Str(Role),
    /// Inside a number.
    Num(Num),
}

/// What a string is, for the Blender checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Nothing to decode.
    Plain,
    /// A key of the reply object: decoded into `word`, to spot `status` and `message`.
    Key,
    /// The value of `status`: decoded into `word`.
    Status,
}

/// The field of the reply object whose value comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Other,
    Status,
    Message,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Missing,
    Good,
    Bad,
}

/// The first 8 decoded bytes of a short string (all that is needed to spot the few words the
/// checks look for); `len` 9 means longer, or not ASCII.
#[derive(Debug, Clone, Copy)]
struct Word {
    bytes: [u8; 8],
    len: u8,
}

impl Word {
    const OVER: u8 = 9;

    fn new() -> Self {
        Word { bytes: [0; 8], len: 0 }
    }

    fn push(&mut self, b: u8) {
        if (self.len as usize) < self.bytes.len() {
            self.bytes[self.len as usize] = b;
            self.len += 1;
        } else {
            self.len = Self::OVER;
        }
    }

    fn spoil(&mut self) {
        self.len = Self::OVER;
    }

    fn is(&self, word: &[u8]) -> bool {
        self.len != Self::OVER && &self.bytes[..self.len as usize] == word
    }

    fn spoiled(&self) -> bool {
        self.len == Self::OVER
    }
}

/// Open objects and arrays, a bit each (1 = object), the first 64 levels without allocating.
#[derive(Debug, Clone, Default)]
struct Nesting {
    depth: usize,
    low: u64,
    high: Vec<u64>,
}

impl Nesting {
    fn push(&mut self, object: bool) {
        let d = self.depth;
        if d < 64 {
            self.low = (self.low & !(1 << d)) | (u64::from(object) << d);
        } else {
            let (word, bit) = ((d - 64) / 64, (d - 64) % 64);
            if word == self.high.len() {
                self.high.push(0);
            }
            self.high[word] = (self.high[word] & !(1 << bit)) | (u64::from(object) << bit);
        }
        self.depth += 1;
    }

    /// Whether the innermost open container is an object (the depth is at least 1).
    fn top_is_object(&self) -> bool {
        let d = self.depth - 1;
        if d < 64 {
            self.low >> d & 1 == 1
        } else {
            self.high[(d - 64) / 64] >> ((d - 64) % 64) & 1 == 1
        }
    }

    fn pop(&mut self) {
        self.depth -= 1;
    }
}

/// The incremental validator of one reply. See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Validator {
    /// Where to resume: every byte before it has been checked.
    pos: usize,
    expect: Expect,
    tok: Tok,
    nesting: Nesting,
    /// Offset of the reply's `{`.
    start: usize,
    /// The reply object's field whose value comes next.
    field: Field,
    word: Word,
    status: Status,
    message_not_string: bool,
    ascii: bool,
    /// The block walk ([`walk`]) hands back at a byte the scanner must read itself: it is not
    /// called again before this offset.
    walk_from: usize,
}

impl Default for Validator {
    fn default() -> Self {
        Self::new()
    }
}

impl Validator {
    pub(crate) fn new() -> Self {
        Validator {
            pos: 0,
            expect: Expect::Start,
            tok: Tok::None,
            nesting: Nesting::default(),
            start: 0,
            field: Field::Other,
            word: Word::new(),
            status: Status::Missing,
            message_not_string: false,
            ascii: true,
            walk_from: 0,
        }
    }

    /// Forgets everything (keeping the nesting stack's allocation, if any).
    pub(crate) fn reset(&mut self) {
        let mut high = std::mem::take(&mut self.nesting.high);
        high.clear();
        *self = Validator::new();
        self.nesting.high = high;
    }

    /// Offset of the reply's `{` (valid once [`Validator::started`]).
    pub(crate) fn start(&self) -> usize {
        self.start
    }

    /// Whether the reply's `{` has been seen.
    pub(crate) fn started(&self) -> bool {
        self.expect != Expect::Start
    }

    /// Whether the reply's object has closed.
    pub(crate) fn done(&self) -> bool {
        self.expect == Expect::Done
    }

    /// The Blender checks of a reply whose object has closed.
    pub(crate) fn response(&self) -> Result<Checked, NotBlender> {
        match self.status {
            Status::Missing => Err(NotBlender::NoStatus),
            Status::Bad => Err(NotBlender::BadStatus),
            Status::Good if self.message_not_string => Err(NotBlender::MessageNotString),
            Status::Good => Ok(Checked { ascii: self.ascii }),
        }
    }

    /// Examines the bytes of `buf` not examined yet. `buf` must be the buffer of earlier calls,
    /// grown at the end, since the last reset. After `Done` or `Bad` the answer is final: the
    /// caller must not call again before a reset.
    pub(crate) fn feed(&mut self, buf: &[u8]) -> Progress {
        if self.expect == Expect::Done {
            return Progress::Done { start: self.start, end: self.pos };
        }
        let mut i = self.pos;
        // A token cut by the end of the previous buffer.
        match std::mem::replace(&mut self.tok, Tok::None) {
            Tok::None => {}
            Tok::Str(role) => match self.whole_string(buf, i, role) {
                Ok(j) => i = j,
                Err(progress) => return progress,
            },
            Tok::Num(num) => match number(buf, i, num) {
                NumStep::Next(j) => {
                    i = j;
                    self.expect = Expect::CommaOrClose;
                }
                NumStep::More(j, num) => return self.more(j, Tok::Num(num)),
                NumStep::Bad(at) => return Progress::Bad { at, fault: Fault::Json(Expected::Digit) },
            },
        }
        self.run(buf, i)
    }

    /// The main loop, from `i`, outside any token.
    fn run(&mut self, buf: &[u8], mut i: usize) -> Progress {
        let n = buf.len();
        let mut expect = self.expect;
        // Saves the state and returns `$progress`.
        macro_rules! leave {
            ($progress:expr) => {{
                self.expect = expect;
                return $progress;
            }};
        }
        loop {
            while i < n && is_ws(buf[i]) {
                i += 1;
            }
            if i == n {
                self.pos = i;
                leave!(if expect == Expect::Start { Progress::Empty } else { Progress::More });
            }
            // Two levels deep, where the Blender checks have nothing to look at, whole blocks go
            // through the walk (stage two), which hands back here at anything it does not take.
            if self.nesting.depth >= 2 && i >= self.walk_from && n - i >= 64 {
                self.expect = expect;
                i = match self.walk(buf, i) {
                    Handback::At(j) => j,
                    Handback::InString(j) => match self.whole_string(buf, j, Role::Plain) {
                        Ok(j) => j,
                        Err(progress) => return progress,
                    },
                };
                expect = self.expect;
                continue;
            }
            let b = buf[i];
            match expect {
                Expect::Value | Expect::ValueOrClose => {
                    if b == b']' && expect == Expect::ValueOrClose {
                        match self.close(i) {
                            Some(done) => return done,
                            None => expect = Expect::CommaOrClose,
                        }
                        i += 1;
                        continue;
                    }
                    // A member value of the reply object itself: the Blender checks.
                    let mut role = Role::Plain;
                    if self.nesting.depth == 1 {
                        match self.field {
                            Field::Status if b == b'"' => {
                                role = Role::Status;
                                self.word = Word::new();
                            }
                            Field::Status => self.status = Status::Bad,
                            Field::Message => self.message_not_string = b != b'"',
                            Field::Other => {}
                        }
                    }
                    match b {
                        b'"' => {
                            if role == Role::Plain {
                                if let Some(j) = short_string(buf, i + 1) {
                                    i = j;
                                    expect = Expect::CommaOrClose;
                                    continue;
                                }
                            }
                            self.expect = expect;
                            match self.whole_string(buf, i + 1, role) {
                                Ok(j) => {
                                    i = j;
                                    expect = self.expect;
                                }
                                Err(progress) => return progress,
                            }
                        }
                        b'{' => {
                            self.nesting.push(true);
                            expect = Expect::KeyOrClose;
                            i += 1;
                        }
                        b'[' => {
                            self.nesting.push(false);
                            expect = Expect::ValueOrClose;
                            i += 1;
                        }
                        b'-' | b'0'..=b'9' => {
                            let num = match b {
                                b'-' => Num::Minus,
                                b'0' => Num::Zero,
                                _ => Num::Int,
                            };
                            match number(buf, i + 1, num) {
                                NumStep::Next(j) => {
                                    i = j;
                                    expect = Expect::CommaOrClose;
                                }
                                NumStep::More(j, num) => {
                                    self.expect = expect;
                                    return self.more(j, Tok::Num(num));
                                }
                                NumStep::Bad(at) => return Progress::Bad { at, fault: Fault::Json(Expected::Digit) },
                            }
                        }
                        b't' | b'f' | b'n' => {
                            let word: &[u8] = match b {
                                b't' => b"true",
                                b'f' => b"false",
                                _ => b"null",
                            };
                            match literal(buf, i, word) {
                                Step::Next(j) => {
                                    i = j;
                                    expect = Expect::CommaOrClose;
                                }
                                // Read again from its first letter next time.
                                Step::More(j) => {
                                    self.expect = expect;
                                    return self.more(j, Tok::None);
                                }
                                Step::Bad(at, fault) => return Progress::Bad { at, fault },
                            }
                        }
                        _ => return Progress::Bad { at: i, fault: Fault::Json(Expected::Value) },
                    }
                }
                Expect::CommaOrClose => match b {
                    b',' => {
                        expect = if self.nesting.top_is_object() { Expect::Key } else { Expect::Value };
                        i += 1;
                    }
                    b'}' | b']' if (b == b'}') == self.nesting.top_is_object() => {
                        match self.close(i) {
                            Some(done) => return done,
                            None => expect = Expect::CommaOrClose,
                        }
                        i += 1;
                    }
                    _ => return Progress::Bad { at: i, fault: Fault::Json(Expected::CommaOrClose) },
                },
                Expect::KeyOrClose | Expect::Key => match b {
                    b'"' => {
                        let role = if self.nesting.depth == 1 { Role::Key } else { Role::Plain };
                        if role == Role::Key {
                            self.word = Word::new();
                        } else if let Some(j) = short_string(buf, i + 1) {
                            // The usual `"key": ` in one go.
                            i = j;
                            while i < n && is_ws(buf[i]) {
                                i += 1;
                            }
                            if i < n && buf[i] == b':' {
                                i += 1;
                                expect = Expect::Value;
                            } else {
                                expect = Expect::Colon;
                            }
                            continue;
                        }
                        self.expect = expect;
                        match self.whole_string(buf, i + 1, role) {
                            Ok(j) => {
                                i = j;
                                expect = self.expect;
                            }
                            Err(progress) => return progress,
                        }
                    }
                    b'}' if expect == Expect::KeyOrClose => {
                        match self.close(i) {
                            Some(done) => return done,
                            None => expect = Expect::CommaOrClose,
                        }
                        i += 1;
                    }
                    _ => return Progress::Bad { at: i, fault: Fault::Json(Expected::Key) },
                },
                Expect::Colon => {
                    if b != b':' {
                        return Progress::Bad { at: i, fault: Fault::Json(Expected::Colon) };
                    }
                    expect = Expect::Value;
                    i += 1;
                }
                Expect::Start => {
                    if b != b'{' {
                        return Progress::Bad { at: i, fault: Fault::NotAnObject };
                    }
                    self.start = i;
                    self.nesting.push(true);
                    expect = Expect::KeyOrClose;
                    i += 1;
                }
                Expect::Done => unreachable!("feed returns at once once the reply is done"),
            }
        }
    }

    /// Saves the resume point `at` (inside `tok`) and asks for more bytes.
    fn more(&mut self, at: usize, tok: Tok) -> Progress {
        self.pos = at;
        self.tok = tok;
        Progress::More
    }

    /// Closes the container whose closing bracket is at `i`; `Some(Done)` if it was the reply.
    fn close(&mut self, i: usize) -> Option<Progress> {
        self.nesting.pop();
        if self.nesting.depth == 0 {
            self.expect = Expect::Done;
            self.pos = i + 1;
            return Some(Progress::Done { start: self.start, end: i + 1 });
        }
        self.expect = Expect::CommaOrClose;
        None
    }

    /// The rest of a string from `i` (past its opening quote, or where a cut one stopped), as
    /// one step: `Ok` past its closing quote, `self.expect` moved on ([`Self::end_string`]);
    /// or the progress to return (more bytes needed, the string saved as the token in
    /// progress; or the bad byte).
    #[inline]
    fn whole_string(&mut self, buf: &[u8], i: usize, role: Role) -> Result<usize, Progress> {
        match self.string(buf, i, role) {
            Step::Next(j) => {
                self.end_string(role);
                Ok(j)
            }
            Step::More(j) => Err(self.more(j, Tok::Str(role))),
            Step::Bad(at, fault) => Err(Progress::Bad { at, fault }),
        }
    }

    /// A string ended: a key now wants its `:`, a value its `,` or close.
    fn end_string(&mut self, role: Role) {
        match role {
            Role::Key => {
                self.field = if self.word.is(b"status") {
                    Field::Status
                } else if self.word.is(b"message") {
                    Field::Message
                } else {
                    Field::Other
                };
                self.expect = Expect::Colon;
            }
            Role::Plain if matches!(self.expect, Expect::KeyOrClose | Expect::Key) => self.expect = Expect::Colon,
            Role::Plain => self.expect = Expect::CommaOrClose,
            Role::Status => {
                self.status =
                    if self.word.is(b"success") || self.word.is(b"error") { Status::Good } else { Status::Bad };
                self.expect = Expect::CommaOrClose;
            }
        }
    }

    /// Scans a string's body from `i` to just past its closing quote.
    fn string(&mut self, buf: &[u8], mut i: usize, role: Role) -> Step {
        let n = buf.len();
        let decode = role != Role::Plain;
        // Short strings (keys, names) end within a few bytes: look at those first, unless the
        // string has escapes (printed JSON has one every few bytes), which the skip takes too.
        let mut window = 16;
        loop {
            if !decode || self.word.spoiled() {
                let short = (i + window).min(n);
                while i < short && !stops_plain(buf[i]) {
                    i += 1;
                }
                if i == short {
                    i = skip_string(buf, i);
                    // The bytes short of a whole block.
                    while i < n && !stops_plain(buf[i]) {
                        i += 1;
                    }
                }
            }
            let Some(&b) = buf.get(i) else { return Step::More(i) };
            match b {
                b'"' => return Step::Next(i + 1),
                b'\\' => match escape(buf, i) {
                    Step::Next(j) => {
                        window = 0;
                        if decode {
                            // A decoded unit past ASCII never spells a word the checks want.
                            match unescaped(buf, i) {
                                Some(u) => self.word.push(u),
                                None => self.word.spoil(),
                            }
                        }
                        i = j;
                    }
                    other => return other,
                },
                0x00..=0x1f => return Step::Bad(i, Fault::Json(Expected::StringChar)),
                0x80..=0xff => match utf8_char(buf, i) {
                    Step::Next(j) => {
                        self.ascii = false;
                        if decode {
                            self.word.spoil();
                        }
                        i = j;
                    }
                    other => return other,
                },
                _ => {
                    // Only reached while decoding (the skip stops at nothing else).
                    self.word.push(b);
                    i += 1;
                }
            }
            debug_assert!(i <= n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(bytes: &[u8]) -> Progress {
        Validator::new().feed(bytes)
    }

    #[test]
    fn the_nesting_stack_remembers_past_64_levels() {
        let mut s = Nesting::default();
        let kinds: Vec<bool> = (0..300).map(|i| i % 3 == 0).collect();
        for &k in &kinds {
            s.push(k);
        }
        for &k in kinds.iter().rev() {
            assert_eq!(s.top_is_object(), k);
            s.pop();
        }
    }

    #[test]
    fn a_construct_cut_by_the_buffer_end_is_checked_as_far_as_it_goes() {
        assert_eq!(whole(br#"{"a":"\u00"#), Progress::More);
        assert_eq!(whole(br#"{"a":"\u0g"#), Progress::Bad { at: 9, fault: Fault::Json(Expected::Hex) });
        assert_eq!(whole(b"{\"a\":\"\xe2\x82"), Progress::More);
        assert_eq!(whole(b"{\"a\":\"\xe2\x41"), Progress::Bad { at: 7, fault: Fault::Utf8 });
        assert_eq!(whole(br#"{"a":tr"#), Progress::More);
        assert_eq!(whole(br#"{"a":tx"#), Progress::Bad { at: 6, fault: Fault::Json(Expected::Literal) });
    }

    #[test]
    fn the_checks_see_through_escapes_and_take_the_last_duplicate() {
        let mut v = Validator::new();
        assert!(matches!(v.feed(br#"{"st\u0061tus":"err\u006fr","message":1,"message":"m"}"#), Progress::Done { .. }));
        assert_eq!(v.response(), Ok(Checked { ascii: true }));
        let mut v = Validator::new();
        assert!(matches!(v.feed(br#"{"status":"success","x":{"status":1}}"#), Progress::Done { .. }));
        assert_eq!(v.response(), Ok(Checked { ascii: true }), "a nested status is not the reply's");
        let mut v = Validator::new();
        assert!(matches!(v.feed("{\"status\":\"error\",\"message\":\"é\"}".as_bytes()), Progress::Done { .. }));
        assert_eq!(v.response(), Ok(Checked { ascii: false }));
    }
}
