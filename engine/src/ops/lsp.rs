//! `kiln lsp`: a language server for BUILD.star and `.star` files, over
//! stdio (JSON-RPC with `Content-Length` framing, LSP 3.17 messages from
//! `lsp-types`).
//!
//! - **Diagnostics** on open and change: a BUILD.star is evaluated as the
//!   loader does a package (its loads from disk, its own text from the
//!   editor), a `.star` file is parsed; the first error is reported at its
//!   line and column.
//! - **Go to definition** on a label in a string: `"//caps/sqlite"` opens
//!   that package's BUILD.star at the target's declaration, `":name"` the
//!   same file's, a file label the file, a `load()` label the `.star` file.
//! - **Hover** on a rule kind: its documentation and attributes.
//! - **Completion**: rule kinds at the start of a statement, a rule's
//!   attribute names inside its call.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use lsp_types::{
    CompletionItem, CompletionItemKind, Diagnostic, DiagnosticSeverity, GotoDefinitionResponse,
    Hover, HoverContents, Location as LspLocation, MarkupContent, MarkupKind, Position, Range, Uri,
};
use serde_json::{Value, json};

use crate::label::{Label, PackagePath};
use crate::load::loader::{LoadError, Loader, build_dialect, star_dialect};
use crate::load::rule::IMPLICIT_ATTRS;
use crate::workspace::Workspace;

/// Read one message (`Content-Length` framed); `None` at end of input.
fn read_message(input: &mut impl BufRead) -> std::io::Result<Option<Value>> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length:") {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let Some(len) = len else {
        return Err(std::io::Error::other("a message without Content-Length"));
    };
    let mut body = vec![0; len];
    input.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(std::io::Error::other)
}

fn write_message(out: &mut impl Write, v: &Value) -> std::io::Result<()> {
    let body = serde_json::to_vec(v)?;
    write!(out, "Content-Length: {}\r\n\r\n", body.len())?;
    out.write_all(&body)?;
    out.flush()
}

/// The server's state: the workspace and the open documents.
struct Server {
    ws: Workspace,
    loader: Loader,
    docs: HashMap<String, String>,
}

fn uri_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    // Percent-decoding of the characters editors escape.
    let mut bytes = Vec::with_capacity(rest.len());
    let raw = rest.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && i + 2 < raw.len()
            && let Ok(b) = u8::from_str_radix(&rest[i + 1..i + 3], 16)
        {
            bytes.push(b);
            i += 3;
            continue;
        }
        bytes.push(raw[i]);
        i += 1;
    }
    Some(PathBuf::from(String::from_utf8_lossy(&bytes).into_owned()))
}

fn path_uri(p: &Path) -> String {
    let mut s = String::from("file://");
    for b in p.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn range_at(line: usize, col: usize) -> Range {
    let p = Position::new(line.saturating_sub(1) as u32, col.saturating_sub(1) as u32);
    Range::new(p, p)
}

/// `file:line:col: message` (as kiln's errors start) split up.
fn located(text: &str) -> Option<(String, usize, usize, String)> {
    let mut parts = text.splitn(4, ':');
    let file = parts.next()?.to_owned();
    let line = parts.next()?.trim().parse().ok()?;
    let col = parts.next()?.trim().parse().ok()?;
    Some((file, line, col, parts.next()?.trim().to_owned()))
}

impl Server {
    /// The package of a workspace file, and the file's path relative to
    /// the root.
    fn package_of(&self, path: &Path) -> Option<(PackagePath, String)> {
        let rel = path
            .strip_prefix(&self.ws.root)
            .ok()?
            .to_string_lossy()
            .into_owned();
        let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
        Some((PackagePath::new(dir).ok()?, rel))
    }

    fn diagnostics(&self, uri: &str, text: &str) -> Vec<Diagnostic> {
        let Some(path) = uri_path(uri) else {
            return Vec::new();
        };
        let Some((pkg, rel)) = self.package_of(&path) else {
            return Vec::new();
        };
        let error = if rel.ends_with("BUILD.star") {
            self.loader
                .load_package_source(&pkg, text.to_owned())
                .err()
                .map(|e| e.to_string())
        } else {
            let dialect = if rel.ends_with(".star") {
                star_dialect()
            } else {
                build_dialect()
            };
            starlark::syntax::AstModule::parse(&rel, text.to_owned(), &dialect)
                .err()
                .map(|e| LoadError::from(e).to_string())
        };
        let Some(message) = error else {
            return Vec::new();
        };
        // Located in this file, or (an error in a loaded file) at the top.
        let (range, message) = match located(&message) {
            Some((file, line, col, m)) if file == rel => (range_at(line, col), m),
            _ => (range_at(1, 1), message),
        };
        vec![Diagnostic {
            range,
            severity: Some(DiagnosticSeverity::ERROR),
            source: Some("kiln".to_owned()),
            message,
            ..Default::default()
        }]
    }

    /// The string literal around `pos` in `text`, if any.
    fn string_at(text: &str, pos: Position) -> Option<String> {
        let line = text.lines().nth(pos.line as usize)?;
        let chars: Vec<char> = line.chars().collect();
        let at = (pos.character as usize).min(chars.len());
        let quote = |c: char| c == '"' || c == '\'';
        let start = chars[..at].iter().rposition(|c| quote(*c))?;
        let end = at + chars[at..].iter().position(|c| quote(*c))?;
        if chars[..start].iter().filter(|c| quote(**c)).count() % 2 == 1 {
            return None;
        }
        Some(chars[start + 1..end].iter().collect())
    }

    /// The identifier around `pos`.
    fn word_at(text: &str, pos: Position) -> Option<String> {
        let line = text.lines().nth(pos.line as usize)?;
        let chars: Vec<char> = line.chars().collect();
        let at = (pos.character as usize).min(chars.len());
        let ident = |c: &char| c.is_alphanumeric() || *c == '_';
        let start = chars[..at]
            .iter()
            .rposition(|c| !ident(c))
            .map_or(0, |i| i + 1);
        let end = at
            + chars[at..]
                .iter()
                .position(|c| !ident(c))
                .unwrap_or(chars.len() - at);
        (start < end).then(|| chars[start..end].iter().collect())
    }

    fn definition(&self, uri: &str, pos: Position) -> Option<LspLocation> {
        let text = self.docs.get(uri)?;
        let s = Self::string_at(text, pos)?;
        let (pkg, _) = self.package_of(&uri_path(uri)?)?;
        let label = Label::parse_relative(&s, &pkg).ok()?;
        let build = self.ws.root.join(Workspace::build_file(&label.package));
        let target = |path: &Path, line: usize, col: usize| {
            Some(LspLocation::new(
                path_uri(path).parse::<Uri>().ok()?,
                range_at(line, col),
            ))
        };
        // A file (a `load()`ed `.star`, a source).
        let file = self.ws.root.join(label.file_path());
        if file.is_file() {
            return target(&file, 1, 1);
        }
        // A target: where its package declares it.
        if let Ok(p) = self.loader.load_package(&label.package)
            && let Some(&i) = p.declared.names.get(&label.name)
        {
            let at = &p.declared.targets[i].location;
            return target(&self.ws.root.join(&at.file), at.line, at.col);
        }
        build.is_file().then(|| target(&build, 1, 1)).flatten()
    }

    fn hover(&self, uri: &str, pos: Position) -> Option<Hover> {
        let word = Self::word_at(self.docs.get(uri)?, pos)?;
        let (_, schema) = self
            .loader
            .builtin_rules()
            .into_iter()
            .find(|(n, _)| *n == word)?;
        let mut md = format!("**{word}** (rule)\n\n{}\n\n", schema.doc);
        for (name, spec) in &schema.attrs {
            let mandatory = if spec.mandatory { ", mandatory" } else { "" };
            md.push_str(&format!(
                "- `{name}`: {}{mandatory}. {}\n",
                spec.ty.describe(),
                spec.doc
            ));
        }
        Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: md,
            }),
            range: None,
        })
    }

    fn completion(&self, uri: &str, pos: Position) -> Vec<CompletionItem> {
        let Some(text) = self.docs.get(uri) else {
            return Vec::new();
        };
        let rules = self.loader.builtin_rules();
        // Inside a call: the innermost unclosed `(`, before the cursor.
        let before: String = {
            let mut s = String::new();
            for (i, l) in text.lines().enumerate() {
                if i == pos.line as usize {
                    s.extend(l.chars().take(pos.character as usize));
                    break;
                }
                s.push_str(l);
                s.push('\n');
            }
            s
        };
        let mut depth = 0i32;
        let mut call = None;
        for (i, c) in before.char_indices().rev() {
            match c {
                ')' | ']' | '}' => depth += 1,
                '(' | '[' | '{' if depth > 0 => depth -= 1,
                '(' => {
                    let head = before[..i].trim_end();
                    let name: String = head
                        .chars()
                        .rev()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    call = Some(name);
                    break;
                }
                '[' | '{' => break,
                _ => {}
            }
        }
        match call {
            Some(kind) => {
                let Some((_, schema)) = rules.iter().find(|(n, _)| *n == kind) else {
                    return Vec::new();
                };
                schema
                    .attrs
                    .iter()
                    .map(|(n, spec)| (n.as_str(), spec.doc.as_str()))
                    .chain(IMPLICIT_ATTRS.iter().map(|n| (*n, "")))
                    .map(|(n, doc)| CompletionItem {
                        label: n.to_owned(),
                        kind: Some(CompletionItemKind::PROPERTY),
                        detail: (!doc.is_empty()).then(|| doc.to_owned()),
                        insert_text: Some(format!("{n} = ")),
                        ..Default::default()
                    })
                    .collect()
            }
            None => rules
                .iter()
                .map(|(n, schema)| CompletionItem {
                    label: n.clone(),
                    kind: Some(CompletionItemKind::FUNCTION),
                    detail: Some(schema.doc.clone()),
                    ..Default::default()
                })
                .collect(),
        }
    }
}

fn position(params: &Value) -> Option<(String, Position)> {
    let uri = params["textDocument"]["uri"].as_str()?.to_owned();
    let p: Position = serde_json::from_value(params["position"].clone()).ok()?;
    Some((uri, p))
}

/// Serve the workspace around `cwd` on `input`/`output` until `exit`;
/// the process's exit status (0 after `shutdown`, 1 otherwise, as LSP says).
pub fn serve(cwd: &Path, mut input: impl BufRead, mut output: impl Write) -> Result<i32, String> {
    let ws = Workspace::discover(cwd).map_err(|e| e.to_string())?;
    let loader = Loader::new(ws.clone()).map_err(|e| e.to_string())?;
    let mut s = Server {
        ws,
        loader,
        docs: HashMap::new(),
    };
    let mut shut_down = false;
    let io = |e: std::io::Error| format!("the LSP connection failed: {e}");
    while let Some(msg) = read_message(&mut input).map_err(io)? {
        let method = msg["method"].as_str().unwrap_or("");
        let params = &msg["params"];
        let id = msg.get("id").cloned();
        let result = match method {
            "initialize" => json!({
                "capabilities": {
                    "textDocumentSync": 1,
                    "definitionProvider": true,
                    "hoverProvider": true,
                    "completionProvider": {"triggerCharacters": ["(", ",", "\n"]},
                },
                "serverInfo": {"name": "kiln", "version": env!("CARGO_PKG_VERSION")},
            }),
            "textDocument/didOpen" | "textDocument/didChange" => {
                let uri = params["textDocument"]["uri"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                let text = if method == "textDocument/didOpen" {
                    params["textDocument"]["text"].as_str()
                } else {
                    params["contentChanges"]
                        .as_array()
                        .and_then(|c| c.last())
                        .and_then(|c| c["text"].as_str())
                }
                .unwrap_or("")
                .to_owned();
                let diagnostics = s.diagnostics(&uri, &text);
                s.docs.insert(uri.clone(), text);
                write_message(
                    &mut output,
                    &json!({"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics",
                            "params": {"uri": uri, "diagnostics": diagnostics}}),
                )
                .map_err(io)?;
                continue;
            }
            "textDocument/didClose" => {
                if let Some(uri) = params["textDocument"]["uri"].as_str() {
                    s.docs.remove(uri);
                }
                continue;
            }
            "textDocument/definition" => position(params)
                .and_then(|(u, p)| s.definition(&u, p))
                .map(|l| json!(GotoDefinitionResponse::Scalar(l)))
                .unwrap_or(Value::Null),
            "textDocument/hover" => position(params)
                .and_then(|(u, p)| s.hover(&u, p))
                .map(|h| json!(h))
                .unwrap_or(Value::Null),
            "textDocument/completion" => position(params)
                .map(|(u, p)| json!(s.completion(&u, p)))
                .unwrap_or(Value::Null),
            "shutdown" => {
                shut_down = true;
                Value::Null
            }
            "exit" => return Ok(if shut_down { 0 } else { 1 }),
            _ if id.is_none() => continue,
            other => {
                write_message(
                    &mut output,
                    &json!({"jsonrpc": "2.0", "id": id,
                            "error": {"code": -32601, "message": format!("kiln lsp does not handle `{other}`")}}),
                )
                .map_err(io)?;
                continue;
            }
        };
        if let Some(id) = id {
            write_message(
                &mut output,
                &json!({"jsonrpc": "2.0", "id": id, "result": result}),
            )
            .map_err(io)?;
        }
    }
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_words_and_uris() {
        let text = "cap(\n    wit = \"//providers/wit:dynlink\",\n)\n";
        assert_eq!(
            Server::string_at(text, Position::new(1, 14)).as_deref(),
            Some("//providers/wit:dynlink")
        );
        assert_eq!(Server::string_at(text, Position::new(1, 6)), None);
        assert_eq!(
            Server::word_at(text, Position::new(0, 1)).as_deref(),
            Some("cap")
        );
        let p = Path::new("/tmp/a b/é.star");
        assert_eq!(uri_path(&path_uri(p)).as_deref(), Some(p));
        assert_eq!(
            located("a/BUILD.star:3:5: bad thing: here"),
            Some(("a/BUILD.star".into(), 3, 5, "bad thing: here".into()))
        );
    }
}
