//! The reference the reply framing is checked against, shared by the property tests
//! (`core/tests/framing_properties.rs`) and the fuzz target (`fuzz/fuzz_targets/reply_framing.rs`,
//! which includes this file by path).
//!
//! [`scan`] says what a byte stream amounts to under bare-JSON framing, and [`document`] what a
//! whole message (a length-prefixed body, or `validate_reply`'s input) amounts to, written to be
//! obviously right rather than fast: a recursive-descent parser over the whole buffer, one byte
//! at a time, no resumption, strings decoded to UTF-16 as `JSON.parse` sees them, UTF-8 checked
//! by `std::str::from_utf8`. It defines "the first byte that cannot be part of a valid reply":
//! running out of input anywhere is `Incomplete`; anything else wrong is `Invalid` at the byte
//! where no valid continuation exists.
//!
//! The oracles beside it ([`serde_blender_response`], [`known_leniency`]) compare with
//! serde_json, which is stricter than `JSON.parse` in exactly the documented ways.
#![allow(dead_code)]

use serde_json::Value;

/// What went wrong at the byte an `Invalid` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Not UTF-8.
    Utf8,
    /// Not JSON.
    Json,
}

/// Why a valid object is not a Blender response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotBlender {
    NoStatus,
    BadStatus,
    MessageNotString,
}

/// The reference's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Only whitespace.
    Empty,
    /// A valid start of a reply; more must come.
    Incomplete,
    /// The first non-whitespace byte, here, is not `{`.
    NotAnObject(usize),
    /// The byte here cannot continue a valid reply.
    Invalid(usize, Kind),
    /// A valid object spans `start..end`; `response` is the Blender verdict (`Ok(ascii)`).
    Complete { start: usize, end: usize, response: Result<bool, NotBlender> },
}

enum Stop {
    Eof,
    Bad(usize, Kind),
}

type R<T> = Result<T, Stop>;

/// A value as the Blender checks see it.
enum Val {
    Str(Vec<u16>),
    Other,
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> R<u8> {
        self.b.get(self.i).copied().ok_or(Stop::Eof)
    }

    fn bad<T>(&self, at: usize, kind: Kind) -> R<T> {
        Err(Stop::Bad(at, kind))
    }

    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn value(&mut self) -> R<Val> {
        match self.peek()? {
            b'{' => self.object().map(|_| Val::Other),
            b'[' => self.array().map(|()| Val::Other),
            b'"' => self.string().map(Val::Str),
            b'-' | b'0'..=b'9' => self.number().map(|()| Val::Other),
            b't' => self.literal(b"true").map(|()| Val::Other),
            b'f' => self.literal(b"false").map(|()| Val::Other),
            b'n' => self.literal(b"null").map(|()| Val::Other),
            _ => self.bad(self.i, Kind::Json),
        }
    }

    /// An object from its `{`: the last `status` and `message` of its own members.
    fn object(&mut self) -> R<(Option<Val>, Option<Val>)> {
        let (mut status, mut message) = (None, None);
        self.i += 1;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Ok((status, message));
        }
        loop {
            self.ws();
            if self.peek()? != b'"' {
                return self.bad(self.i, Kind::Json);
            }
            let key = self.string()?;
            self.ws();
            if self.peek()? != b':' {
                return self.bad(self.i, Kind::Json);
            }
            self.i += 1;
            self.ws();
            let value = self.value()?;
            if key == utf16("status") {
                status = Some(value);
            } else if key == utf16("message") {
                message = Some(value);
            }
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Ok((status, message));
                }
                _ => return self.bad(self.i, Kind::Json),
            }
        }
    }

    fn array(&mut self) -> R<()> {
        self.i += 1;
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let _ = self.value()?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return self.bad(self.i, Kind::Json),
            }
        }
    }

    /// A string from its `"`, decoded to UTF-16 code units as `JSON.parse` does.
    fn string(&mut self) -> R<Vec<u16>> {
        let mut units = Vec::new();
        self.i += 1;
        loop {
            let b = self.peek()?;
            match b {
                b'"' => {
                    self.i += 1;
                    return Ok(units);
                }
                b'\\' => {
                    let c = *self.b.get(self.i + 1).ok_or(Stop::Eof)?;
                    let simple = match c {
                        b'"' => Some(b'"'),
                        b'\\' => Some(b'\\'),
                        b'/' => Some(b'/'),
                        b'b' => Some(8),
                        b'f' => Some(12),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        _ => None,
                    };
                    if let Some(s) = simple {
                        units.push(u16::from(s));
                        self.i += 2;
                    } else if c == b'u' {
                        let mut unit = 0u16;
                        for k in self.i + 2..self.i + 6 {
                            let h = *self.b.get(k).ok_or(Stop::Eof)?;
                            let Some(d) = (h as char).to_digit(16) else { return self.bad(k, Kind::Json) };
                            unit = unit * 16 + d as u16;
                        }
                        units.push(unit);
                        self.i += 6;
                    } else {
                        return self.bad(self.i + 1, Kind::Json);
                    }
                }
                0x00..=0x1f => return self.bad(self.i, Kind::Json),
                0x80..=0xff => {
                    let window = &self.b[self.i..(self.i + 4).min(self.b.len())];
                    let text = match std::str::from_utf8(window) {
                        Ok(text) => text,
                        Err(e) if e.valid_up_to() > 0 => std::str::from_utf8(&window[..e.valid_up_to()]).unwrap(),
                        Err(e) => match e.error_len() {
                            None => return Err(Stop::Eof),
                            // A valid lead byte: the byte that breaks its sequence is the wrong one.
                            Some(k) if (0xc2..=0xf4).contains(&b) => return self.bad(self.i + k, Kind::Utf8),
                            Some(_) => return self.bad(self.i, Kind::Utf8),
                        },
                    };
                    let ch = text.chars().next().unwrap();
                    let mut buf = [0u16; 2];
                    units.extend_from_slice(ch.encode_utf16(&mut buf));
                    self.i += ch.len_utf8();
                }
                _ => {
                    units.push(u16::from(b));
                    self.i += 1;
                }
            }
        }
    }

    fn digits(&mut self) -> R<()> {
        if !self.peek()?.is_ascii_digit() {
            return self.bad(self.i, Kind::Json);
        }
        while matches!(self.b.get(self.i), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        Ok(())
    }

    fn number(&mut self) -> R<()> {
        if self.peek()? == b'-' {
            self.i += 1;
        }
        if self.peek()? == b'0' {
            self.i += 1;
        } else {
            self.digits()?;
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            self.digits()?;
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.digits()?;
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> R<()> {
        for (k, &w) in word.iter().enumerate() {
            match self.b.get(self.i + k) {
                None => return Err(Stop::Eof),
                Some(&c) if c == w => {}
                Some(_) => return self.bad(self.i + k, Kind::Json),
            }
        }
        self.i += word.len();
        Ok(())
    }
}

fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

/// The Blender verdict on an object's last `status` and `message`, and its bytes.
fn verdict(status: Option<Val>, message: Option<Val>, bytes: &[u8]) -> Result<bool, NotBlender> {
    match status {
        None => return Err(NotBlender::NoStatus),
        Some(Val::Str(s)) if s == utf16("success") || s == utf16("error") => {}
        Some(_) => return Err(NotBlender::BadStatus),
    }
    if matches!(message, Some(Val::Other)) {
        return Err(NotBlender::MessageNotString);
    }
    Ok(bytes.is_ascii())
}

/// What `buf` amounts to under bare-JSON framing: leading whitespace, then one object, then
/// anything (not looked at).
pub fn scan(buf: &[u8]) -> Answer {
    let mut p = Parser { b: buf, i: 0 };
    p.ws();
    let start = p.i;
    match p.peek() {
        Err(_) => return Answer::Empty,
        Ok(b'{') => {}
        Ok(_) => return Answer::NotAnObject(start),
    }
    match p.object() {
        Ok((status, message)) => {
            Answer::Complete { start, end: p.i, response: verdict(status, message, &buf[start..p.i]) }
        }
        Err(Stop::Eof) => Answer::Incomplete,
        Err(Stop::Bad(at, kind)) => Answer::Invalid(at, kind),
    }
}

/// What a whole message amounts to: one object with only whitespace around it. Running out of
/// input is `Invalid` at the end; `Complete` spans the object (whitespace left out).
pub fn document(buf: &[u8]) -> Answer {
    match scan(buf) {
        Answer::Empty | Answer::Incomplete => Answer::Invalid(buf.len(), Kind::Json),
        Answer::Complete { start, end, response } => {
            match buf[end..].iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
                Some(k) => Answer::Invalid(end + k, Kind::Json),
                None => Answer::Complete { start, end, response },
            }
        }
        other => other,
    }
}

/// Whether serde_json (building a `Value`) reads `bytes` as a Blender response.
pub fn serde_blender_response(bytes: &[u8]) -> bool {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(bytes) else { return false };
    let status_ok = matches!(obj.get("status"), Some(Value::String(s)) if s == "success" || s == "error");
    status_ok && obj.get("message").is_none_or(Value::is_string)
}

/// Where serde_json says the first JSON value of `buf` ends, if it is a valid object.
pub fn serde_object_end(buf: &[u8]) -> Option<usize> {
    let mut stream = serde_json::Deserializer::from_slice(buf).into_iter::<Value>();
    match stream.next() {
        Some(Ok(v)) if v.is_object() => Some(stream.byte_offset()),
        _ => None,
    }
}

/// Whether the framing may accept `bytes` although `from_slice::<Value>` rejects them, as
/// `JSON.parse` does: numbers beyond f64 (`1e400`), lone UTF-16 surrogate escapes, nesting
/// deeper than serde_json's recursion limit (128).
pub fn known_leniency(bytes: &[u8]) -> bool {
    let Err(e) = serde_json::from_slice::<Value>(bytes) else { return false };
    let e = e.to_string();
    ["number out of range", "surrogate", "hex escape", "recursion limit exceeded"].iter().any(|m| e.contains(m))
}
