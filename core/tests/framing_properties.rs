//! Property tests of the reply framing, against the reference in `framing_reference/` (shared
//! with the fuzz target) and against serde_json:
//! - `ReplyScanner` (the validating bare-JSON scanner) gives the same answer however the growing
//!   buffer is chunked, and that answer is the reference's: where a valid object ends, or the
//!   first byte no valid reply could have, its kind (UTF-8 or JSON), and the Blender verdict
//!   with the ASCII flag;
//! - `validate_reply` / `check_reply` and `LengthPrefixedScanner` agree with the reference's
//!   whole-message answer;
//! - every check runs with each stage-one kernel this CPU runs (`framing::scan::with_kernel`);
//! - and all of them with serde_json: whatever serde_json parses they accept, whatever they
//!   accept serde_json parses, up to the leniencies `JSON.parse` has too (pinned at the end).

use std::iter;

use blender_mcp_pool_core::framing::scan::{kernel_names, with_kernel};
use blender_mcp_pool_core::framing::{
    check_reply, is_whitespace, validate_reply, Fault, LengthPrefixedScanner, NotBlender, ReplyScanner, Scan,
};
use blender_mcp_pool_core::PoolError;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};

mod framing_reference;
use framing_reference::{known_leniency, serde_blender_response, serde_object_end, Answer, Kind};

const CASES: u32 = 2000;

fn config() -> ProptestConfig {
    ProptestConfig { cases: CASES, ..ProptestConfig::default() }
}

/// Runs `check` with every stage-one kernel this CPU runs (the portable one included).
fn each_kernel(mut check: impl FnMut() -> Result<(), TestCaseError>) -> Result<(), TestCaseError> {
    for kernel in kernel_names() {
        with_kernel(kernel, &mut check).expect("a kernel this CPU runs")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The scanner's answers in the reference's terms

fn scan_once(buf: &[u8]) -> Scan {
    ReplyScanner::new().scan(buf)
}

/// Feeds `buf[..cut]` for every cut (ascending, repeats allowed: a read of zero new bytes), then
/// the whole buffer, as the reader does, stopping at the first final answer. Returns the answer
/// in the reference's terms.
fn scan_in_chunks(buf: &[u8], cuts: &[usize]) -> Answer {
    let mut scanner = ReplyScanner::new();
    let mut last = Scan::Empty;
    for &cut in cuts.iter().chain(iter::once(&buf.len())) {
        last = scanner.scan(&buf[..cut]);
        if is_final(last) {
            break;
        }
    }
    answer(&scanner, last)
}

fn is_final(s: Scan) -> bool {
    matches!(s, Scan::Complete { .. } | Scan::NotAnObject(_) | Scan::Invalid { .. })
}

fn kind(fault: Fault) -> Kind {
    match fault {
        Fault::Utf8 => Kind::Utf8,
        _ => Kind::Json,
    }
}

fn not_blender(n: NotBlender) -> framing_reference::NotBlender {
    match n {
        NotBlender::NoStatus => framing_reference::NotBlender::NoStatus,
        NotBlender::BadStatus => framing_reference::NotBlender::BadStatus,
        NotBlender::MessageNotString => framing_reference::NotBlender::MessageNotString,
    }
}

/// `scan` (the last answer of `scanner`) in the reference's terms.
fn answer(scanner: &ReplyScanner, scan: Scan) -> Answer {
    match scan {
        Scan::Empty => Answer::Empty,
        Scan::Incomplete => Answer::Incomplete,
        Scan::NotAnObject(at) => Answer::NotAnObject(at),
        Scan::Invalid { at, fault } => Answer::Invalid(at, kind(fault)),
        Scan::Complete { start, end } => {
            Answer::Complete { start, end, response: scanner.response().map(|c| c.ascii).map_err(not_blender) }
        }
        Scan::TooLarge(_) => panic!("the JSON scanner answered TooLarge"),
    }
}

fn whole(buf: &[u8]) -> Answer {
    let mut s = ReplyScanner::new();
    let scan = s.scan(buf);
    answer(&s, scan)
}

/// Checks what must hold of the answer for `buf`, beyond agreeing with the reference: it fits
/// the bytes, and serde_json, where it has a say, agrees.
fn check_against_serde(buf: &[u8], got: Answer) -> Result<(), TestCaseError> {
    match got {
        Answer::Empty => prop_assert!(is_whitespace(buf)),
        Answer::NotAnObject(at) => {
            prop_assert!(is_whitespace(&buf[..at]));
            let opens = buf[at] == b'{';
            prop_assert!(!opens && !is_whitespace(&buf[at..=at]), "not an object at {}", at);
        }
        Answer::Complete { start, end, response } => {
            prop_assert!(is_whitespace(&buf[..start]));
            prop_assert_eq!(buf[start], b'{');
            prop_assert_eq!(buf[end - 1], b'}');
            let reply = &buf[start..end];
            // Accepted: serde_json reads a Blender response, or fails only as JSON.parse would not.
            if let Ok(ascii) = response {
                prop_assert!(
                    serde_blender_response(reply) || known_leniency(reply),
                    "accepted {:?}",
                    String::from_utf8_lossy(reply)
                );
                prop_assert_eq!(ascii, reply.is_ascii());
            }
            // Whatever serde_json reads as a Blender response is accepted.
            if serde_blender_response(reply) {
                prop_assert!(response.is_ok(), "serde_json reads a Blender response: {:?}", response);
            }
        }
        Answer::Invalid(at, _) => prop_assert!(at < buf.len()),
        Answer::Incomplete => {}
    }
    // Wherever serde_json finds a complete leading object, the scanner ends it at the same byte.
    if let Some(end) = serde_object_end(buf) {
        prop_assert!(
            matches!(got, Answer::Complete { end: e, .. } if e == end),
            "serde_json ends the object at {}: {:?}",
            end,
            got
        );
    }
    Ok(())
}

/// What a length-prefixed body amounts to, in the reference's terms (offsets in the body).
fn length_prefixed(body: &[u8], cuts: &[usize]) -> Answer {
    let mut wire = (body.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(body);
    let mut s = LengthPrefixedScanner::new(1 << 20);
    let mut last = Scan::Empty;
    for cut in cuts.iter().map(|c| c + 4).chain(iter::once(wire.len())) {
        last = s.scan(&wire[..cut]);
        if is_final(last) {
            break;
        }
    }
    match last {
        Scan::NotAnObject(at) => Answer::NotAnObject(at - 4),
        Scan::Invalid { at, fault } => Answer::Invalid(at - 4, kind(fault)),
        Scan::Complete { start: 4, end } if end == wire.len() => {
            let lead = body.iter().position(|b| !is_whitespace(&[*b])).unwrap_or(0);
            let end = body.len() - body.iter().rev().position(|b| !is_whitespace(&[*b])).unwrap_or(0);
            Answer::Complete { start: lead, end, response: s.response().map(|c| c.ascii).map_err(not_blender) }
        }
        other => panic!("length-prefixed scanner answered {other:?} for a whole message"),
    }
}

/// `check_reply` in the reference's terms: the error's wording says which it is.
fn checked(bytes: &[u8]) -> Result<bool, String> {
    check_reply(bytes).map(|c| c.ascii).map_err(|e| match e {
        PoolError::InvalidResponse { reason, .. } => reason,
        other => panic!("check_reply failed with {other:?}"),
    })
}

/// Checks `validate_reply` and `check_reply` on `bytes` against the reference document answer.
fn check_document(bytes: &[u8]) -> Result<(), TestCaseError> {
    let want = framing_reference::document(bytes);
    let got = checked(bytes);
    match (want, &got) {
        (Answer::Complete { response: Ok(ascii), .. }, Ok(a)) => prop_assert_eq!(*a, ascii),
        (Answer::Complete { response: Err(n), .. }, Err(reason)) => {
            let word = match n {
                framing_reference::NotBlender::NoStatus => "no status",
                framing_reference::NotBlender::BadStatus => "status is not",
                framing_reference::NotBlender::MessageNotString => "message is not",
            };
            prop_assert!(reason.contains(word), "{}: {}", word, reason);
        }
        (Answer::Invalid(at, k), Err(reason)) => {
            let word = if k == Kind::Utf8 { "UTF-8" } else { "JSON" };
            prop_assert!(
                reason.contains(word) && reason.ends_with(&format!("offset {at})")),
                "{:?} at {}: {}",
                k,
                at,
                reason
            );
        }
        (Answer::NotAnObject(_), Err(reason)) => prop_assert!(reason.contains("not a JSON object"), "{}", reason),
        (want, got) => prop_assert!(false, "reference {:?}, check_reply {:?}", want, got),
    }
    prop_assert_eq!(validate_reply(bytes).is_ok(), got.is_ok());
    if let Ok(text) = validate_reply(bytes) {
        prop_assert_eq!(text.as_bytes(), bytes);
        prop_assert!(serde_blender_response(bytes) || known_leniency(bytes));
    }
    if serde_blender_response(bytes) {
        prop_assert!(got.is_ok(), "serde_json reads a Blender response: {:?}", got);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Generators

/// Pieces of JSON-ish text: structure, strings, escapes, whitespace, multi-byte UTF-8 and a few
/// invalid UTF-8 bytes, so random concatenations often open, nest and close objects.
const FRAGMENTS: &[&[u8]] = &[
    b"{",
    b"{",
    b"}",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\"",
    b"\\",
    b"\\\"",
    b"\\\\",
    b"\\u00",
    b" ",
    b"\n",
    b"\t",
    b"\r",
    b":",
    b",",
    b"a",
    b"Z",
    b"0",
    b"-1.5e3",
    b"null",
    b"true",
    b"\"status\"",
    b"\"success\"",
    b"\"error\"",
    b"\"message\"",
    b"\"k\":",
    b"{}",
    b"[]",
    b"\"\"",
    "é".as_bytes(),
    "世".as_bytes(),
    "🎨".as_bytes(),
    b"\x7f",
    b"\xff",
    b"\xc3",
    b"\x80",
    b"\x00",
    // Where a validator goes wrong: numbers, escapes, literals, UTF-8 edges, whitespace lookalikes.
    b"01",
    b"-",
    b"1.",
    b"1e",
    b"1e+",
    b"2E-7",
    b"-0.0e00",
    b"1e400",
    b".5",
    b"+1",
    b"\\u",
    b"\\ud800",
    b"\\udc00",
    b"\\ud83d\\ude00",
    b"\\u00e9",
    b"\\uGGGG",
    b"\\x",
    b"\\/",
    b"tru",
    b"nul",
    b"falsey",
    b"True",
    b"\xe0\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xf0\x9f\x8e",
    b"\xc0\xaf",
    b"\x0b",
    b"\x0c",
    b"\x1f",
    "\u{a0}".as_bytes(),
    "\u{feff}".as_bytes(),
    b"\"st\\u0061tus\"",
    b"\"succ\\u0065ss\"",
];

fn fragments(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..max).prop_map(|v| v.concat())
}

fn whitespace() -> impl Strategy<Value = String> {
    "[ \t\r\n]{0,4}"
}

/// Strings with the characters the scanner cares about, control characters (serialized as
/// `\u00XX`) and multi-byte UTF-8; sometimes any Unicode at all.
fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z{}\\[\\]\"\\\\/: é世🎨\u{0}-\u{1f}\u{7f}]{0,12}",
        1 => any::<String>(),
    ]
}

/// Any JSON value, a few levels deep. Numbers stay in f64 range whatever bytes are deleted
/// (see `mutate`), so serde_json never rejects one as out of range.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        json_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_string(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::vec((json_string(), json_value()), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

/// An object that is a Blender response, or nearly: status "success"/"error" (rarely
/// something else), and a message that is absent, a string, or (rarely) another value.
fn blender_object() -> impl Strategy<Value = Value> {
    let status = prop_oneof![
        4 => Just(Value::from("success")),
        4 => Just(Value::from("error")),
        1 => json_value(),
    ];
    let message = prop_oneof![
        2 => Just(None),
        2 => json_string().prop_map(|s| Some(Value::String(s))),
        1 => json_value().prop_map(Some),
    ];
    (json_object(), status, message).prop_map(|(mut obj, status, message)| {
        let map = obj.as_object_mut().expect("an object");
        let _ = map.insert("status".into(), status);
        if let Some(m) = message {
            let _ = map.insert("message".into(), m);
        }
        obj
    })
}

/// Serializes `v` compactly or pretty-printed.
fn serialize(v: &Value, pretty: bool) -> Vec<u8> {
    if pretty {
        serde_json::to_vec_pretty(v).expect("serializable")
    } else {
        serde_json::to_vec(v).expect("serializable")
    }
}

/// One edit of a serialized reply: drop a byte, or insert a structural byte.
#[derive(Debug, Clone)]
enum Edit {
    Delete(Index),
    Insert(Index, u8),
    Truncate(Index),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<Index>()).prop_map(Edit::Delete),
        (any::<Index>(), prop::sample::select(&b"{}[]\":,\\ x"[..])).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<Index>()).prop_map(Edit::Truncate),
    ];
    prop_oneof![2 => Just(vec![]), 1 => prop::collection::vec(edit, 1..4)]
}

fn mutate(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        match *e {
            Edit::Delete(i) if !bytes.is_empty() => drop(bytes.remove(i.index(bytes.len()))),
            Edit::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), b),
            Edit::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
            Edit::Delete(_) => {}
        }
    }
    bytes
}

/// A valid object with whitespace around it and (sometimes) more bytes after it; returns the
/// buffer and the offsets of the object.
fn object_in_stream() -> impl Strategy<Value = (Vec<u8>, usize, usize)> {
    (whitespace(), json_object(), any::<bool>(), whitespace(), prop_oneof![Just(vec![]), fragments(10)]).prop_map(
        |(before, obj, pretty, after, tail)| {
            let mut buf = before.into_bytes();
            let start = buf.len();
            buf.extend_from_slice(&serialize(&obj, pretty));
            let end = buf.len();
            buf.extend_from_slice(after.as_bytes());
            buf.extend_from_slice(&tail);
            (buf, start, end)
        },
    )
}

/// Starts that open an object, so random fragments after them often complete it.
const HEADS: &[&[u8]] = &[b"{", b" {", b"\r\n\t {", b"{\"status\":\"success\",\"r\":"];

/// Byte strings to scan: arbitrary bytes; JSON-ish fragments, often after an opening brace so
/// that objects actually complete; and valid objects followed by anything.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..64),
        2 => fragments(48),
        3 => (prop::sample::select(HEADS), fragments(48))
            .prop_map(|(head, rest)| [head, &rest[..]].concat()),
        2 => (object_in_stream(), edits()).prop_map(|((buf, _, _), e)| mutate(buf, &e)),
    ]
}

/// Split points for `len` bytes: ascending, possibly repeated, possibly 0 or `len`.
fn cuts_for(len: usize, picks: &[Index]) -> Vec<usize> {
    let mut cuts: Vec<usize> = picks.iter().map(|i| i.index(len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

fn picks() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..12)
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config())]

    /// Chunked feeding gives the whole-buffer answer, and that answer is the reference's.
    #[test]
    fn chunked_scan_matches_whole_buffer_scan_and_the_reference(buf in stream(), picks in picks()) {
        each_kernel(|| {
            let whole = whole(&buf);
            let cuts = cuts_for(buf.len(), &picks);
            prop_assert_eq!(scan_in_chunks(&buf, &cuts), whole, "cuts {:?}", cuts);
            prop_assert_eq!(whole, framing_reference::scan(&buf));
            check_against_serde(&buf, whole)
        })?;
    }

    /// Byte by byte — the worst chunking — also agrees, every prefix's answer is the
    /// reference's for that prefix, and a final answer comes on the byte that decides it.
    #[test]
    fn byte_by_byte_scan_matches_the_reference_on_every_prefix(buf in stream()) {
        let mut scanner = ReplyScanner::new();
        let mut got = Answer::Empty;
        for n in 0..=buf.len() {
            let scan = scanner.scan(&buf[..n]);
            got = answer(&scanner, scan);
            prop_assert_eq!(got, framing_reference::scan(&buf[..n]), "after {} bytes", n);
            match got {
                Answer::Complete { end, .. } => { prop_assert_eq!(end, n); break; }
                Answer::NotAnObject(at) | Answer::Invalid(at, _) => { prop_assert_eq!(at + 1, n); break; }
                _ => {}
            }
        }
        prop_assert_eq!(got, whole(&buf));
    }

    /// A final answer is sticky: scanning more of the same buffer repeats it.
    #[test]
    fn a_final_answer_is_repeated_as_the_buffer_grows(buf in stream(), picks in picks()) {
        let mut scanner = ReplyScanner::new();
        let mut first_final = None;
        for cut in cuts_for(buf.len(), &picks).into_iter().chain(iter::once(buf.len())) {
            let got = scanner.scan(&buf[..cut]);
            match first_final {
                Some(f) => prop_assert_eq!(got, f),
                None if is_final(got) => first_final = Some(got),
                None => {}
            }
        }
    }

    /// A reset scanner handles the next reply as a fresh one would, whatever the last one was.
    #[test]
    fn reset_scanner_behaves_like_a_new_one(first in stream(), second in stream(), picks in picks()) {
        let mut scanner = ReplyScanner::new();
        let cut = picks.first().map_or(first.len(), |i| i.index(first.len() + 1));
        let _ = scanner.scan(&first[..cut]);
        let _ = scanner.scan(&first);
        scanner.reset();
        let scan = scanner.scan(&second);
        prop_assert_eq!(answer(&scanner, scan), whole(&second));
    }

    /// A valid object, with whitespace around it and anything after it, is complete exactly at
    /// its closing brace however it is chunked.
    #[test]
    fn valid_objects_complete_at_their_closing_brace((buf, start, end) in object_in_stream(), picks in picks()) {
        prop_assert_eq!(scan_once(&buf), Scan::Complete { start, end });
        let chunked = scan_in_chunks(&buf, &cuts_for(buf.len(), &picks));
        prop_assert!(matches!(chunked, Answer::Complete { start: s, end: e, .. } if s == start && e == end), "chunked: {:?}", chunked);
        // And nothing before its last byte completes it.
        prop_assert_eq!(scan_once(&buf[..end - 1]), Scan::Incomplete);
    }

    /// `validate_reply` and `check_reply` agree with the reference on any bytes.
    #[test]
    fn validate_reply_matches_the_reference(buf in stream()) {
        each_kernel(|| check_document(&buf))?;
    }

    /// A length-prefixed body, however it arrives, is judged as `check_reply` judges it.
    #[test]
    fn length_prefixed_bodies_match_the_reference(buf in stream(), picks in picks()) {
        let got = length_prefixed(&buf, &cuts_for(buf.len(), &picks));
        prop_assert_eq!(got, framing_reference::document(&buf));
    }

    /// On (possibly damaged) objects with a status, everything agrees exactly with
    /// `serde_json::from_slice::<Value>` plus the status/message rule.
    #[test]
    fn validate_reply_agrees_with_serde_json(
        obj in blender_object(), pretty in any::<bool>(), before in whitespace(), after in whitespace(), edits in edits(),
    ) {
        let bytes = [before.as_bytes(), &serialize(&obj, pretty), after.as_bytes()].concat();
        let bytes = mutate(bytes, &edits);
        let expected = serde_blender_response(&bytes);
        check_document(&bytes)?;
        match validate_reply(&bytes) {
            Ok(_) => prop_assert!(expected || known_leniency(&bytes)),
            Err(e) => {
                prop_assert!(!expected, "rejected {:?}: {}", String::from_utf8_lossy(&bytes), e);
                prop_assert_eq!(e.code(), "ERR_INVALID_RESPONSE");
            }
        }
        if edits.is_empty() {
            let status_ok = matches!(obj.get("status"), Some(Value::String(s)) if s == "success" || s == "error");
            prop_assert_eq!(expected, status_ok && obj.get("message").is_none_or(Value::is_string));
            prop_assert!(validate_reply(&bytes).is_ok() == expected);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Where the framing is laxer than a `Value` parse (as `JSON.parse` is), pinned down so the
// tolerance in `known_leniency` stays exactly this.

#[test]
fn validate_reply_tolerates_what_json_parse_tolerates_in_skipped_values() {
    let deep = format!(r#"{{"status":"success","x":{}{}}}"#, "[".repeat(200), "]".repeat(200));
    for lax in [
        r#"{"status":"success","x":1e400}"#,
        r#"{"status":"success","x":-1e400}"#,
        r#"{"status":"success","x":"\ud800"}"#,
        r#"{"status":"success","x":"\udc00"}"#,
        r#"{"status":"success","x":"\ud800\u0041"}"#,
        // Lone surrogates in a key or in `message`: Python's json.dumps writes them for a file
        // name that is not UTF-8, and JSON.parse takes them.
        r#"{"status":"error","message":"caf\udce9.blend"}"#,
        r#"{"\ud800":1,"status":"success"}"#,
        r#"{"status":"success","message":"\udfff","x":1e400}"#,
        &deep,
    ] {
        assert!(validate_reply(lax.as_bytes()).is_ok(), "{lax:.60}");
        assert!(
            matches!(framing_reference::document(lax.as_bytes()), Answer::Complete { response: Ok(_), .. }),
            "{lax:.60}"
        );
        assert!(serde_json::from_str::<Value>(lax).is_err(), "{lax:.60}");
        assert!(known_leniency(lax.as_bytes()), "{lax:.60}");
    }
}

#[test]
fn validate_reply_still_requires_a_status_it_can_read_and_a_string_message() {
    let deep_status = format!(r#"{{"status":{}{}}}"#, "[".repeat(200), "]".repeat(200));
    for strict in [
        r#"{"status":"success","message":1e400}"#,
        r#"{"status":"\ud800"}"#,
        r#"{"status":"success\ud800"}"#,
        r#"{"status":1e400}"#,
        &deep_status,
    ] {
        assert!(validate_reply(strict.as_bytes()).is_err(), "{strict:.60}");
    }
}

#[test]
fn validate_reply_rejects_what_json_parse_rejects() {
    // Each is wrong at the first byte of its second part; JSON.parse rejects them all.
    let head: &[u8] = b"{\"status\":\"success\",\"x\":";
    let cat = |a: &[u8], b: &[u8]| [a, b].concat();
    for (good, bad, kind) in [
        (cat(head, b"0"), &b"1}"[..], Kind::Json),
        (cat(head, b"1."), b"}", Kind::Json),
        (cat(head, b"-"), b"}", Kind::Json),
        (cat(head, b"1e+"), b"}", Kind::Json),
        (head.to_vec(), b".5}", Kind::Json),
        (head.to_vec(), b"+1}", Kind::Json),
        (cat(head, b"\"a"), b"\tb\"}", Kind::Json),
        (cat(head, b"\"\\"), b"x\"}", Kind::Json),
        (cat(head, b"\"\\u12"), b"g4\"}", Kind::Json),
        (cat(head, b"nu"), b"m}", Kind::Json),
        (cat(head, b"[1,"), b"]}", Kind::Json),
        (b"{\"status\":\"success\",".to_vec(), b"}", Kind::Json),
        (b"{\"status\":\"success\"".to_vec(), b"\x0b}", Kind::Json),
        (b"{\"status\":\"success\"".to_vec(), "\u{a0}}".as_bytes(), Kind::Json),
        (cat(head, b"\"\xed"), b"\xa0\x80\"}", Kind::Utf8),
        (cat(head, b"\""), b"\xc0\xaf\"}", Kind::Utf8),
        (cat(head, b"\"\xf4"), b"\x90\x80\x80\"}", Kind::Utf8),
        (cat(head, b"\"\xe2\x82"), b"A\"}", Kind::Utf8),
        (b"{\"status\":\"success\"} ".to_vec(), b"x", Kind::Json),
    ] {
        let at = good.len();
        let bytes = [&good[..], bad].concat();
        let reason = match validate_reply(&bytes) {
            Err(PoolError::InvalidResponse { reason, .. }) => reason,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(&bytes)),
        };
        let word = if kind == Kind::Utf8 { "UTF-8" } else { "JSON" };
        assert!(
            reason.contains(word) && reason.ends_with(&format!("offset {at})")),
            "{:?}: {reason}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(
            framing_reference::document(&bytes),
            Answer::Invalid(at, kind),
            "{:?}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(serde_json::from_slice::<Value>(&bytes).is_err());
    }
}

#[test]
fn validate_reply_skips_deep_nesting_without_recursing() {
    // One bit of heap per level: depth is bounded by the reply size (maxResponseBytes), not by
    // the thread's stack.
    let d = 1_000_000;
    let deep = format!(r#"{{"status":"success","x":{}1{}}}"#, r#"[{"a":"#.repeat(d), "}]".repeat(d));
    assert!(validate_reply(deep.as_bytes()).is_ok());
    assert_eq!(ReplyScanner::new().scan(deep.as_bytes()), Scan::Complete { start: 0, end: deep.len() });
    let unbalanced = format!(r#"{{"status":"success","x":{}1{}}}}}"#, "[".repeat(d), "]".repeat(d - 1));
    assert!(matches!(ReplyScanner::new().scan(unbalanced.as_bytes()), Scan::Invalid { .. }));
}
