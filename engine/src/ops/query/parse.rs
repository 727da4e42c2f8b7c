//! Parsing a query: tokens, the expression tree, and the checks that
//! patterns and function arities are right.

use crate::label::TargetPattern;

use super::QueryError;

/// A parsed query expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A target pattern.
    Pattern(TargetPattern),
    /// A plain word used as a function argument (regex, depth).
    Word(String),
    /// `f(args...)`.
    Call(String, Vec<Expr>),
    /// `a op b`.
    Binary(SetOp, Box<Expr>, Box<Expr>),
    /// `let name = value in body`.
    Let(String, Box<Expr>, Box<Expr>),
    /// `$name`, bound by an enclosing `let`.
    Var(String),
}

/// Set operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOp {
    /// `+`, `union`.
    Union,
    /// `^`, `intersect`.
    Intersect,
    /// `-`, `except`.
    Except,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    Comma,
    Word(String),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::Open);
            }
            ')' => {
                chars.next();
                out.push(Tok::Close);
            }
            ',' => {
                chars.next();
                out.push(Tok::Comma);
            }
            '"' | '\'' => {
                chars.next();
                let mut w = String::new();
                loop {
                    match chars.next() {
                        Some(x) if x == c => break,
                        Some(x) => w.push(x),
                        None => {
                            return Err(format!("unterminated quoted word starting with {c}{w}"));
                        }
                    }
                }
                out.push(Tok::Word(w));
            }
            _ => {
                let mut w = String::new();
                while let Some(&x) = chars.peek() {
                    if x.is_whitespace() || matches!(x, '(' | ')' | ',') {
                        break;
                    }
                    w.push(x);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

/// How deep a query may nest: each parenthesis, function call, `let` and
/// each operator of a chain (`a + b + c` is two levels deep: operators
/// are left-associative) is a level. The parser, the checks and the
/// evaluator recurse once per level; deeper queries are refused rather
/// than allowed to exhaust the stack. `let` splits a long chain.
pub const MAX_DEPTH: usize = 1000;

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    /// Levels (see [`MAX_DEPTH`]) around the token being parsed.
    depth: usize,
}

const FUNCTIONS: &[&str] = &[
    "deps",
    "rdeps",
    "kind",
    "filter",
    "actions",
    "somepath",
    "allpaths",
    "tests",
    "attr",
    "labels",
    "buildfiles",
    "rbuildfiles",
    "siblings",
];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    /// One level deeper for `f`.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        self.deeper()?;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn deeper(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "the expression nests more than {MAX_DEPTH} levels deep (parentheses, function calls, `let`s and chained operators each count); split it with `let NAME = EXPR in ...`"
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, String> {
        // Each operator of the chain is a level, for the rest of it.
        let entry = self.depth;
        let r = self.chain();
        self.depth = entry;
        r
    }

    fn chain(&mut self) -> Result<Expr, String> {
        let mut lhs = self.term()?;
        loop {
            let op = match self.peek() {
                // `in` ends the value of a `let`.
                Some(Tok::Word(w)) if w == "in" => return Ok(lhs),
                Some(Tok::Word(w)) => match w.as_str() {
                    "+" | "union" => SetOp::Union,
                    "^" | "intersect" => SetOp::Intersect,
                    "-" | "except" => SetOp::Except,
                    _ => {
                        return Err(format!(
                            "expected an operator (`+`, `^`, `-`) or the end, found `{w}`"
                        ));
                    }
                },
                _ => return Ok(lhs),
            };
            self.pos += 1;
            self.deeper()?;
            let rhs = self.term()?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn term(&mut self) -> Result<Expr, String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Open) => {
                self.pos += 1;
                self.nested(|p| {
                    let e = p.expr()?;
                    p.expect_close()?;
                    Ok(e)
                })
            }
            Some(Tok::Word(w)) if w == "let" => {
                self.pos += 1;
                let usage = "`let` is written `let NAME = EXPR in EXPR`";
                let name = match self.peek() {
                    Some(Tok::Word(n)) if is_var_name(n) => n.clone(),
                    _ => return Err(format!("{usage}: expected a variable name after `let`")),
                };
                self.pos += 1;
                if self.peek() != Some(&Tok::Word("=".to_owned())) {
                    return Err(format!("{usage}: expected ` = ` after `let {name}`"));
                }
                self.pos += 1;
                self.nested(|p| {
                    let value = p.expr()?;
                    if p.peek() != Some(&Tok::Word("in".to_owned())) {
                        return Err(format!(
                            "{usage}: expected `in` after the value of `{name}`"
                        ));
                    }
                    p.pos += 1;
                    let body = p.expr()?;
                    Ok(Expr::Let(name, Box::new(value), Box::new(body)))
                })
            }
            Some(Tok::Word(w)) if w.starts_with('$') => {
                self.pos += 1;
                if !is_var_name(&w[1..]) {
                    return Err(format!("`{w}` is not a variable reference (`$name`)"));
                }
                Ok(Expr::Var(w[1..].to_owned()))
            }
            Some(Tok::Word(w)) => {
                self.pos += 1;
                if self.peek() == Some(&Tok::Open) {
                    if !FUNCTIONS.contains(&w.as_str()) {
                        return Err(format!(
                            "unknown function `{w}`; known functions: {}",
                            FUNCTIONS.join(", ")
                        ));
                    }
                    self.pos += 1;
                    let args = self.nested(|p| {
                        let mut args = vec![p.arg()?];
                        while p.peek() == Some(&Tok::Comma) {
                            p.pos += 1;
                            args.push(p.arg()?);
                        }
                        p.expect_close()?;
                        Ok(args)
                    })?;
                    return Ok(Expr::Call(w, args));
                }
                Ok(Expr::Word(w))
            }
            Some(t) => Err(format!(
                "unexpected `{}`",
                match t {
                    Tok::Close => ")",
                    Tok::Comma => ",",
                    _ => "?",
                }
            )),
            None => Err("unexpected end of the expression".to_owned()),
        }
    }

    fn arg(&mut self) -> Result<Expr, String> {
        self.expr()
    }

    fn expect_close(&mut self) -> Result<(), String> {
        if self.peek() == Some(&Tok::Close) {
            self.pos += 1;
            Ok(())
        } else {
            Err("expected `)`".to_owned())
        }
    }
}

fn is_var_name(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parse a query expression.
pub fn parse(expr: &str) -> Result<Expr, QueryError> {
    let syntax = |message: String| QueryError::Syntax {
        expr: expr.to_owned(),
        message,
    };
    let toks = tokenize(expr).map_err(syntax)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.expr().map_err(syntax)?;
    if p.pos != p.toks.len() {
        return Err(syntax(if p.peek() == Some(&Tok::Word("in".to_owned())) {
            "`in` without a `let`".to_owned()
        } else {
            "unexpected text after the expression".to_owned()
        }));
    }
    resolve_patterns(e, expr, true, &mut Vec::new())
}

/// Turn words in set positions into patterns, checking arities and that
/// every `$name` is bound by an enclosing `let` (`bound`).
pub(super) fn resolve_patterns(
    e: Expr,
    src: &str,
    top: bool,
    bound: &mut Vec<String>,
) -> Result<Expr, QueryError> {
    let syntax = |message: String| QueryError::Syntax {
        expr: src.to_owned(),
        message,
    };
    Ok(match e {
        Expr::Word(w) => Expr::Pattern(TargetPattern::parse(&w)?),
        Expr::Binary(op, a, b) => Expr::Binary(
            op,
            Box::new(resolve_patterns(*a, src, false, bound)?),
            Box::new(resolve_patterns(*b, src, false, bound)?),
        ),
        Expr::Let(name, value, body) => {
            let value = resolve_patterns(*value, src, false, bound)?;
            bound.push(name.clone());
            let body = resolve_patterns(*body, src, false, bound);
            bound.pop();
            Expr::Let(name, Box::new(value), Box::new(body?))
        }
        Expr::Var(name) => {
            if !bound.contains(&name) {
                return Err(syntax(format!(
                    "`${name}` is not bound: define it with `let {name} = EXPR in ...`"
                )));
            }
            Expr::Var(name)
        }
        Expr::Call(f, args) => {
            let n = args.len();
            let mut args = args.into_iter();
            let mut set = |args: &mut std::vec::IntoIter<Expr>| {
                resolve_patterns(
                    args.next().unwrap_or(Expr::Word(String::new())),
                    src,
                    false,
                    bound,
                )
            };
            let word = |e: Option<Expr>, what: &str| match e {
                Some(Expr::Word(w)) => Ok(Expr::Word(w)),
                _ => Err(syntax(format!("`{f}` expects {what}"))),
            };
            let out = match (f.as_str(), n) {
                ("deps", 1) | ("actions", 1) => vec![set(&mut args)?],
                ("deps", 2) => vec![
                    set(&mut args)?,
                    word(args.next(), "an integer depth as its second argument")?,
                ],
                ("rdeps", 2) => vec![set(&mut args)?, set(&mut args)?],
                ("rdeps", 3) => vec![
                    set(&mut args)?,
                    set(&mut args)?,
                    word(args.next(), "an integer depth as its third argument")?,
                ],
                ("kind", 2) | ("filter", 2) => vec![
                    word(args.next(), "a regular expression as its first argument")?,
                    set(&mut args)?,
                ],
                ("somepath", 2) | ("allpaths", 2) => vec![set(&mut args)?, set(&mut args)?],
                ("tests", 1) | ("buildfiles", 1) | ("siblings", 1) => vec![set(&mut args)?],
                ("rbuildfiles", n) if n >= 1 => {
                    let mut v = Vec::new();
                    for _ in 0..n {
                        v.push(set(&mut args)?);
                    }
                    v
                }
                ("attr", 3) => vec![
                    word(args.next(), "an attribute name as its first argument")?,
                    word(args.next(), "a regular expression as its second argument")?,
                    set(&mut args)?,
                ],
                ("labels", 2) => vec![
                    word(args.next(), "an attribute name as its first argument")?,
                    set(&mut args)?,
                ],
                _ => return Err(syntax(format!("`{f}` does not take {n} argument(s)"))),
            };
            if f == "actions" && !top {
                return Err(syntax(
                    "`actions(...)` can only be the whole query".to_owned(),
                ));
            }
            if let Some(Expr::Word(d)) = out
                .get(if f == "rdeps" { 2 } else { 1 })
                .filter(|_| f.ends_with("deps"))
                && d.parse::<usize>().is_err()
            {
                return Err(syntax(format!(
                    "`{f}` depth must be a non-negative integer, got `{d}`"
                )));
            }
            Expr::Call(f, out)
        }
        Expr::Pattern(p) => Expr::Pattern(p),
    })
}

/// Whether `e` calls function `f` anywhere.
pub(super) fn calls(e: &Expr, f: &str) -> bool {
    match e {
        Expr::Call(g, args) => g == f || args.iter().any(|a| calls(a, f)),
        Expr::Binary(_, a, b) | Expr::Let(_, a, b) => calls(a, f) || calls(b, f),
        _ => false,
    }
}

pub(super) fn patterns(e: &Expr, out: &mut Vec<TargetPattern>) {
    match e {
        Expr::Pattern(p) => out.push(p.clone()),
        Expr::Word(_) => {}
        Expr::Call(_, args) => args.iter().for_each(|a| patterns(a, out)),
        Expr::Binary(_, a, b) | Expr::Let(_, a, b) => {
            patterns(a, out);
            patterns(b, out);
        }
        Expr::Var(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert!(matches!(parse("deps(//a:b)").unwrap(), Expr::Call(f, _) if f == "deps"));
        assert!(matches!(
            parse("//a:b + //c:d ^ //e/...").unwrap(),
            Expr::Binary(SetOp::Intersect, _, _)
        ));
        assert!(parse("deps(//a:b, 2)").is_ok());
        assert!(parse("kind('genrule', //...)").is_ok());
        assert!(parse("rdeps(//..., //a:b, 1)").is_ok());
        assert!(parse("somepath(//a:b, //c:d) + allpaths(//a:b, //c/...)").is_ok());
        assert!(parse("attr(tags, 'manual', //...) ^ tests(//...) - labels(srcs, //a:b)").is_ok());
        assert!(
            parse("buildfiles(//a:b) + siblings(//a:b) + rbuildfiles(//a:x.star, //b:y.star)")
                .is_ok()
        );
        assert!(calls(
            &parse("let v = //a:b in buildfiles($v)").unwrap(),
            "buildfiles"
        ));
        assert!(matches!(
            parse("let v = //a:b in deps($v) - $v").unwrap(),
            Expr::Let(n, _, body) if n == "v" && matches!(*body, Expr::Binary(SetOp::Except, _, _))
        ));
        assert!(parse("let a = //x:y in let b = deps($a) in $b - $a").is_ok());
        for bad in [
            "deps(//a:b",
            "deps(//a:b, x)",
            "nope(//a)",
            "//a:b //c:d",
            "deps(actions(//a:b))",
            "kind(//a:b)",
            "",
            "$v",
            "let v = //a:b in $w",
            "let v //a:b in $v",
            "let v = //a:b",
            "//a:b in //c:d",
            "let 1v = //a:b in $1v",
            "deps($v) + let v = //a:b in $v",
            "attr(tags, //a:b)",
            "somepath(//a:b)",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }

    /// Regression (found by `kiln-fuzz query`): a long operator chain or
    /// deep parentheses overflowed the stack instead of failing.
    #[test]
    fn depth_is_bounded() {
        let chain = |n: usize| vec!["//a:b"; n + 1].join(" + ");
        let parens = |n: usize| format!("{}//a:b{}", "(".repeat(n), ")".repeat(n));
        let calls = |n: usize| format!("{}//a:b{}", "deps(".repeat(n), ")".repeat(n));
        // Checking and dropping recurse once per level: a stack like the
        // one kiln runs on, whatever this build's frame sizes.
        let ok = std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(move || {
                for q in [chain(MAX_DEPTH), parens(MAX_DEPTH), calls(MAX_DEPTH)] {
                    assert!(parse(&q).is_ok(), "{} levels parse", MAX_DEPTH);
                }
                for q in [
                    chain(MAX_DEPTH + 1),
                    parens(MAX_DEPTH + 1),
                    calls(MAX_DEPTH + 1),
                ] {
                    let e = parse(&q).unwrap_err().to_string();
                    assert!(e.contains("nests more than 1000 levels deep"), "{e}");
                }
                let e = parse(&chain(200_000)).unwrap_err().to_string();
                assert!(e.contains("split it with `let"), "{e}");
            })
            .and_then(|t| t.join().map_err(|_| std::io::Error::other("panicked")));
        assert!(ok.is_ok());
    }
}
