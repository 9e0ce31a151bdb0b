//! A minimal `--key value` command-line parser (the benchmark's binaries take a handful of
//! numeric and string options; no dependency needed).

use std::collections::HashMap;
use std::str::FromStr;

/// Parsed `--key value` pairs.
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parses `std::env::args()`; exits with a message on a stray argument.
    pub fn from_env() -> Self {
        let mut values = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let Some(key) = arg.strip_prefix("--") else {
                fail(&format!("unexpected argument {arg:?} (options are --key value)"));
            };
            let Some(value) = it.next() else {
                fail(&format!("--{key} needs a value"));
            };
            values.insert(key.to_string(), value);
        }
        Args { values }
    }

    /// The string value of `--key`, if given.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The value of `--key` parsed as `T`, or `default`; exits on an unparsable value.
    pub fn get<T: FromStr>(&self, key: &str, default: T) -> T {
        match self.values.get(key) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| fail(&format!("bad value for --{key}: {v:?}"))),
        }
    }
}

/// Prints `message` to stderr and exits with status 2.
pub fn fail(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(2)
}
