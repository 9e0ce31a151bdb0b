//! Differential test of the reply scanner against `JSON.parse` (run by `node`,
//! `framing_differential.mjs`): structured replies as Blender sends them (arrays of small
//! objects, escapes, non-ASCII, every number form, whitespace), long enough for the block walk
//! (two levels deep, whole 64-byte blocks), and mutations of them (bytes deleted, inserted,
//! replaced, cut, repeated). For each case and each stage-one kernel this CPU runs:
//! - `check_reply` accepts exactly what `JSON.parse` and the consumer's response check accept;
//! - every kernel gives the portable kernel's answer, error message (offset, fault) included;
//! - the scanner fed the case split at every byte gives the answer of one whole buffer.
//!
//! Skipped, with a message, when `node` cannot be run.

use std::io::Write;
use std::process::{Command, Stdio};

use blender_mcp_pool_core::framing::scan::{kernel_names, with_kernel};
use blender_mcp_pool_core::framing::{check_reply, ReplyScanner, Scan};

/// SplitMix64 from a fixed seed: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

const WS: [&str; 6] = ["", "", "", " ", "\n  ", "\t\r\n"];
const NUMBERS: [&str; 16] = [
    "0",
    "-0",
    "12",
    "-7",
    "3.25",
    "-0.5",
    "1e5",
    "1E-3",
    "2.5e+10",
    "0.000001",
    "123456789012345678901234567890",
    "1.0",
    "-12.345678",
    "9e999",
    "0e0",
    "42",
];
/// Near misses: what a number or literal must not be (each makes its reply invalid).
const NOT_NUMBERS: [&str; 17] = [
    "01", "-", "1.", ".5", "1e", "-01.5", "tru", "nul", "+1", "1.2.3", "0x1", "--1", "1e+-2", "truee", "1e2e3",
    "2.5e1.5", "-1E5e",
];
const STRING_PARTS: [&str; 16] = [
    "Cube",
    ".001",
    " ",
    "\\\"",
    "\\\\",
    "\\/",
    "\\n\\t\\r\\b\\f",
    "\\u00e9",
    "\\ud83d\\ude00",
    "\\udce9",
    "é",
    "世界",
    "🎨",
    "a,b:c",
    "{[]}",
    "x",
];

fn ws(rng: &mut Rng, out: &mut String) {
    out.push_str(rng.pick(&WS));
}

fn string(rng: &mut Rng, out: &mut String) {
    out.push('"');
    let parts = if rng.below(10) == 0 { 20 + rng.below(120) } else { rng.below(5) };
    for _ in 0..parts {
        out.push_str(rng.pick(&STRING_PARTS));
    }
    out.push('"');
}

fn value(rng: &mut Rng, depth: usize, out: &mut String) {
    let kind = if depth > 5 { rng.below(4) } else { rng.below(8) };
    match kind {
        0 if rng.below(40) == 0 => out.push_str(rng.pick(&NOT_NUMBERS)),
        0 => out.push_str(rng.pick(&NUMBERS)),
        1 => out.push_str(rng.pick(&["true", "false", "null"])),
        2 | 3 => string(rng, out),
        4 | 5 => {
            // An object, as a scene dump's: short keys, small values.
            out.push('{');
            let n = rng.below(if depth < 4 { 6 } else { 3 });
            for k in 0..n {
                if k > 0 {
                    out.push(',');
                }
                ws(rng, out);
                string(rng, out);
                ws(rng, out);
                out.push(':');
                ws(rng, out);
                value(rng, depth + 1, out);
                ws(rng, out);
            }
            out.push('}');
        }
        _ => {
            out.push('[');
            let n = if depth < 4 && rng.below(4) == 0 { 5 + rng.below(10) } else { rng.below(4) };
            for k in 0..n {
                if k > 0 {
                    out.push(',');
                }
                ws(rng, out);
                value(rng, depth + 1, out);
                ws(rng, out);
            }
            out.push(']');
        }
    }
}

/// A reply as Blender could send it, or nearly (a wrong status, a message that is no string).
fn reply(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::new();
    ws(rng, &mut out);
    out.push('{');
    let status = rng.pick(&["\"success\"", "\"success\"", "\"error\"", "\"succ\\u0065ss\"", "\"ok\"", "1"]);
    let mut fields = vec![format!("\"status\":{status}")];
    let mut result = String::from("\"result\":");
    // Two levels deep at least, so that the block walk has something to do.
    result.push_str(if rng.below(2) == 0 { "{\"objects\":[" } else { "[[" });
    for k in 0..1 + rng.below(6) {
        if k > 0 {
            result.push(',');
        }
        value(rng, 2, &mut result);
    }
    result.push_str(if result.starts_with("\"result\":{") { "]}" } else { "]]" });
    fields.push(result);
    match rng.below(4) {
        0 => fields.push("\"message\":\"done\"".into()),
        1 => fields.push("\"message\":7".into()),
        _ => {}
    }
    if rng.below(2) == 0 {
        fields.reverse();
    }
    out.push_str(&fields.join(","));
    out.push('}');
    ws(rng, &mut out);
    out.into_bytes()
}

const INSERTS: [u8; 22] = [
    b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b'0', b'-', b'.', b'e', b't', b'u', b' ', 0x01, 0x1f, 0x7f, 0x80,
    0xc3, 0xe2, 0xff,
];

fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(2) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 if at < bytes.len() => drop(bytes.remove(at)),
            1 => bytes.insert(at, rng.pick(&INSERTS)),
            2 if at < bytes.len() => bytes[at] = rng.pick(&INSERTS),
            3 => bytes.truncate(at),
            _ => {
                let len = rng.below(8).min(bytes.len() - at);
                let slice = bytes[at..at + len].to_vec();
                bytes.splice(at..at, slice);
            }
        }
    }
    bytes
}

fn cases() -> Vec<Vec<u8>> {
    let mut rng = Rng(20);
    let mut cases = Vec::new();
    while cases.len() < 3 * 600 {
        let r = reply(&mut rng);
        // Long enough for whole blocks, short enough to split at every byte quickly.
        if !(100..=1200).contains(&r.len()) {
            continue;
        }
        cases.push(mutate(&mut rng, r.clone()));
        cases.push(mutate(&mut rng, r.clone()));
        cases.push(r);
    }
    cases
}

/// `JSON.parse`'s verdicts, or `None` when node cannot be run.
fn json_parse_verdicts(cases: &[Vec<u8>]) -> Option<Vec<bool>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/framing_differential.mjs");
    let mut child = match Command::new("node").arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("framing_differential skipped: cannot run node ({e})");
            return None;
        }
    };
    let mut input = Vec::new();
    for case in cases {
        input.extend_from_slice(&(case.len() as u32).to_le_bytes());
        input.extend_from_slice(case);
    }
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("node ran");
    writer.join().expect("the writer thread").expect("node read the cases");
    assert!(output.status.success(), "node failed: {}", output.status);
    let verdicts: Vec<bool> = output.stdout.iter().map(|&c| c == b'1').collect();
    assert_eq!(verdicts.len(), cases.len());
    Some(verdicts)
}

/// The scanner's final answer for `buf` fed as `buf[..cut]` then the whole, with the response
/// check's verdict once complete.
fn scan_split(buf: &[u8], cut: usize) -> (Scan, Option<bool>) {
    let mut scanner = ReplyScanner::new();
    let mut scan = scanner.scan(&buf[..cut]);
    if matches!(scan, Scan::Empty | Scan::Incomplete) {
        scan = scanner.scan(buf);
    }
    let response = matches!(scan, Scan::Complete { .. }).then(|| scanner.response().is_ok());
    (scan, response)
}

#[test]
fn the_scanner_accepts_what_json_parse_accepts_with_every_kernel_at_every_split() {
    let cases = cases();
    let Some(verdicts) = json_parse_verdicts(&cases) else { return };
    let accepted = verdicts.iter().filter(|&&v| v).count();
    assert!(accepted > cases.len() / 8 && accepted < cases.len() / 2, "{accepted} of {} accepted", cases.len());
    for (case, &json_parse) in cases.iter().zip(&verdicts) {
        let portable = with_kernel("portable", || check_reply(case).map_err(|e| e.to_string())).expect("portable");
        assert_eq!(
            portable.is_ok(),
            json_parse,
            "JSON.parse says {json_parse}: {portable:?} for {:?}",
            String::from_utf8_lossy(case)
        );
        for kernel in kernel_names() {
            with_kernel(kernel, || {
                let got = check_reply(case).map_err(|e| e.to_string());
                assert_eq!(got, portable, "{kernel} for {:?}", String::from_utf8_lossy(case));
                let whole = scan_split(case, case.len());
                for cut in 0..case.len() {
                    assert_eq!(
                        scan_split(case, cut),
                        whole,
                        "{kernel}, split at {cut}: {:?}",
                        String::from_utf8_lossy(case)
                    );
                }
            })
            .expect("a kernel this CPU runs");
        }
    }
}

/// A scene dump as Blender's add-on could write one, about `objects` objects long, in one of
/// `json.dumps`' styles: compact, with its default `", "` and `": "`, or indented.
fn scene_dump(rng: &mut Rng, objects: usize) -> String {
    let (colon, comma, indent) = match rng.below(3) {
        0 => (":", ",", ""),
        1 => (": ", ", ", ""),
        _ => (": ", ",", "\n    "),
    };
    let float = |rng: &mut Rng| -> String {
        match rng.below(8) {
            0 if rng.below(200) == 0 => rng.pick(&NOT_NUMBERS).to_string(),
            0 => rng.pick(&NUMBERS).to_string(),
            1 => format!("{}e-{:02}", 1 + rng.below(9), rng.below(20)),
            2 => format!("-0.{}", rng.below(1_000_000_000)),
            3 => format!("0.{:017}", rng.below(usize::MAX >> 8)),
            _ => format!("{}{}.{}", ["", "-"][rng.below(2)], rng.below(1000), rng.below(1_000_000)),
        }
    };
    let mut out = format!("{{\"scene\"{colon}\"Scene\"{comma}\"objects\"{colon}[");
    for k in 0..objects {
        if k > 0 {
            out.push_str(comma);
        }
        out.push_str(indent);
        let mut name = String::new();
        string(rng, &mut name);
        let vec = |rng: &mut Rng| format!("[{}{comma}{}{comma}{}]", float(rng), float(rng), float(rng));
        let (loc, rot) = (vec(rng), vec(rng));
        let parent = if rng.below(3) == 0 { "null".to_string() } else { name.clone() };
        let extra = match rng.below(4) {
            0 => format!("{comma}\"tags\"{colon}[]{comma}\"props\"{colon}{{}}"),
            1 => format!(
                "{comma}\"children\"{colon}[{{\"name\"{colon}{name}{comma}\"verts\"{colon}{}}}]",
                rng.below(1000)
            ),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{{\"name\"{colon}{name}{comma}\"type\"{colon}\"MESH\"{comma}\"loc\"{colon}{loc}{comma}\"rot\"{colon}{rot}{comma}\"visible\"{colon}{}{comma}\"parent\"{colon}{parent}{comma}\"verts\"{colon}{}{extra}}}",
            ["true", "false"][rng.below(2)],
            rng.below(100_000)
        ));
    }
    out.push_str("]}");
    out
}

/// Scene dumps of 2 to 8 KB, and each with one byte deleted, inserted or replaced anywhere.
fn scene_cases() -> Vec<Vec<u8>> {
    let mut rng = Rng(2020);
    let mut cases = Vec::new();
    while cases.len() < 2 * 1500 {
        let objects = 10 + rng.below(30);
        let dump = scene_dump(&mut rng, objects);
        let reply = format!("{{\"status\":\"success\",\"result\":{dump}}}").into_bytes();
        let mut mutated = reply.clone();
        let at = 30 + rng.below(reply.len() - 31);
        match rng.below(3) {
            0 => drop(mutated.remove(at)),
            1 => mutated.insert(at, rng.pick(&INSERTS)),
            _ => mutated[at] = rng.pick(&INSERTS),
        }
        cases.push(reply);
        cases.push(mutated);
    }
    cases
}

/// The scanner's answer for `buf` fed 16 bytes at a time: never enough new bytes for the block
/// walk, so every byte is read by the byte-by-byte scanner, the reference.
fn scan_by_bytes(buf: &[u8]) -> (Scan, Option<bool>) {
    let mut scanner = ReplyScanner::new();
    let mut end = 0;
    let scan = loop {
        end = (end + 16).min(buf.len());
        match scanner.scan(&buf[..end]) {
            Scan::Empty | Scan::Incomplete if end < buf.len() => {}
            other => break other,
        }
    };
    let response = matches!(scan, Scan::Complete { .. }).then(|| scanner.response().is_ok());
    (scan, response)
}

#[test]
fn the_block_walk_judges_long_scene_dumps_as_json_parse_and_the_byte_scanner_do() {
    let cases = scene_cases();
    let Some(verdicts) = json_parse_verdicts(&cases) else { return };
    let accepted = verdicts.iter().filter(|&&v| v).count();
    assert!(accepted > cases.len() / 2 && accepted < cases.len() * 9 / 10, "{accepted} of {} accepted", cases.len());
    for (case, &json_parse) in cases.iter().zip(&verdicts) {
        let reference = scan_by_bytes(case);
        for kernel in kernel_names() {
            with_kernel(kernel, || {
                let got = check_reply(case).map_err(|e| e.to_string());
                assert_eq!(got.is_ok(), json_parse, "{kernel}: {got:?} for {:?}", String::from_utf8_lossy(case));
                let mut scanner = ReplyScanner::new();
                let scan = scanner.scan(case);
                let response = matches!(scan, Scan::Complete { .. }).then(|| scanner.response().is_ok());
                assert_eq!((scan, response), reference, "{kernel} for {:?}", String::from_utf8_lossy(case));
            })
            .expect("a kernel this CPU runs");
        }
    }
}
