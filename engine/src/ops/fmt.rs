//! `kiln fmt` and `kiln lint`: BUILD.star files formatted one way, as
//! buildifier does for Bazel, and checked for the mistakes Starlark's
//! linter and BUILD-specific checks find.
//!
//! The formatter reads the data-only BUILD dialect with its own small
//! parser, so that comments survive: a comment on its own line stays
//! before what follows it, one after code stays after it. The output:
//! - 4-space indents; one blank line between top-level statements (none
//!   between consecutive `load()`s); the file ends with one newline;
//! - a top-level call with more than one argument (a rule) has one
//!   argument per line, `name` first, each followed by a comma;
//! - a list, dict or nested call stays on one line when it fits in 79
//!   columns and holds no comment, else one element per line with a
//!   trailing comma (a dict with more than one entry always does);
//! - string lists of `srcs`, `hdrs`, `deps`, `data`, `facades`, `caps`,
//!   `providers`, `dynlink` and `dynlink_ids` are sorted (not a genrule's,
//!   whose `srcs` order is `$(SRCS)`'s, nor a list holding a comment),
//!   and `load()`'s symbols;
//! - literals are kept as written.
//!
//! Anything outside that dialect (a `def`, a comprehension, an operator
//! other than `+`) is left alone: the file is reported, not rewritten.

use std::fmt::Write as _;

use starlark::analysis::AstModuleLint;

/// Attributes whose string lists are sorted.
const SORTED: &[&str] = &[
    "srcs",
    "hdrs",
    "deps",
    "data",
    "facades",
    "caps",
    "providers",
    "dynlink",
    "dynlink_ids",
];

const WIDTH: usize = 79;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Str(String),
    Word(String),
    Punct(char),
    Comment(String),
    Newline,
}

/// Tokens with their 1-based line numbers.
fn lex(src: &str) -> Result<Vec<(Tok, usize)>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                out.push((Tok::Newline, line));
                line += 1;
                i += 1;
            }
            ' ' | '\t' | '\r' => i += 1,
            '#' => {
                let start = i;
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                out.push((Tok::Comment(text.trim_end().to_owned()), line));
            }
            '"' | '\'' => {
                let (text, lines) = string(&chars, i, "")?;
                i += text.chars().count();
                out.push((Tok::Str(text), line));
                line += lines;
            }
            'r' | 'b' if matches!(chars.get(i + 1), Some('"' | '\'')) => {
                let (text, lines) = string(&chars, i + 1, &c.to_string())?;
                i += text.chars().count();
                out.push((Tok::Str(text), line));
                line += lines;
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
                {
                    i += 1;
                }
                out.push((Tok::Word(chars[start..i].iter().collect()), line));
            }
            '(' | ')' | '[' | ']' | '{' | '}' | ',' | ':' | '=' | '+' => {
                out.push((Tok::Punct(c), line));
                i += 1;
            }
            '\\' if chars.get(i + 1) == Some(&'\n') => {
                i += 2;
                line += 1;
            }
            other => {
                return Err(format!(
                    "line {line}: `{other}` is outside what kiln fmt formats"
                ));
            }
        }
    }
    Ok(out)
}

/// The string literal starting at `chars[at]` (a quote), with `prefix`;
/// its text as written and how many newlines it holds.
fn string(chars: &[char], at: usize, prefix: &str) -> Result<(String, usize), String> {
    let q = chars[at];
    let triple = chars.get(at + 1) == Some(&q) && chars.get(at + 2) == Some(&q);
    let mut i = at + if triple { 3 } else { 1 };
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("an unterminated string".to_owned());
        };
        if c == '\\' {
            i += 2;
            continue;
        }
        if c == '\n' && !triple {
            return Err("an unterminated string".to_owned());
        }
        if c == q && (!triple || (chars.get(i + 1) == Some(&q) && chars.get(i + 2) == Some(&q))) {
            i += if triple { 3 } else { 1 };
            break;
        }
        i += 1;
    }
    let body: String = chars[at..i].iter().collect();
    let lines = body.matches('\n').count();
    Ok((format!("{prefix}{body}"), lines))
}

#[derive(Clone, Debug)]
enum Expr {
    Atom(String),
    Call(String, Vec<Item>, Vec<String>),
    List(Vec<Item>, Vec<String>),
    Dict(Vec<Item>, Vec<String>),
    Tuple(Vec<Item>, Vec<String>),
    Plus(Box<Expr>, Box<Expr>),
}

/// An element of a list, dict (key: value), call (name = value) or the
/// file, with its comments.
#[derive(Clone, Debug)]
struct Item {
    before: Vec<String>,
    /// A call argument's or assignment's name, a dict entry's key.
    key: Option<Expr>,
    value: Expr,
    after: Option<String>,
    /// A blank line came before it (top level only).
    blank: bool,
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(1, |t| t.1)
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("line {}: {what}", self.line()))
    }

    fn eat(&mut self, c: char) -> Result<(), String> {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(&format!("expected `{c}`"))
        }
    }

    /// Skip newlines inside brackets, collecting own-line comments.
    fn comments(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(t) = self.peek() {
            match t {
                Tok::Newline => self.pos += 1,
                Tok::Comment(c) => {
                    out.push(c.clone());
                    self.pos += 1;
                }
                _ => break,
            }
        }
        out
    }

    /// A comment right after an element, on its line.
    fn trailing(&mut self) -> Option<String> {
        if let Some(Tok::Comment(c)) = self.peek() {
            let c = c.clone();
            self.pos += 1;
            return Some(c);
        }
        None
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let e = match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Expr::Atom(s)
            }
            Some(Tok::Word(w)) => {
                self.pos += 1;
                if self.peek() == Some(&Tok::Punct('(')) {
                    self.pos += 1;
                    let (items, end) = self.items(')', true)?;
                    Expr::Call(w, items, end)
                } else {
                    Expr::Atom(w)
                }
            }
            Some(Tok::Punct('[')) => {
                self.pos += 1;
                let (items, end) = self.items(']', false)?;
                Expr::List(items, end)
            }
            Some(Tok::Punct('{')) => {
                self.pos += 1;
                let (items, end) = self.items('}', false)?;
                Expr::Dict(items, end)
            }
            Some(Tok::Punct('(')) => {
                self.pos += 1;
                let (items, end) = self.items(')', false)?;
                Expr::Tuple(items, end)
            }
            _ => return self.err("expected a value"),
        };
        Ok(e)
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        while self.peek() == Some(&Tok::Punct('+')) {
            self.pos += 1;
            let r = self.primary()?;
            e = Expr::Plus(Box::new(e), Box::new(r));
        }
        if let Some(Tok::Word(w)) = self.peek()
            && (w == "for" || w == "if")
        {
            return self.err("a comprehension or conditional is outside what kiln fmt formats");
        }
        Ok(e)
    }

    /// Elements up to `close`; `call`: `name = value` arguments.
    fn items(&mut self, close: char, call: bool) -> Result<(Vec<Item>, Vec<String>), String> {
        let mut items = Vec::new();
        loop {
            let before = self.comments();
            if self.peek() == Some(&Tok::Punct(close)) {
                self.pos += 1;
                return Ok((items, before));
            }
            let first = self.expr()?;
            let (key, value) = if call && self.peek() == Some(&Tok::Punct('=')) {
                self.pos += 1;
                (Some(first), self.expr()?)
            } else if close == '}' {
                self.eat(':')?;
                (Some(first), self.expr()?)
            } else {
                (None, first)
            };
            let mut after = self.trailing();
            match self.peek() {
                Some(Tok::Punct(',')) => {
                    self.pos += 1;
                    if after.is_none() {
                        after = self.trailing();
                    }
                }
                Some(Tok::Punct(c)) if *c == close => {}
                Some(Tok::Newline) => {}
                _ => return self.err(&format!("expected `,` or `{close}`")),
            }
            items.push(Item {
                before,
                key,
                value,
                after,
                blank: false,
            });
        }
    }

    /// The file's statements, and comments after the last one.
    fn file(&mut self) -> Result<(Vec<Item>, Vec<String>), String> {
        let mut out = Vec::new();
        let mut before = Vec::new();
        let mut blank = false;
        let mut newlines = 0;
        loop {
            match self.peek().cloned() {
                None => return Ok((out, before)),
                Some(Tok::Newline) => {
                    newlines += 1;
                    if newlines >= 2 && !before.is_empty() {
                        // A blank line after a comment block: keep one.
                        if before.last().is_some_and(|c| !c.is_empty()) {
                            before.push(String::new());
                        }
                    } else if newlines >= 2 {
                        blank = true;
                    }
                    self.pos += 1;
                }
                Some(Tok::Comment(c)) => {
                    before.push(c);
                    newlines = 0;
                    self.pos += 1;
                }
                Some(_) => {
                    let first = self.expr()?;
                    let (key, value) = if self.peek() == Some(&Tok::Punct('=')) {
                        self.pos += 1;
                        (Some(first), self.expr()?)
                    } else {
                        (None, first)
                    };
                    let after = self.trailing();
                    match self.peek() {
                        None | Some(Tok::Newline) => {}
                        _ => return self.err("expected the end of the statement"),
                    }
                    out.push(Item {
                        before: std::mem::take(&mut before),
                        key,
                        value,
                        after,
                        blank,
                    });
                    blank = false;
                    newlines = 0;
                }
            }
        }
    }
}

fn has_comments(e: &Expr) -> bool {
    match e {
        Expr::Atom(s) => s.contains('\n'),
        Expr::Call(_, items, end)
        | Expr::List(items, end)
        | Expr::Dict(items, end)
        | Expr::Tuple(items, end) => {
            !end.is_empty()
                || items.iter().any(|i| {
                    !i.before.is_empty()
                        || i.after.is_some()
                        || has_comments(&i.value)
                        || i.key.as_ref().is_some_and(has_comments)
                })
        }
        Expr::Plus(a, b) => has_comments(a) || has_comments(b),
    }
}

fn flat(e: &Expr) -> String {
    let items = |items: &[Item], sep: &str| -> String {
        items
            .iter()
            .map(|i| match &i.key {
                Some(k) => format!("{}{sep}{}", flat(k), flat(&i.value)),
                None => flat(&i.value),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match e {
        Expr::Atom(s) => s.clone(),
        Expr::Call(f, a, _) => format!("{f}({})", items(a, " = ")),
        Expr::List(a, _) => format!("[{}]", items(a, "")),
        Expr::Dict(a, _) => format!("{{{}}}", items(a, ": ")),
        Expr::Tuple(a, _) if a.len() == 1 => format!("({},)", items(a, "")),
        Expr::Tuple(a, _) => format!("({})", items(a, "")),
        Expr::Plus(a, b) => format!("{} + {}", flat(a), flat(b)),
    }
}

/// Sort a list of plain strings (no comments) in place.
fn sort_strings(e: &mut Expr) {
    match e {
        Expr::List(items, end)
            if end.is_empty()
                && items.iter().all(|i| {
                    i.before.is_empty()
                        && i.after.is_none()
                        && matches!(&i.value, Expr::Atom(s) if s.starts_with('"') || s.starts_with('\''))
                }) =>
        {
            items.sort_by_key(|a| flat(&a.value));
        }
        Expr::Plus(a, b) => {
            sort_strings(a);
            sort_strings(b);
        }
        _ => {}
    }
}

struct Printer {
    out: String,
}

impl Printer {
    fn indent(&mut self, n: usize) {
        self.out.extend(std::iter::repeat_n(' ', n));
    }

    fn comments(&mut self, cs: &[String], ind: usize) {
        for c in cs {
            if c.is_empty() {
                self.out.push('\n');
            } else {
                self.indent(ind);
                self.out.push_str(c);
                self.out.push('\n');
            }
        }
    }

    /// `e` starting at column `col` (already written), indented `ind`.
    fn expr(&mut self, e: &Expr, ind: usize, col: usize, force: bool) {
        let one = flat(e);
        if !force && !has_comments(e) && col + one.chars().count() <= WIDTH && !multi_dict(e) {
            self.out.push_str(&one);
            return;
        }
        match e {
            Expr::Atom(s) => self.out.push_str(s),
            Expr::Plus(a, b) => {
                self.expr(a, ind, col, false);
                self.out.push_str(" + ");
                let col = self.out.len() - self.out.rfind('\n').map_or(0, |i| i + 1);
                self.expr(b, ind, col, false);
            }
            Expr::Call(f, items, end) => {
                self.out.push_str(f);
                // A rule's (top-level call's) lists of several values
                // have one value per line.
                self.block(items, end, ind, '(', ')', " = ", force);
            }
            Expr::List(items, end) => self.block(items, end, ind, '[', ']', "", false),
            Expr::Dict(items, end) => self.block(items, end, ind, '{', '}', ": ", false),
            Expr::Tuple(items, end) => self.block(items, end, ind, '(', ')', "", false),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn block(
        &mut self,
        items: &[Item],
        end: &[String],
        ind: usize,
        open: char,
        close: char,
        sep: &str,
        rule: bool,
    ) {
        self.out.push(open);
        self.out.push('\n');
        let inner = ind + 4;
        for i in items {
            self.comments(&i.before, inner);
            self.indent(inner);
            let mut col = inner;
            if let Some(k) = &i.key {
                let k = flat(k);
                col += k.chars().count() + sep.len();
                self.out.push_str(&k);
                self.out.push_str(sep);
            }
            let long_list = matches!(&i.value, Expr::List(v, _) if v.len() > 1);
            self.expr(&i.value, inner, col, rule && long_list);
            self.out.push(',');
            if let Some(c) = &i.after {
                self.out.push_str("  ");
                self.out.push_str(c);
            }
            self.out.push('\n');
        }
        self.comments(end, inner);
        self.indent(ind);
        self.out.push(close);
    }
}

fn multi_dict(e: &Expr) -> bool {
    matches!(e, Expr::Dict(items, _) if items.len() > 1)
}

/// `src` (a BUILD.star) formatted; an error names the line of a construct
/// outside the BUILD dialect kiln formats.
pub fn format_build(src: &str) -> Result<String, String> {
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
    };
    let (mut stmts, tail) = p.file()?;
    let mut pr = Printer { out: String::new() };
    let mut prev_load = false;
    for (n, s) in stmts.iter_mut().enumerate() {
        let is_load = matches!(&s.value, Expr::Call(f, _, _) if f == "load") && s.key.is_none();
        if n > 0 && !(is_load && prev_load && !s.blank && s.before.is_empty()) {
            pr.out.push('\n');
        }
        prev_load = is_load;
        pr.comments(&s.before, 0);
        let mut col = 0;
        if let Some(k) = &s.key {
            let k = flat(k);
            let _ = write!(pr.out, "{k} = ");
            col = k.chars().count() + 3;
        }
        match &mut s.value {
            Expr::Call(f, items, _) if f == "load" => {
                if items.len() > 1 && items[1..].iter().all(|i| i.key.is_none()) {
                    items[1..].sort_by_key(|a| flat(&a.value));
                }
                pr.expr(&s.value, 0, col, false);
            }
            Expr::Call(kind, items, _) if s.key.is_none() && items.len() > 1 => {
                // (A genrule's `srcs` order is `$(SRCS)`'s: not sorted.)
                let sortable = kind != "genrule";
                // A rule: `name` first, sortable lists sorted, one per line.
                if let Some(i) = items
                    .iter()
                    .position(|i| matches!(&i.key, Some(Expr::Atom(k)) if k == "name"))
                {
                    let it = items.remove(i);
                    items.insert(0, it);
                }
                for i in items.iter_mut() {
                    if let Some(Expr::Atom(k)) = &i.key
                        && sortable
                        && SORTED.contains(&k.as_str())
                    {
                        sort_strings(&mut i.value);
                    }
                }
                pr.expr(&s.value, 0, col, true);
            }
            _ => pr.expr(&s.value, 0, col, false),
        }
        if let Some(c) = &s.after {
            pr.out.push_str("  ");
            pr.out.push_str(c);
        }
        pr.out.push('\n');
    }
    if !tail.is_empty() {
        if !stmts.is_empty() {
            pr.out.push('\n');
        }
        let tail: Vec<String> = tail.into_iter().filter(|c| !c.is_empty()).collect();
        pr.comments(&tail, 0);
    }
    Ok(pr.out)
}

/// One lint finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Lint {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// The check's name (`unused-load`, `duplicate-entry`, `unsorted`,
    /// or Starlark's own).
    pub name: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// Lints of a BUILD.star: Starlark's (`globals` are the names it may
/// use), an unused `load()` symbol, a duplicate entry in a list, and a
/// sortable list out of order.
pub fn lint_build(file: &str, src: &str, globals: &std::collections::HashSet<String>) -> Vec<Lint> {
    let mut out = Vec::new();
    match starlark::syntax::AstModule::parse(
        file,
        src.to_owned(),
        &crate::load::loader::build_dialect(),
    ) {
        Ok(ast) => {
            for l in ast.lint(Some(globals)) {
                let span = l.location.resolve_span();
                out.push(Lint {
                    line: span.begin.line + 1,
                    col: span.begin.column + 1,
                    name: l.short_name.clone(),
                    message: l.problem.clone(),
                });
            }
        }
        Err(e) => {
            out.push(Lint {
                line: 1,
                col: 1,
                name: "syntax".to_owned(),
                message: crate::error::format_starlark_error(&e),
            });
            return out;
        }
    }
    // The BUILD-specific checks, on the tokens.
    let Ok(toks) = lex(src) else {
        return out;
    };
    let words = |t: &Tok| match t {
        Tok::Word(w) => Some(w.clone()),
        _ => None,
    };
    // Symbols bound by load() and whether they are used after.
    let mut i = 0;
    while i < toks.len() {
        if toks[i].0 == Tok::Word("load".into())
            && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Punct('('))
        {
            let mut j = i + 2;
            let mut first = true;
            while j < toks.len() && toks[j].0 != Tok::Punct(')') {
                if let Tok::Str(s) = &toks[j].0 {
                    let is_alias = j >= 2 && toks[j - 1].0 == Tok::Punct('=');
                    let name = if is_alias {
                        toks.get(j - 2).and_then(|t| words(&t.0))
                    } else {
                        Some(s.trim_matches(['"', '\'']).to_owned())
                    };
                    if !first && let Some(name) = name {
                        let used = toks.iter().enumerate().any(|(k, t)| {
                            (k < i || k > j + 1) && words(&t.0).as_deref() == Some(name.as_str())
                        });
                        if !used {
                            out.push(Lint {
                                line: toks[j].1,
                                col: 1,
                                name: "unused-load".to_owned(),
                                message: format!(
                                    "`{name}` is loaded but never used; remove it from the load()"
                                ),
                            });
                        }
                    }
                    first = false;
                }
                j += 1;
            }
            i = j;
        }
        i += 1;
    }
    // `attr = [...]`: duplicates, and order where kiln fmt sorts (not in
    // a genrule).
    let mut i = 0;
    let mut depth = 0usize;
    let mut rule = String::new();
    while i + 2 < toks.len() {
        match &toks[i].0 {
            Tok::Punct('(' | '[' | '{') => {
                if depth == 0
                    && toks[i].0 == Tok::Punct('(')
                    && let Some(w) = i.checked_sub(1).and_then(|k| words(&toks[k].0))
                {
                    rule = w;
                }
                depth += 1;
            }
            Tok::Punct(')' | ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        if let (Tok::Word(attr), Tok::Punct('='), Tok::Punct('[')) =
            (&toks[i].0, &toks[i + 1].0, &toks[i + 2].0)
        {
            let mut j = i + 3;
            let mut items: Vec<(String, usize)> = Vec::new();
            let mut plain = true;
            while j < toks.len() && toks[j].0 != Tok::Punct(']') {
                match &toks[j].0 {
                    Tok::Str(s) => items.push((s.clone(), toks[j].1)),
                    Tok::Punct(',') | Tok::Newline | Tok::Comment(_) => {}
                    _ => plain = false,
                }
                j += 1;
            }
            let mut seen = std::collections::HashSet::new();
            for (s, line) in &items {
                if !seen.insert(s.clone()) {
                    out.push(Lint {
                        line: *line,
                        col: 1,
                        name: "duplicate-entry".to_owned(),
                        message: format!("`{attr}` lists {s} twice; remove one"),
                    });
                }
            }
            if plain
                && rule != "genrule"
                && SORTED.contains(&attr.as_str())
                && items.windows(2).any(|w| w[0].0 > w[1].0)
            {
                out.push(Lint {
                    line: toks[i].1,
                    col: 1,
                    name: "unsorted".to_owned(),
                    message: format!("`{attr}` is not sorted; `kiln fmt` sorts it"),
                });
            }
            i = j;
        }
        i += 1;
    }
    out.sort_by(|a, b| (a.line, a.col, &a.name).cmp(&(b.line, b.col, &b.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rules_lists_comments_and_loads() {
        let src = "load(\"//s:defs.star\", \"OPT\", \"A\")\n# The library.\ncc_thing(outs=[\"b\",\"a\"], name = 'x', srcs = [\"z.c\", \"a.c\"],  # two\n  cmd = \"true\") # after\n\n\n\nx = select({\":a\": [1], \"//conditions:default\": []}) + [\"tail\"]\n# end\n";
        let want = "load(\"//s:defs.star\", \"A\", \"OPT\")\n\n# The library.\ncc_thing(\n    name = 'x',\n    outs = [\n        \"b\",\n        \"a\",\n    ],\n    srcs = [\n        \"a.c\",\n        \"z.c\",\n    ],  # two\n    cmd = \"true\",\n)  # after\n\nx = select({\":a\": [1], \"//conditions:default\": []}) + [\"tail\"]\n\n# end\n";
        let got = format_build(src).unwrap();
        assert_eq!(got, want);
        assert_eq!(format_build(&got).unwrap(), got, "idempotent");
        assert!(format_build("def f():\n    pass\n").is_err());
        assert!(format_build("x = [a for a in b]\n").is_err());
    }

    /// Every BUILD.star in the repository (fixtures included) formats to
    /// a fixed point.
    #[test]
    fn idempotent_over_the_repository() {
        fn walk(d: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            let Ok(rd) = std::fs::read_dir(d) else { return };
            for e in rd.flatten() {
                let p = e.path();
                let name = e.file_name();
                if p.is_dir() && name != "target" && name != "kiln-out" && name != ".git" {
                    walk(&p, out);
                } else if name == "BUILD.star" {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
            &mut files,
        );
        assert!(files.len() > 50, "{}", files.len());
        for f in files {
            let src = std::fs::read_to_string(&f).unwrap();
            let Ok(once) = format_build(&src) else {
                continue;
            };
            assert_eq!(format_build(&once).unwrap(), once, "{}", f.display());
        }
    }

    #[test]
    fn lints() {
        let globals: std::collections::HashSet<String> =
            ["cc_thing".to_owned(), "load".to_owned()].into();
        let src = "load(\"//s:d.star\", \"A\", \"B\")\ncc_thing(name = A, srcs = [\"b\", \"a\", \"b\"], outs = [\"o\"], cmd = \"\")\n";
        let names: Vec<String> = lint_build("BUILD.star", src, &globals)
            .into_iter()
            .map(|l| format!("{}:{}", l.line, l.name))
            .collect();
        assert!(names.contains(&"1:unused-load".to_owned()), "{names:?}");
        assert!(names.contains(&"2:duplicate-entry".to_owned()), "{names:?}");
        assert!(names.contains(&"2:unsorted".to_owned()), "{names:?}");
    }
}
