//! `ReplyScanner` finds the end of the first JSON object however the bytes are split, and
//! `validate_reply` accepts exactly the Blender responses.

use blender_mcp_pool_core::framing::{is_whitespace, validate_reply, ReplyScanner, Scan};
use blender_mcp_pool_core::PoolError;

/// Replies with every structure the scanner has to get right. All are valid JSON objects.
const REPLIES: &[&str] = &[
    r#"{"status":"success","result":{"a":[1,{"b":[]}],"c":{},"d":[[],[{}]]}}"#,
    r#"{"status":"success","result":"braces { } [ ] {{ ]] in a string"}"#,
    r#"{"status":"success","result":"say \"hi\" and \"}\""}"#,
    r#"{"status":"success","result":"C:\\dir\\"}"#,
    r#"{"status":"error","message":"\\\"}{\\"}"#,
    r#"{"status":"success","result":"\u007b\u0022\u005c\u007d \ud83c\udfa8"}"#,
    "{\"status\":\"success\",\"result\":\"h\u{e9}llo \u{4e16}\u{754c} \u{1f3a8} {\\\"\u{fc}\\\":[]}\"}",
    r#"{"status":"success","result":[true,false,null,-1.5e3,0,"",{"":""}]}"#,
    r#"{"a":[[[[{"b":"]]]}"}]]]],"c":"\\\\","d":"\/"}"#,
    r#"{}"#,
    "{ \"status\" : \"success\" ,\n\t\"result\" : { } }",
];

fn scan_once(buf: &[u8]) -> Scan {
    ReplyScanner::new().scan(buf)
}

fn complete(start: usize, end: usize) -> Scan {
    Scan::Complete { start, end }
}

/// Feeds `buf[..k]` then `buf` for every split point `k`, and checks the outcome matches one
/// scan of the whole buffer.
fn assert_every_split_matches(buf: &[u8]) {
    let whole = scan_once(buf);
    for k in 1..buf.len() {
        let mut s = ReplyScanner::new();
        let first = s.scan(&buf[..k]);
        let outcome = match first {
            // The object already ended inside the prefix: that is the answer.
            Scan::Complete { .. } | Scan::NotAnObject(_) | Scan::TooLarge(_) | Scan::Invalid { .. } => first,
            Scan::Incomplete | Scan::Empty => s.scan(buf),
        };
        assert_eq!(outcome, whole, "split at {k} of {:?}", String::from_utf8_lossy(buf));
    }
}

/// Feeds the buffer one byte longer each time and checks the reply is reported complete exactly
/// when its last byte arrives, and not before.
fn assert_byte_by_byte(buf: &[u8], start: usize, end: usize) {
    let mut s = ReplyScanner::new();
    for n in 1..=end {
        let got = s.scan(&buf[..n]);
        if n == end {
            assert_eq!(got, complete(start, end), "{:?}", String::from_utf8_lossy(buf));
        } else if n <= start {
            assert_eq!(got, Scan::Empty, "only whitespace after {n} bytes");
        } else {
            assert_eq!(got, Scan::Incomplete, "after {n} bytes of {:?}", String::from_utf8_lossy(buf));
        }
    }
}

#[test]
fn the_test_replies_are_valid_json_objects() {
    for r in REPLIES {
        let v: serde_json::Value = serde_json::from_str(r).unwrap_or_else(|e| panic!("{r}: {e}"));
        assert!(v.is_object());
    }
}

#[test]
fn scanner_finds_the_end_of_each_reply_in_one_buffer() {
    for r in REPLIES {
        assert_eq!(scan_once(r.as_bytes()), complete(0, r.len()), "{r}");
    }
}

#[test]
fn scanner_gives_the_same_answer_at_every_split_point() {
    for r in REPLIES {
        assert_every_split_matches(r.as_bytes());
    }
}

#[test]
fn scanner_fed_one_byte_at_a_time_completes_on_the_last_byte() {
    for r in REPLIES {
        assert_byte_by_byte(r.as_bytes(), 0, r.len());
    }
}

#[test]
fn scanner_skips_leading_whitespace() {
    for r in REPLIES {
        let buf = format!(" \r\n\t \n{r}");
        assert_eq!(scan_once(buf.as_bytes()), complete(6, buf.len()));
        assert_every_split_matches(buf.as_bytes());
        assert_byte_by_byte(buf.as_bytes(), 6, buf.len());
    }
}

#[test]
fn scanner_reports_only_whitespace_as_empty() {
    assert_eq!(scan_once(b""), Scan::Empty);
    assert_eq!(scan_once(b" \t\r\n"), Scan::Empty);
    let mut s = ReplyScanner::new();
    assert_eq!(s.scan(b"  "), Scan::Empty);
    assert_eq!(s.scan(b"  \n"), Scan::Empty);
    assert_eq!(s.scan(b"  \n{"), Scan::Incomplete);
    assert_eq!(s.scan(b"  \n{}"), complete(3, 5));
}

#[test]
fn scanner_stops_at_the_end_of_the_first_object_before_trailing_bytes() {
    let trailers = ["x", "{\"status\":\"success\",\"result\":2}", "}}}", " \n", "\"", "\\", "{"];
    for r in REPLIES {
        for t in trailers {
            let buf = format!("  {r}{t}");
            let end = 2 + r.len();
            assert_eq!(scan_once(buf.as_bytes()), complete(2, end), "{buf}");
            assert_every_split_matches(buf.as_bytes());
            assert_byte_by_byte(buf.as_bytes(), 2, end);
        }
    }
}

#[test]
fn scanner_rejects_a_first_byte_that_cannot_open_an_object() {
    for (buf, at) in [
        (&b"[1,2]"[..], 0),
        (b"\"text\"", 0),
        (b"  null", 2),
        (b"\n\t 42", 3),
        (b"true", 0),
        (b"}", 0),
        (b"\xff{}", 0),
        (b"<html>", 0),
    ] {
        assert_eq!(scan_once(buf), Scan::NotAnObject(at), "{:?}", String::from_utf8_lossy(buf));
        assert_every_split_matches(buf);
    }
}

#[test]
fn scanner_reset_starts_a_new_reply() {
    let mut s = ReplyScanner::new();
    assert_eq!(s.scan(br#"{"a":"#), Scan::Incomplete);
    s.reset();
    assert_eq!(s.scan(b" {}"), complete(1, 3));
    s.reset();
    assert_eq!(s.scan(b"[]"), Scan::NotAnObject(0));
}

#[test]
fn scanner_handles_a_long_string_fed_in_uneven_chunks() {
    let body = "ab\\\"cd{}[]é".repeat(10_000);
    let reply = format!(r#"{{"status":"success","result":"{body}"}}"#);
    let buf = reply.as_bytes();
    let mut s = ReplyScanner::new();
    let mut n = 0;
    let mut step = 1;
    while n < buf.len() {
        n = (n + step).min(buf.len());
        step = step % 997 + 13;
        let got = s.scan(&buf[..n]);
        if n < buf.len() {
            assert_eq!(got, Scan::Incomplete, "after {n} bytes");
        } else {
            assert_eq!(got, complete(0, buf.len()));
        }
    }
}

#[test]
fn is_whitespace_accepts_only_json_whitespace() {
    assert!(is_whitespace(b""));
    assert!(is_whitespace(b" \t\r\n"));
    assert!(!is_whitespace(b" x"));
    assert!(!is_whitespace(b"\x0b"));
    assert!(!is_whitespace("\u{a0}".as_bytes()));
}

fn invalid_reason(reply: &[u8]) -> String {
    match validate_reply(reply) {
        Err(PoolError::InvalidResponse { reason, .. }) => reason,
        other => panic!("{:?}: expected InvalidResponse, got {other:?}", String::from_utf8_lossy(reply)),
    }
}

#[test]
fn validate_reply_accepts_blender_responses_and_returns_the_text() {
    for ok in [
        r#"{"status":"success","result":{"name":"Cube"}}"#,
        r#"{"status":"success"}"#,
        r#"{"status":"error","message":"Object not found"}"#,
        r#"{"status":"error"}"#,
        r#"{"result":[1,2],"status":"success","extra":{"message":1}}"#,
        "{\"status\":\"success\",\"result\":\"h\u{e9}llo \u{1f3a8}\"}",
        " {\"status\":\"success\"} \n",
    ] {
        assert_eq!(validate_reply(ok.as_bytes()), Ok(ok), "{ok}");
    }
}

#[test]
fn validate_reply_rejects_invalid_utf8() {
    let reason = invalid_reason(b"{\"status\":\"success\",\"result\":\"\xc3\x28\"}");
    assert!(reason.contains("UTF-8"), "{reason}");
    let reason = invalid_reason(b"{\"status\":\"success\",\"result\":\"\xf0\x9f\x8e\"}");
    assert!(reason.contains("UTF-8"), "{reason}");
}

#[test]
fn validate_reply_rejects_invalid_json() {
    for bad in [
        &br#"{"status":"success""#[..],
        br#"{"status":success}"#,
        br#"{"status":"success",}"#,
        br#"{'status':'success'}"#,
        br#"{"status":"success"}}"#,
        br#"{"status":"success"} {}"#,
        br#"{"status":"success","result":"bad \x escape"}"#,
        b"",
    ] {
        let reason = invalid_reason(bad);
        assert!(reason.contains("JSON"), "{:?}: {reason}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn validate_reply_rejects_a_missing_or_wrong_status() {
    for bad in [
        &br#"{"result":1}"#[..],
        br#"{}"#,
        br#"{"status":"ok"}"#,
        br#"{"status":"Success"}"#,
        br#"{"status":1}"#,
        br#"{"status":null}"#,
        br#"{"status":["success"]}"#,
        br#"{"status":{"status":"success"}}"#,
        br#"{"nested":{"status":"success"}}"#,
    ] {
        let reason = invalid_reason(bad);
        assert!(reason.contains("status"), "{:?}: {reason}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn validate_reply_rejects_a_message_that_is_not_a_string() {
    for bad in [
        &br#"{"status":"error","message":42}"#[..],
        br#"{"status":"error","message":null}"#,
        br#"{"status":"error","message":{"text":"x"}}"#,
        br#"{"status":"error","message":["x"]}"#,
        br#"{"status":"success","message":false}"#,
    ] {
        let reason = invalid_reason(bad);
        assert!(reason.contains("message"), "{:?}: {reason}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn validate_reply_rejects_values_that_are_not_objects() {
    for bad in [&b"[1,2]"[..], br#""success""#, b"42", b"null", b"true", br#"[{"status":"success"}]"#] {
        let e = validate_reply(bad).unwrap_err();
        assert_eq!(e.code(), "ERR_INVALID_RESPONSE", "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn validate_reply_errors_carry_a_sample_of_the_reply() {
    match validate_reply(br#"{"status":"ok","result":"abc"}"#) {
        Err(PoolError::InvalidResponse { sample, .. }) => assert_eq!(sample, r#"{"status":"ok","result":"abc"}"#),
        other => panic!("{other:?}"),
    }
}
