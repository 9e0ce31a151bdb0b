//! The shapes of the benchmark's big replies (`big {bytes, shape}`), built here once per size by
//! the mock server and by `validate-bench`, so both measure the same bytes.
//!
//! - `string`: `{"status":"success","result":"aaa…"}`, one long plain string (a screenshot, a
//!   captured output);
//! - `scene`: a scene dump as Blender's add-on writes one (`json.dumps`, which escapes
//!   non-ASCII): an array of small objects with short keys, floats, integers, booleans, `null`,
//!   and names with escapes (`\"`, `\\`, `\u00e9`);
//! - `printed`: what `execute_code` returns when a script prints JSON: one long string holding
//!   the scene dump's text, so dense with escapes (`\"` every few bytes);
//! - `scene-utf8`: the scene dump with its non-ASCII names written as raw UTF-8 (a server that
//!   sets `ensure_ascii=False`); only `validate-bench` uses it.
//!
//! `bytes` is the size of `result`'s JSON text, at least that and at most one object more. The
//! contents are pseudo-random but fixed (a seeded generator), so every run sends the same bytes.

/// A reply shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// One long plain string.
    String,
    /// A scene dump (ASCII, escapes for non-ASCII).
    Scene,
    /// A string holding printed JSON.
    Printed,
    /// A scene dump with raw UTF-8 names.
    SceneUtf8,
}

impl Shape {
    /// Every shape, in report order.
    pub const ALL: [Shape; 4] = [Shape::String, Shape::Scene, Shape::Printed, Shape::SceneUtf8];

    /// The shape a request's `shape` parameter names (`string` when absent).
    pub fn named(name: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Its name, as in requests and reports.
    pub fn name(self) -> &'static str {
        match self {
            Shape::String => "string",
            Shape::Scene => "scene",
            Shape::Printed => "printed",
            Shape::SceneUtf8 => "scene-utf8",
        }
    }
}

const HEAD: &[u8] = br#"{"status":"success","result":"#;

/// The whole reply of `shape` whose `result` is about `bytes` long.
pub fn reply(shape: Shape, bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD.len() + bytes + 4096);
    out.extend_from_slice(HEAD);
    match shape {
        Shape::String => {
            out.push(b'"');
            out.resize(out.len() + bytes, b'a');
            out.push(b'"');
        }
        Shape::Scene => scene(&mut out, bytes, false, false),
        Shape::SceneUtf8 => scene(&mut out, bytes, true, false),
        Shape::Printed => {
            out.push(b'"');
            scene(&mut out, bytes, false, true);
            out.extend_from_slice(br#"\n""#);
        }
    }
    out.push(b'}');
    out
}

/// A small fixed-seed generator (xorshift): the same bytes on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A float as Python's `repr` writes most: up to 6 decimals, sometimes an exponent.
    fn float(&mut self) -> String {
        match self.below(16) {
            0 => format!("{}e-{:02}", 1 + self.below(9), 5 + self.below(4)),
            1 => "0.0".to_string(),
            2 => "1.0".to_string(),
            _ => {
                let sign = if self.below(3) == 0 { "-" } else { "" };
                let whole = self.below(100);
                let frac = self.below(1_000_000);
                format!("{sign}{whole}.{frac}")
            }
        }
    }
}

const KINDS: [&str; 5] = ["MESH", "LIGHT", "CAMERA", "EMPTY", "CURVE"];
const NAMES: [&str; 6] = ["Cube", "Suzanne", "Lamp", "Camera", "Plane", "Cylinder"];
/// Names as `json.dumps` escapes them, and the same names in raw UTF-8.
const ODD_NAMES: [(&str, &str); 5] = [
    (r#"Caf\u00e9 \"lamp\""#, "Café \\\"lamp\\\""),
    (r"C:\\scenes\\barn.blend", r"C:\\scenes\\barn.blend"),
    (r"\u6905\u5b50", "椅子"),
    (r"Stra\u00dfe/Gl\u00fchbirne", "Straße/Glühbirne"),
    (r"tab\there\nline", r"tab\there\nline"),
];

/// Appends a scene dump of about `bytes` bytes; `utf8`: non-ASCII names raw; `printed`: as the
/// body of a JSON string (every `"` and `\` escaped, Python's `print(json.dumps(...))` spacing).
fn scene(out: &mut Vec<u8>, bytes: usize, utf8: bool, printed: bool) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start = out.len();
    let (colon, comma) = if printed { (": ", ", ") } else { (":", ",") };
    let mut text = String::new();
    text.push_str(&format!(r#"{{"scene"{colon}"Scene"{comma}"frame"{colon}1{comma}"objects"{colon}["#));
    let mut first = true;
    let mut id = 0u64;
    let emit = |text: &mut String, out: &mut Vec<u8>| {
        if printed {
            for b in text.bytes() {
                match b {
                    b'"' => out.extend_from_slice(br#"\""#),
                    b'\\' => out.extend_from_slice(br"\\"),
                    _ => out.push(b),
                }
            }
        } else {
            out.extend_from_slice(text.as_bytes());
        }
        text.clear();
    };
    while out.len() - start < bytes {
        if !first {
            text.push_str(comma);
        }
        first = false;
        id += 1;
        let name = if rng.below(8) == 0 {
            let (escaped, raw) = ODD_NAMES[rng.below(ODD_NAMES.len() as u64) as usize];
            format!("{}.{id:03}", if utf8 { raw } else { escaped })
        } else {
            format!("{}.{id:03}", NAMES[rng.below(NAMES.len() as u64) as usize])
        };
        let kind = KINDS[rng.below(KINDS.len() as u64) as usize];
        let v = |rng: &mut Rng| format!("[{}{comma}{}{comma}{}]", rng.float(), rng.float(), rng.float());
        let (loc, rot, scale) = (v(&mut rng), v(&mut rng), v(&mut rng));
        let visible = if rng.below(4) == 0 { "false" } else { "true" };
        let parent = if rng.below(3) == 0 { format!(r#""{}""#, NAMES[0]) } else { "null".to_string() };
        let verts = rng.below(100_000);
        text.push_str(&format!(
            r#"{{"name"{colon}"{name}"{comma}"type"{colon}"{kind}"{comma}"loc"{colon}{loc}{comma}"rot"{colon}{rot}{comma}"scale"{colon}{scale}{comma}"visible"{colon}{visible}{comma}"parent"{colon}{parent}{comma}"verts"{colon}{verts}}}"#
        ));
        emit(&mut text, out);
    }
    text.push_str("]}");
    emit(&mut text, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_is_a_valid_blender_reply_of_about_the_size_asked() {
        for shape in Shape::ALL {
            let bytes = reply(shape, 100_000);
            let value: serde_json::Value = serde_json::from_slice(&bytes).expect("valid JSON");
            assert_eq!(value["status"], "success");
            assert!((100_000..101_000).contains(&(bytes.len() - HEAD.len())), "{shape:?}: {}", bytes.len());
            assert_eq!(bytes.is_ascii(), shape != Shape::SceneUtf8, "{shape:?}");
            assert!(blender_mcp_pool_core::framing::check_reply(&bytes).is_ok(), "{shape:?}");
        }
    }

    #[test]
    fn the_printed_shape_holds_the_scene_dump_as_text() {
        let printed: serde_json::Value = serde_json::from_slice(&reply(Shape::Printed, 10_000)).expect("JSON");
        let inner: serde_json::Value =
            serde_json::from_str(printed["result"].as_str().expect("a string").trim_end()).expect("the string is JSON");
        assert!(inner["objects"].as_array().is_some_and(|a| a.len() > 10));
    }
}
