//! Limits on what a BUILD or `.star` file may ask of kiln: checks of the
//! raw bytes before parsing (UTF-8, NUL bytes, bracket nesting deep enough
//! to exhaust the parser's stack) and the depth of `load()` chains. Each
//! error names `file:line:col` and what to do.

use crate::error::Location;

/// The deepest nesting of `(`, `[` and `{` accepted (Python's parser stops
/// at 200).
pub const MAX_NESTING: usize = 200;

/// The most operators (`+`, `not`, `.`, ...) one expression may chain,
/// counting those of the enclosing expressions (the parser and compiler
/// recurse once per operator). Commas separate expressions.
pub const MAX_OPERATORS: usize = 1000;

/// The longest chain of `load()`s accepted.
pub const MAX_LOAD_DEPTH: usize = 100;

/// Line and column (1-based; the column counts characters of valid text
/// before `offset`) of byte `offset` in `bytes`.
fn position(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|p| p + 1)
        .unwrap_or(0);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, col)
}

fn at(file: &str, bytes: &[u8], offset: usize) -> Location {
    let (line, col) = position(bytes, offset);
    Location {
        file: file.to_owned(),
        line,
        col,
    }
}

/// Check the raw bytes of `file` and return them as text, or where and why
/// they cannot be a Starlark file.
pub fn check_source(file: &str, bytes: Vec<u8>) -> Result<String, (Location, String)> {
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let bytes = e.as_bytes();
            let off = e.utf8_error().valid_up_to();
            return Err((
                at(file, bytes, off),
                format!(
                    "the file is not valid UTF-8 (byte 0x{:02x}); save it as UTF-8",
                    bytes[off]
                ),
            ));
        }
    };
    let b = text.as_bytes();
    if let Some(off) = b.iter().position(|&c| c == 0) {
        return Err((
            at(file, b, off),
            "the file contains a NUL byte; remove it (a BUILD file is text)".to_owned(),
        ));
    }
    // Bracket depth and operators per statement, outside strings and
    // comments.
    // For each open bracket, the operator count of the expression it is in.
    let mut base: Vec<usize> = Vec::new();
    let mut ops = 0usize;
    let mut i = 0;
    let too_complex = |i: usize| {
        Err((
            at(file, b, i),
            format!(
                "more than {MAX_OPERATORS} operators in one statement; split it into several (name the parts)"
            ),
        ))
    };
    while i < b.len() {
        match b[i] {
            b'\n' if base.is_empty() && (i == 0 || b[i - 1] != b'\\') => ops = 0,
            b',' => ops = base.last().copied().unwrap_or(0),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'|' | b'&' | b'^' | b'~' | b'<' | b'>' | b'.'
            | b'=' | b'!' => {
                ops += 1;
                if ops > MAX_OPERATORS {
                    return too_complex(i);
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if matches!(
                    &b[start..i],
                    b"not" | b"and" | b"or" | b"if" | b"else" | b"in" | b"lambda"
                ) {
                    ops += 1;
                    if ops > MAX_OPERATORS {
                        return too_complex(start);
                    }
                }
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                let triple = b.get(i..i + 3) == Some(&[q, q, q][..]);
                i += if triple { 3 } else { 1 };
                while i < b.len() {
                    if b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if triple {
                        if b.get(i..i + 3) == Some(&[q, q, q][..]) {
                            i += 2;
                            break;
                        }
                    } else if b[i] == q || b[i] == b'\n' {
                        break;
                    }
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                base.push(ops);
                if base.len() > MAX_NESTING {
                    return Err((
                        at(file, b, i),
                        format!(
                            "brackets nested more than {MAX_NESTING} deep; split the expression (name the inner parts)"
                        ),
                    ));
                }
            }
            b')' | b']' | b'}' => ops = base.pop().unwrap_or(0),
            _ => {}
        }
        i += 1;
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bytes_are_located() {
        let (loc, msg) =
            check_source("p/BUILD.star", b"x = 1\ny = \"\xff\"\n".to_vec()).unwrap_err();
        assert_eq!((loc.line, loc.col), (2, 6), "{msg}");
        assert!(msg.contains("UTF-8"));
        let (loc, _) = check_source("BUILD.star", b"a = 1\n\nb =\x00 2".to_vec()).unwrap_err();
        assert_eq!((loc.line, loc.col), (3, 4));
        let deep = format!("x = {}{}", "[".repeat(10_000), "]".repeat(10_000));
        let (loc, msg) = check_source("BUILD.star", deep.into_bytes()).unwrap_err();
        assert_eq!((loc.line, loc.col), (1, 5 + MAX_NESTING), "{msg}");
        // Brackets in strings and comments do not count.
        let ok = format!(
            "# {}\nx = \"{}\"\ny = '''\n{}'''\n",
            "(".repeat(500),
            "[".repeat(500),
            "{".repeat(500)
        );
        assert!(check_source("BUILD.star", ok.into_bytes()).is_ok());
        assert_eq!(
            check_source("B", "é = 'ü'".as_bytes().to_vec()).unwrap(),
            "é = 'ü'"
        );
        let chain = format!("a = 1\nx = {}True", "not ".repeat(5000));
        let (loc, msg) = check_source("BUILD.star", chain.into_bytes()).unwrap_err();
        assert_eq!(loc.line, 2, "{msg}");
        // A long list is not complex; a statement per line resets the count.
        let list = format!("x = [{}]\n", "-1,".repeat(100_000));
        assert!(check_source("BUILD.star", list.into_bytes()).is_ok());
        // Commas inside a chain's operands do not reset the chain.
        let chain = format!("x = 0{}\n", " + (0, 1)[0]".repeat(1001));
        assert!(check_source("BUILD.star", chain.into_bytes()).is_err());
        let many = "x = 1 + 2\n".repeat(10_000);
        assert!(check_source("BUILD.star", many.into_bytes()).is_ok());
    }
}
