//! Errors that reach the user. Bad input is a [`ConfigError`]: it names the file, the key
//! (and the line where one is known) and what is allowed.

use std::fmt;
use std::path::PathBuf;

/// A problem with an experiment file, found before anything is written.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The experiment file.
    pub file: PathBuf,
    /// Dotted key, e.g. `base.train.opt_d.lr` or `sweep."objective.loss"`; empty when the
    /// problem is with the file as a whole.
    pub key: String,
    /// 1-based line in the file, where it is known.
    pub line: Option<usize>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": key `{}`", self.key)?;
        }
        write!(f, ": {}", shorten(&self.message))
    }
}

/// The message with every very long word (a 100,000-character value echoed back, say) cut to
/// its start and its length, so an error stays readable.
fn shorten(message: &str) -> String {
    const LONGEST: usize = 80;
    let mut out = String::with_capacity(message.len().min(4096));
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let n = word.chars().count();
        if n > LONGEST {
            out.extend(word.chars().take(60));
            out.push_str(&format!("... ({n} characters)"));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in message.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

impl std::error::Error for ConfigError {}

/// Crate-wide result; errors carry their context as `anyhow` chains.
pub type Result<T> = anyhow::Result<T>;

/// A panic's message (its payload as text), or "unknown panic".
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}
