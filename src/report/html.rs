//! The self-contained HTML page of a report: inline style, no scripts, no network; figures are
//! files beside it. Every text that comes from an experiment file or a table is escaped.

use std::fmt::Write;

use polars::prelude::*;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes a path segment for an `href`/`src` attribute: percent-encodes what is not plainly
/// safe in a URL, so a trial name cannot leave the attribute or the folder.
pub fn url_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

pub const STYLE: &str = "
body { font-family: 'DejaVu Sans', Verdana, sans-serif; margin: 2em auto; max-width: 1400px;
       padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.text, th.text { text-align: left; }
.scroll { overflow-x: auto; max-height: 40em; }
.figures { display: flex; flex-wrap: wrap; gap: 8px; }
.figures figure { margin: 0; }
.figures img { width: 440px; border: 1px solid #eee; }
figcaption { font-size: 12px; }
.grids { display: flex; flex-wrap: wrap; gap: 8px; }
figure.grid { margin: 0; } figure.grid img { width: 300px; image-rendering: pixelated; }
.diverged { color: #b00; } .failed { color: #b00; } .unfinished { color: #a60; }
.collapsed { color: #a40; } .converged { color: #070; } .oscillating { color: #a60; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; }
";

/// Formats a cell: numbers with up to 6 significant digits, empty for null.
fn cell(v: AnyValue) -> (String, bool) {
    match v {
        AnyValue::Null => (String::new(), false),
        AnyValue::Float64(x) => (number(x), false),
        AnyValue::Float32(x) => (number(x as f64), false),
        AnyValue::String(s) => (s.to_string(), true),
        AnyValue::StringOwned(s) => (s.to_string(), true),
        other => {
            let s = other.to_string();
            let text = s.parse::<f64>().is_err();
            (s, text)
        }
    }
}

/// A number as a person reads it: 6 significant digits.
pub fn number(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else if x == 0.0 {
        "0".into()
    } else if x.abs() >= 1e6 || x.abs() < 1e-3 {
        format!("{x:.4e}")
    } else {
        let digits = (5 - x.abs().log10().floor() as i32).max(0) as usize;
        let s = format!("{x:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

/// A table of a frame; `link` turns the cells of column `trial` into links to `#trial-NAME`,
/// and `outcome` cells get their outcome's class.
pub fn table(out: &mut String, df: &DataFrame, link_trials: bool) {
    out.push_str("<div class=\"scroll\"><table>\n<tr>");
    for name in df.get_column_names() {
        let _ = write!(out, "<th class=\"text\">{}</th>", escape(name));
    }
    out.push_str("</tr>\n");
    let columns = df.columns();
    for row in 0..df.height() {
        out.push_str("<tr>");
        for c in columns {
            let (text, is_text) = cell(c.get(row).unwrap_or(AnyValue::Null));
            let class = if is_text { " class=\"text\"" } else { "" };
            let name = c.name().as_str();
            if link_trials && name == "trial" {
                let _ = write!(
                    out,
                    "<td class=\"text\"><a href=\"#trial-{}\">{}</a></td>",
                    url_segment(&text),
                    escape(&text)
                );
            } else if name == "outcome" {
                let _ = write!(
                    out,
                    "<td class=\"text {}\">{}</td>",
                    escape(&text),
                    escape(&text)
                );
            } else {
                let _ = write!(out, "<td{class}>{}</td>", escape(&text));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
}

/// A row of figures: each a PNG shown and linked to its SVG.
pub fn figures(out: &mut String, folder: &str, figs: &[(String, String)]) {
    if figs.is_empty() {
        return;
    }
    out.push_str("<div class=\"figures\">\n");
    for (stem, caption) in figs {
        let base = if folder.is_empty() {
            url_segment(stem)
        } else {
            format!("{folder}/{}", url_segment(stem))
        };
        let _ = writeln!(
            out,
            "<figure><a href=\"{base}.svg\"><img src=\"{base}.png\" alt=\"{c}\" loading=\"lazy\"></a>\
             <figcaption>{c} (<a href=\"{base}.svg\">SVG</a>)</figcaption></figure>",
            c = escape(caption)
        );
    }
    out.push_str("</div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert(\"x\")</script> & 'y'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(url_segment("a b/../c\"<"), "a%20b%2F..%2Fc%22%3C");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(1234.56789), "1234.57");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(1e-5), "1.0000e-5");
        assert_eq!(number(f64::INFINITY), "inf");
        assert_eq!(number(f64::NAN), "NaN");
    }
}
