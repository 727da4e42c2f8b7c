//! Labels and target patterns: the names of everything kiln builds.
//!
//! Owns the syntax of DESIGN.md section 3 (`//pkg/path:name`, `:name`,
//! `//pkg`, and the patterns `//...`, `//pkg/...`, `//pkg:all`) and the
//! newtypes that carry parsed names across module boundaries. It does not
//! know whether a package or target exists; that is the loader's job
//! (`load/`).

use std::fmt;

/// A package path relative to the workspace root, without leading `//`.
///
/// Invariant: empty for the root package, otherwise `/`-separated non-empty
/// segments, none of which is `.` or `..`, with no leading or trailing `/`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PackagePath(String);

/// A target name inside a package (`name` in `//pkg:name`).
///
/// Invariant: non-empty, no `:`; may contain `/` (file targets in
/// subdirectories), but no `.`/`..` segments and no leading or trailing `/`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TargetName(String);

/// A fully qualified label: a package and a target name in it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Label {
    /// The package the target lives in.
    pub package: PackagePath,
    /// The target's name inside its package.
    pub name: TargetName,
}

/// A target pattern on the command line or in a query.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum TargetPattern {
    /// One target: `//pkg:name`.
    Single(Label),
    /// Every target of one package: `//pkg:all` (also `//pkg:*`).
    AllInPackage(PackagePath),
    /// Every target of a package and the packages below it: `//pkg/...`
    /// (`//...` is the whole workspace: the root package path).
    Recursive(PackagePath),
}

/// Why a label or pattern did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid label `{input}`: {reason}")]
pub struct LabelError {
    /// The text as written.
    pub input: String,
    /// What was wrong and what is expected instead.
    pub reason: String,
}

fn err(input: &str, reason: impl Into<String>) -> LabelError {
    LabelError {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

fn check_segments(input: &str, what: &str, s: &str) -> Result<(), LabelError> {
    if s.starts_with('/') || s.ends_with('/') {
        return Err(err(input, format!("{what} must not start or end with `/`")));
    }
    for seg in s.split('/') {
        match seg {
            "" => return Err(err(input, format!("{what} contains an empty segment `//`"))),
            "." | ".." => {
                return Err(err(
                    input,
                    format!("{what} must not contain `{seg}` segments"),
                ));
            }
            _ => {}
        }
    }
    for c in s.chars() {
        if c.is_control() || matches!(c, ':' | '\\' | '"' | '\'') {
            return Err(err(
                input,
                format!("{what} contains the character {c:?}, which is not allowed"),
            ));
        }
    }
    Ok(())
}

impl PackagePath {
    /// The root package (`//`).
    pub fn root() -> Self {
        PackagePath(String::new())
    }

    /// Parse a package path written without `//` (e.g. `caps/sqlite`).
    pub fn new(s: &str) -> Result<Self, LabelError> {
        if !s.is_empty() {
            check_segments(s, "the package path", s)?;
            if s.contains("...") {
                return Err(err(s, "`...` is only allowed at the end of a pattern"));
            }
        }
        Ok(PackagePath(s.to_owned()))
    }

    /// The path relative to the workspace root (`""` for the root package).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` is `other` or lies below it.
    pub fn is_within(&self, other: &PackagePath) -> bool {
        other.0.is_empty()
            || self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }

    /// `self/rel`, for a relative path inside this package.
    pub fn join(&self, rel: &str) -> String {
        if self.0.is_empty() {
            rel.to_owned()
        } else {
            format!("{}/{}", self.0, rel)
        }
    }

    /// The last path segment (the root package has none).
    pub fn last_segment(&self) -> Option<&str> {
        if self.0.is_empty() {
            None
        } else {
            self.0.rsplit('/').next()
        }
    }
}

impl fmt::Display for PackagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "//{}", self.0)
    }
}

impl TargetName {
    /// Parse a target name (the part after `:`).
    pub fn new(s: &str) -> Result<Self, LabelError> {
        if s.is_empty() {
            return Err(err(s, "the target name is empty"));
        }
        check_segments(s, "the target name", s)?;
        Ok(TargetName(s.to_owned()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Label {
    /// Parse an absolute label (`//pkg:name` or `//pkg`).
    pub fn parse_absolute(s: &str) -> Result<Self, LabelError> {
        let Some(rest) = s.strip_prefix("//") else {
            return Err(err(s, "an absolute label starts with `//`"));
        };
        Self::split(s, rest)
    }

    /// Parse a label as written inside package `base`: `//pkg:name`,
    /// `//pkg`, `:name`, or a bare `name` (a target or file of `base`).
    pub fn parse_relative(s: &str, base: &PackagePath) -> Result<Self, LabelError> {
        if s.starts_with('@') {
            return Err(err(
                s,
                "external repositories (`@repo//...`) are not supported; use a `//` label inside the workspace",
            ));
        }
        if let Some(rest) = s.strip_prefix("//") {
            return Self::split(s, rest);
        }
        let name = s.strip_prefix(':').unwrap_or(s);
        if name.is_empty() {
            return Err(err(s, "the target name is empty"));
        }
        Ok(Label {
            package: base.clone(),
            name: TargetName::new(name).map_err(|e| err(s, e.reason))?,
        })
    }

    fn split(input: &str, rest: &str) -> Result<Self, LabelError> {
        let (pkg, name) = match rest.split_once(':') {
            Some((pkg, name)) => {
                if name.is_empty() {
                    return Err(err(input, "the target name after `:` is empty"));
                }
                (pkg, name.to_owned())
            }
            None => {
                let p = PackagePath::new(rest).map_err(|e| err(input, e.reason))?;
                match p.last_segment() {
                    Some(last) => (rest, last.to_owned()),
                    None => {
                        return Err(err(
                            input,
                            "the root package needs an explicit target name (`//:name`)",
                        ));
                    }
                }
            }
        };
        let package = PackagePath::new(pkg).map_err(|e| err(input, e.reason))?;
        let name = TargetName::new(&name).map_err(|e| err(input, e.reason))?;
        Ok(Label { package, name })
    }

    /// The workspace-relative path of a file named by this label.
    pub fn file_path(&self) -> String {
        self.package.join(self.name.as_str())
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "//{}:{}", self.package.0, self.name.0)
    }
}

impl TargetPattern {
    /// Parse a command-line pattern. Patterns are absolute except that a
    /// pattern without `//` is taken relative to the workspace root.
    pub fn parse(s: &str) -> Result<Self, LabelError> {
        let rest = s.strip_prefix("//").unwrap_or(s);
        if rest == "..." {
            return Ok(TargetPattern::Recursive(PackagePath::root()));
        }
        if let Some(pkg) = rest.strip_suffix("/...") {
            let p = PackagePath::new(pkg).map_err(|e| err(s, e.reason))?;
            return Ok(TargetPattern::Recursive(p));
        }
        if let Some((pkg, name)) = rest.split_once(':')
            && Self::is_wildcard(name)
        {
            let p = PackagePath::new(pkg).map_err(|e| err(s, e.reason))?;
            return Ok(TargetPattern::AllInPackage(p));
        }
        // `//pkg/all` names `//pkg/all:all`, which is the wildcard: a
        // target called `all` (`*`, `all-targets`) cannot be named alone,
        // and a pattern must print as text that parses back to it (its
        // text keys persisted plans).
        let l = Label::split(s, rest)?;
        Ok(if Self::is_wildcard(l.name.as_str()) {
            TargetPattern::AllInPackage(l.package)
        } else {
            TargetPattern::Single(l)
        })
    }

    /// Whether a target name in a pattern means every target of the
    /// package.
    fn is_wildcard(name: &str) -> bool {
        matches!(name, "all" | "*" | "all-targets")
    }
}

impl fmt::Display for TargetPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetPattern::Single(l) => write!(f, "{l}"),
            TargetPattern::AllInPackage(p) => write!(f, "{p}:all"),
            TargetPattern::Recursive(p) if p.as_str().is_empty() => f.write_str("//..."),
            TargetPattern::Recursive(p) => write!(f, "{p}/..."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(s: &str) -> PackagePath {
        PackagePath::new(s).unwrap()
    }

    #[test]
    fn absolute_labels() {
        let l = Label::parse_absolute("//a/b:c").unwrap();
        assert_eq!(l.package.as_str(), "a/b");
        assert_eq!(l.name.as_str(), "c");
        assert_eq!(l.to_string(), "//a/b:c");
        assert_eq!(
            Label::parse_absolute("//a/b").unwrap().to_string(),
            "//a/b:b"
        );
        assert_eq!(Label::parse_absolute("//:x").unwrap().to_string(), "//:x");
        assert_eq!(
            Label::parse_absolute("//a:sub/file.txt")
                .unwrap()
                .file_path(),
            "a/sub/file.txt"
        );
    }

    #[test]
    fn relative_labels() {
        let base = pkg("p");
        assert_eq!(
            Label::parse_relative(":t", &base).unwrap().to_string(),
            "//p:t"
        );
        assert_eq!(
            Label::parse_relative("s.txt", &base).unwrap().to_string(),
            "//p:s.txt"
        );
        assert_eq!(
            Label::parse_relative("//q", &base).unwrap().to_string(),
            "//q:q"
        );
        assert_eq!(
            Label::parse_relative("x", &PackagePath::root())
                .unwrap()
                .to_string(),
            "//:x"
        );
    }

    #[test]
    fn bad_labels() {
        for bad in [
            "//",
            "//a:",
            "//a//b:c",
            "//a/:c",
            "//../a:b",
            "//a:b:c",
            "a:b",
            "//a:./b",
            "//a b:c\n",
        ] {
            assert!(
                Label::parse_absolute(bad).is_err(),
                "{bad} should not parse"
            );
        }
        assert!(Label::parse_relative("@repo//a:b", &pkg("p")).is_err());
        assert!(Label::parse_relative(":", &pkg("p")).is_err());
        let e = Label::parse_absolute("//a:").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid label `//a:`: the target name after `:` is empty"
        );
    }

    #[test]
    fn patterns() {
        assert_eq!(
            TargetPattern::parse("//...").unwrap(),
            TargetPattern::Recursive(PackagePath::root())
        );
        assert_eq!(
            TargetPattern::parse("//caps/...").unwrap(),
            TargetPattern::Recursive(pkg("caps"))
        );
        assert_eq!(
            TargetPattern::parse("//caps:all").unwrap(),
            TargetPattern::AllInPackage(pkg("caps"))
        );
        assert_eq!(
            TargetPattern::parse("//caps:x").unwrap(),
            TargetPattern::Single(Label::parse_absolute("//caps:x").unwrap())
        );
        assert_eq!(
            TargetPattern::parse("//a/...").unwrap().to_string(),
            "//a/..."
        );
        assert!(TargetPattern::parse("//a/.../b").is_err());
        // Regression (found by `kiln-fuzz pattern`): `//x/all` parsed as
        // the single target `//x/all:all` but printed as `//x/all:all`,
        // the wildcard, so the two shared a persisted plan.
        for (short, long) in [
            ("//x/all", "//x/all:all"),
            ("//*", "//*:*"),
            ("all-targets", "//all-targets:all-targets"),
        ] {
            let p = TargetPattern::parse(short).unwrap();
            assert!(matches!(p, TargetPattern::AllInPackage(_)), "{short}");
            assert_eq!(p, TargetPattern::parse(long).unwrap());
            assert_eq!(TargetPattern::parse(&p.to_string()).unwrap(), p);
        }
    }

    #[test]
    fn within() {
        assert!(pkg("a/b").is_within(&pkg("a")));
        assert!(pkg("a").is_within(&pkg("a")));
        assert!(!pkg("ab").is_within(&pkg("a")));
        assert!(pkg("x").is_within(&PackagePath::root()));
    }
}
