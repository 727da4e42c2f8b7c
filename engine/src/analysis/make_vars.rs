//! Bazel's "Make" variable expansion, behind `ctx.expand_make_variables`.
//!
//! The syntax is Bazel's: `$$` is a literal `$`; `$(NAME)` is a variable;
//! `$(FUNC ARG)` is a function (`location`, `locations`, `execpath`,
//! `execpaths`, `rootpath`, `rootpaths`); `$X` for any other single
//! character `X` is the variable `X` (so `$@` and `$<`, and so `$PWD` is
//! the variable `P`: a shell variable is written `$$PWD`). A variable or
//! function that is not defined is an error, never left for the shell.
//!
//! Built-in variables: `RULEDIR` (the target's output directory,
//! `kiln-out/<package>`), `GENDIR` and `BINDIR` (the output root,
//! `kiln-out`). Rules add their own (genrule: `SRCS`, `OUTS`, `@`, `<`,
//! `@D`). Paths are execution-root relative, as the sandbox mirrors the
//! workspace: an `execpath` is `pkg/file` for a source and
//! `kiln-out/pkg/file` for an output; a `rootpath` (Bazel's runfiles path)
//! is `pkg/file` for both. `location` is `execpath`.
//!
//! What this module does not do: resolve labels (the caller's `files`
//! function does, against the target's dependencies), or know about `ctx`.

use std::collections::BTreeMap;
use std::fmt;

use crate::artifact::{Artifact, OUT_DIR};

/// Why an expansion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MakeVarError {
    /// `$(NAME)` (or `$X`) names no variable or function.
    #[error("$({name}) not defined; the variables here are {defined}; {hint}")]
    NotDefined {
        /// The name as written.
        name: String,
        /// The defined variables and functions, for the message.
        defined: String,
        /// What the author probably meant, and how to write it.
        hint: String,
    },
    /// A `$(` without its `)`.
    #[error(
        "unterminated variable reference `{0}`; close it with `)`, or write `$$` for a literal `$`"
    )]
    Unterminated(String),
    /// A `$` at the very end.
    #[error("unterminated `$` at the end; write `$$` for a literal `$`")]
    TrailingDollar,
    /// A location function failed (label not a dependency, wrong count).
    #[error("{0}")]
    Location(String),
}

/// How a location function renders a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathStyle {
    /// Execution-root relative (`kiln-out/pkg/f` for outputs).
    Exec,
    /// Runfiles-root relative (`pkg/f`).
    Root,
}

impl PathStyle {
    /// The path of `a` in this style.
    pub fn of(self, a: &Artifact) -> String {
        let p = a.path();
        match self {
            PathStyle::Exec => p.to_owned(),
            PathStyle::Root => p
                .strip_prefix(OUT_DIR)
                .and_then(|r| r.strip_prefix('/'))
                .unwrap_or(p)
                .to_owned(),
        }
    }
}

/// The built-in variables of a target in `package`.
pub fn builtin_vars(package: &str) -> BTreeMap<String, String> {
    let ruledir = if package.is_empty() {
        OUT_DIR.to_owned()
    } else {
        format!("{OUT_DIR}/{package}")
    };
    BTreeMap::from([
        ("BINDIR".to_owned(), OUT_DIR.to_owned()),
        ("GENDIR".to_owned(), OUT_DIR.to_owned()),
        ("RULEDIR".to_owned(), ruledir),
    ])
}

/// Expand `text`. `vars` are the variables; `files(label)` resolves a
/// location function's argument to files (or says why it cannot).
pub fn expand(
    text: &str,
    vars: &BTreeMap<String, String>,
    files: &dyn Fn(&str) -> Result<Vec<Artifact>, String>,
) -> Result<String, MakeVarError> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let Some((j, next)) = chars.next() else {
            return Err(MakeVarError::TrailingDollar);
        };
        match next {
            '$' => out.push('$'),
            '(' => {
                let body_start = j + 1;
                let Some(len) = text[body_start..].find(')') else {
                    return Err(MakeVarError::Unterminated(text[i..].to_owned()));
                };
                let body = &text[body_start..body_start + len];
                // Skip the body and the `)`.
                while chars.next_if(|(k, _)| *k <= body_start + len).is_some() {}
                out.push_str(&expand_one(body, vars, files)?);
            }
            other => {
                let name = other.to_string();
                let Some(v) = vars.get(&name) else {
                    let rest = &text[j..];
                    let word = rest
                        .find(|c: char| !is_name(c))
                        .map_or(rest, |e| &rest[..e]);
                    return Err(not_defined(&name, Form::Char(word), vars));
                };
                out.push_str(v);
            }
        }
    }
    Ok(out)
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// How `name` was written: `$X`, `$(NAME)` or `$(FUNC ARG)`.
enum Form<'a> {
    /// `$X`, followed by the rest of a shell word.
    Char(&'a str),
    /// `$(NAME)`.
    Paren,
    /// `$(FUNC ...)`.
    Function,
}

fn not_defined(name: &str, form: Form, vars: &BTreeMap<String, String>) -> MakeVarError {
    let mut defined: Vec<String> = vars.keys().map(|k| format!("$({k})")).collect();
    defined.extend(FUNCTIONS.iter().map(|f| format!("$({f} LABEL)")));
    let hint = match form {
        Form::Char(word) if !word.is_empty() && word.chars().all(is_name) => {
            format!("a shell variable is written `$${word}`, a literal `$` is `$$`")
        }
        Form::Char(_) => "a literal `$` is written `$$`".to_owned(),
        Form::Paren => {
            format!("a shell command substitution is written `$$({name})`, a literal `$` is `$$`")
        }
        Form::Function => format!("`{name}` is not one of the functions above"),
    };
    MakeVarError::NotDefined {
        name: name.to_owned(),
        defined: defined.join(", "),
        hint,
    }
}

/// The location functions.
const FUNCTIONS: [&str; 6] = [
    "location",
    "locations",
    "execpath",
    "execpaths",
    "rootpath",
    "rootpaths",
];

fn expand_one(
    body: &str,
    vars: &BTreeMap<String, String>,
    files: &dyn Fn(&str) -> Result<Vec<Artifact>, String>,
) -> Result<String, MakeVarError> {
    let Some((func, arg)) = body.split_once(' ') else {
        return vars
            .get(body)
            .cloned()
            .ok_or_else(|| not_defined(body, Form::Paren, vars));
    };
    location_function(func, arg, files)
        .unwrap_or_else(|| Err(not_defined(func, Form::Function, vars)))
}

/// Expand only the location functions in `text`, leaving every other
/// `$(...)` and `$` as written: Bazel's `ctx.expand_location`.
pub fn expand_locations(
    text: &str,
    files: &dyn Fn(&str) -> Result<Vec<Artifact>, String>,
) -> Result<String, MakeVarError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("$(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else {
            rest = &rest[i..];
            break;
        };
        let call = after[..end]
            .split_once(' ')
            .and_then(|(func, arg)| location_function(func, arg, files));
        match call {
            Some(paths) => out.push_str(&paths?),
            None => out.push_str(&rest[i..i + 3 + end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `$(func arg)` for a location function; `None` when `func` is not one.
fn location_function(
    func: &str,
    arg: &str,
    files: &dyn Fn(&str) -> Result<Vec<Artifact>, String>,
) -> Option<Result<String, MakeVarError>> {
    let (style, multi) = match func {
        "location" | "execpath" => (PathStyle::Exec, false),
        "locations" | "execpaths" => (PathStyle::Exec, true),
        "rootpath" => (PathStyle::Root, false),
        "rootpaths" => (PathStyle::Root, true),
        _ => return None,
    };
    Some(location_paths(func, arg.trim(), style, multi, files))
}

fn location_paths(
    func: &str,
    arg: &str,
    style: PathStyle,
    multi: bool,
    files: &dyn Fn(&str) -> Result<Vec<Artifact>, String>,
) -> Result<String, MakeVarError> {
    let fs = files(arg).map_err(|e| MakeVarError::Location(format!("`$({func} {arg})`: {e}")))?;
    if !multi && fs.len() != 1 {
        return Err(MakeVarError::Location(format!(
            "`$({func} {arg})` expects exactly one file, but `{arg}` provides {}; use `$({func}s {arg})`",
            fs.len()
        )));
    }
    Ok(fs
        .iter()
        .map(|a| shell_quote(&style.of(a)))
        .collect::<Vec<_>>()
        .join(" "))
}

/// `p` as one shell word: unchanged when it holds only characters the
/// shell leaves alone, else single-quoted (a file name with a space, a
/// quote or a `$`).
pub fn shell_quote(p: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./+=@%,:".contains(c);
    if !p.is_empty() && p.chars().all(safe) {
        p.to_owned()
    } else {
        format!("'{}'", p.replace('\'', "'\\''"))
    }
}

/// An expansion error with the attribute it happened in, raised by
/// `ctx.expand_make_variables` so that analysis reports it at the target's
/// declaration in its BUILD file (as Bazel does).
#[derive(Debug)]
pub struct AttributeExpansionError {
    /// The attribute (`cmd`).
    pub attribute: String,
    /// What went wrong.
    pub error: MakeVarError,
}

impl fmt::Display for AttributeExpansionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "in the `{}` attribute: {}", self.attribute, self.error)
    }
}

impl std::error::Error for AttributeExpansionError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label::Label;

    fn files(arg: &str) -> Result<Vec<Artifact>, String> {
        let owner = Label::parse_absolute("//a:gen").unwrap();
        match arg {
            ":src" => Ok(vec![Artifact::source("a/in.txt".into())]),
            ":gen" => Ok(vec![
                Artifact::output(&owner, "x.txt"),
                Artifact::output(&owner, "y.txt"),
            ]),
            _ => Err(format!("`{arg}` is not a dependency")),
        }
    }

    fn vars() -> BTreeMap<String, String> {
        let mut v = builtin_vars("a/b");
        v.insert("@".into(), "kiln-out/a/b/o.txt".into());
        v
    }

    fn ex(t: &str) -> Result<String, MakeVarError> {
        expand(t, &vars(), &files)
    }

    #[test]
    fn variables_functions_and_escapes() {
        assert_eq!(
            ex("echo $(RULEDIR) $(GENDIR) $(BINDIR) > $@").unwrap(),
            "echo kiln-out/a/b kiln-out kiln-out > kiln-out/a/b/o.txt"
        );
        assert_eq!(
            ex("echo $$HOME $$(date) $$$$").unwrap(),
            "echo $HOME $(date) $$"
        );
        assert_eq!(
            ex("cat $(location :src) $(execpath :src)").unwrap(),
            "cat a/in.txt a/in.txt"
        );
        assert_eq!(
            ex("$(execpaths :gen) | $(rootpaths :gen) | $(rootpath :src)").unwrap(),
            "kiln-out/a/x.txt kiln-out/a/y.txt | a/x.txt a/y.txt | a/in.txt"
        );
        assert_eq!(
            ex("naïve ü → $(RULEDIR) 🎉").unwrap(),
            "naïve ü → kiln-out/a/b 🎉"
        );
        assert_eq!(builtin_vars("")["RULEDIR"], "kiln-out");
    }

    #[test]
    fn undefined_and_malformed_references_are_errors() {
        let e = ex("echo $(FOO) > $@").unwrap_err();
        assert!(matches!(&e, MakeVarError::NotDefined { name, .. } if name == "FOO"));
        let text = e.to_string();
        assert!(
            text.starts_with("$(FOO) not defined; the variables here are $(@), $(BINDIR)"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "a shell command substitution is written `$$(FOO)`, a literal `$` is `$$`"
            ),
            "{text}"
        );
        let e = ex("echo $PWD").unwrap_err();
        assert!(matches!(&e, MakeVarError::NotDefined { name, .. } if name == "P"));
        assert!(e.to_string().contains("`$$PWD`"), "{e}");
        assert!(
            matches!(ex("$(frobnicate :src)"), Err(MakeVarError::NotDefined { name, .. }) if name == "frobnicate")
        );
        assert!(matches!(
            ex("echo $(RULEDIR"),
            Err(MakeVarError::Unterminated(_))
        ));
        assert_eq!(ex("echo $"), Err(MakeVarError::TrailingDollar));
        assert!(
            matches!(ex("$(location :gen)"), Err(MakeVarError::Location(m)) if m.contains("provides 2"))
        );
        assert!(
            matches!(ex("$(location :nope)"), Err(MakeVarError::Location(m)) if m.contains("not a dependency"))
        );
        // `ctx.expand_location` leaves everything but location functions.
        assert_eq!(
            expand_locations("$(FOO) $$HOME $(rootpath :src) $(", &files).unwrap(),
            "$(FOO) $$HOME a/in.txt $("
        );
    }
}
