//! JUnit XML for `kiln test`: `kiln-out/<pkg>/<name>.test.xml` per test
//! target, the format CI systems read. One `testcase` per test function
//! where a result file is a unittest runner's verbose log (`name (id) ...
//! ok`, as pylon's tests and `cpython_test` write), else one per result
//! file; a failed result file is a failing `testcase` carrying the
//! action's message and output.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// One `testcase`.
#[derive(Debug, PartialEq)]
pub struct Case {
    /// `classname`: the test's dotted path without its name, or the
    /// result file's directory.
    pub class: String,
    /// `name`.
    pub name: String,
    /// How it ended.
    pub outcome: CaseOutcome,
    /// Seconds (0 where the runner does not say).
    pub seconds: f64,
}

/// How a `testcase` ended.
#[derive(Debug, PartialEq)]
pub enum CaseOutcome {
    /// It passed.
    Passed,
    /// It failed; the text says why.
    Failed(String),
    /// It errored (an exception outside its assertions).
    Error(String),
    /// It was skipped; the text says why.
    Skipped(String),
}

/// The test functions a unittest verbose log reports, in order.
pub fn parse_unittest(log: &str) -> Vec<Case> {
    let mut out = Vec::new();
    let mut pending: Option<(String, String)> = None;
    for line in log.lines() {
        // `name (dotted.id)` on its own line: a docstring line follows
        // before ` ... result`.
        let Some((head, result)) = line.rsplit_once(" ... ") else {
            pending = test_head(line);
            continue;
        };
        let Some((name, id)) = test_head(head).or_else(|| pending.take()) else {
            continue;
        };
        let outcome = match result.trim() {
            "ok" | "expected failure" => CaseOutcome::Passed,
            "FAIL" | "unexpected success" => CaseOutcome::Failed(format!("{id}: {result}")),
            "ERROR" => CaseOutcome::Error(format!("{id}: ERROR")),
            r if r.starts_with("skipped") => {
                CaseOutcome::Skipped(unquote(r["skipped".len()..].trim()))
            }
            r if r.starts_with("excluded") => CaseOutcome::Skipped(r.to_owned()),
            _ => continue,
        };
        let class = id
            .strip_suffix(&format!(".{name}"))
            .unwrap_or(&id)
            .to_owned();
        out.push(Case {
            class,
            name,
            outcome,
            seconds: 0.0,
        });
        pending = None;
    }
    out
}

/// A Python `repr` of a string without its one pair of quotes.
fn unquote(s: &str) -> String {
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    s.to_owned()
}

/// `name (dotted.id)` (a subtest's parameters may follow): the name and id.
fn test_head(s: &str) -> Option<(String, String)> {
    let (name, rest) = s.split_once(" (")?;
    let (id, _) = rest.split_once(')')?;
    // The name is an identifier; the id a dotted path, which may pass
    // through `<locals>` of a test factory.
    let name_ok = !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    let id_ok = id.contains('.') && !id.chars().any(char::is_whitespace);
    (name_ok && id_ok).then(|| (name.to_owned(), id.to_owned()))
}

/// Text as XML character data or an attribute value: escaped, and the
/// characters XML 1.0 cannot hold replaced by U+FFFD.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML document of one test target.
pub fn render(suite: &str, cases: &[Case], took: Option<Duration>) -> String {
    let count = |f: fn(&CaseOutcome) -> bool| cases.iter().filter(|c| f(&c.outcome)).count();
    let failures = count(|o| matches!(o, CaseOutcome::Failed(_)));
    let errors = count(|o| matches!(o, CaseOutcome::Error(_)));
    let skipped = count(|o| matches!(o, CaseOutcome::Skipped(_)));
    let time = took.map_or(0.0, |d| d.as_secs_f64());
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        cases.len()
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        xml(suite),
        cases.len()
    );
    for c in cases {
        let open = format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            xml(&c.class),
            xml(&c.name),
            c.seconds
        );
        match &c.outcome {
            CaseOutcome::Passed => {
                let _ = writeln!(s, "{open}/>");
            }
            CaseOutcome::Failed(text) | CaseOutcome::Error(text) => {
                let tag = if matches!(c.outcome, CaseOutcome::Failed(_)) {
                    "failure"
                } else {
                    "error"
                };
                let first = text.lines().next().unwrap_or_default();
                let _ = writeln!(
                    s,
                    "{open}>\n      <{tag} message=\"{}\">{}</{tag}>\n    </testcase>",
                    xml(first),
                    xml(text)
                );
            }
            CaseOutcome::Skipped(why) => {
                let _ = writeln!(
                    s,
                    "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>",
                    xml(why)
                );
            }
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

/// Write `text` to `path` whole: a temporary file beside it, then renamed
/// (removed if either step fails).
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("xml.tmp-{}", std::process::id()));
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        // A full disk leaves no half-written report behind.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_verbose_unittest_logs_and_renders_xml() {
        let log = "test_a (test.test_x.T.test_a) ... ok\n\
                   test_b (test.test_x.T.test_b)\nThe docstring. ... FAIL\n\
                   test_c (test.test_x.U.test_c) ... skipped 'needs <threads> & \"more\"'\n\
                   test_d (test.test_x.U.test_d) ... ERROR\n\
                   noise ... ok\n";
        let cases = parse_unittest(log);
        assert_eq!(cases.len(), 4, "{cases:?}");
        assert_eq!(cases[0].class, "test.test_x.T");
        assert_eq!(cases[0].name, "test_a");
        assert_eq!(
            cases[1].outcome,
            CaseOutcome::Failed("test.test_x.T.test_b: FAIL".into())
        );
        assert_eq!(
            cases[2].outcome,
            CaseOutcome::Skipped("needs <threads> & \"more\"".into())
        );
        let x = render("//p:t ü", &cases, Some(Duration::from_millis(1500)));
        assert!(x.contains("<testsuite name=\"//p:t ü\" tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\" time=\"1.500\">"), "{x}");
        assert!(
            x.contains("<skipped message=\"needs &lt;threads&gt; &amp; &quot;more&quot;\"/>"),
            "{x}"
        );
        assert!(xml("a\u{1}b").contains('\u{FFFD}'));
    }
}
