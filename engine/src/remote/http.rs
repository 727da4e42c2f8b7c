//! Bazel's HTTP cache protocol: `GET`/`PUT` of `PREFIX/ac/<hash>` (a
//! serialized REAPI `ActionResult`) and `PREFIX/cas/<hash>` (blob bytes),
//! SHA-256 digests.
//!
//! Requests run on a few threads started with the client, outside the
//! build's sandboxed workers: those live in a network namespace without
//! network.
//!
//! Bodies are read up to a bound (a blob's claimed size, checked against
//! [`MAX_BLOB`](super::MAX_BLOB) first; [`MAX_ACTION_RESULT`] for a result), and a blob
//! must be exactly its size. A request that times out is not retried.

use std::io::Read;
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};

use prost::Message;

use super::grpc::{action_result, outputs_of};
use super::{
    Backend, HashFn, RemoteOptions, WireDigest, WireOutput, proto, sane_size, with_retries,
};

type Job = Box<dyn FnOnce(&ureq::Agent) + Send>;

/// An HTTP cache client.
pub struct Http {
    jobs: Mutex<Sender<Job>>,
    base: String,
    headers: Vec<(String, String)>,
}

/// Threads that run requests.
const THREADS: usize = 4;

/// The largest serialized `ActionResult` read (kiln's own are a few
/// hundred bytes per output).
const MAX_ACTION_RESULT: u64 = 64 << 20;

enum Fail {
    Transient(String),
    Fatal(String),
}

fn text(f: Fail) -> String {
    match f {
        Fail::Transient(s) | Fail::Fatal(s) => s,
    }
}

impl Http {
    /// A client for `url` (`http://HOST:PORT/PREFIX`).
    pub fn new(url: &str, o: &RemoteOptions) -> Result<Http, String> {
        if url.starts_with("https://") {
            return Err(format!(
                "`{url}`: this kiln speaks plain HTTP to HTTP caches; use http:// (or a gRPC cache over grpcs://)"
            ));
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(o.timeout)
            .timeout(o.timeout)
            .build();
        let (tx, rx) = channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for _ in 0..THREADS {
            let rx = rx.clone();
            let agent = agent.clone();
            std::thread::spawn(move || {
                loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(&agent),
                        Err(_) => break,
                    }
                }
            });
        }
        Ok(Http {
            jobs: Mutex::new(tx),
            base: url.trim_end_matches('/').to_owned(),
            headers: o.headers.clone(),
        })
    }

    /// Run `f` on one of the client's threads.
    fn on_pool<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ureq::Agent) -> T + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = channel();
        let job: Job = Box::new(move |agent| {
            let _ = tx.send(f(agent));
        });
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(|_| "the HTTP client stopped".to_owned())?;
        rx.recv().map_err(|_| "the HTTP client stopped".to_owned())
    }

    /// The body of `path` (at most `limit` bytes), `None` on 404.
    fn get(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
        with_retries(
            || {
                let url = format!("{}/{path}", self.base);
                let headers = self.headers.clone();
                let path = path.to_owned();
                self.on_pool(move |agent| Self::get_once(agent, &url, &headers, &path, limit))
                    .map_err(Fail::Fatal)?
            },
            |f| matches!(f, Fail::Transient(_)),
        )
        .map_err(text)
    }

    fn get_once(
        agent: &ureq::Agent,
        url: &str,
        headers: &[(String, String)],
        path: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, Fail> {
        {
            {
                let mut req = agent.get(url);
                for (k, v) in headers {
                    req = req.set(k, v);
                }
                match req.call() {
                    Ok(r) => {
                        let mut body = Vec::new();
                        r.into_reader()
                            .take(limit.saturating_add(1))
                            .read_to_end(&mut body)
                            .map_err(|e| io_fail(format!("GET {path}: {e}"), &e))?;
                        if body.len() as u64 > limit {
                            return Err(Fail::Fatal(format!(
                                "GET {path}: the body is longer than {limit} bytes"
                            )));
                        }
                        Ok(Some(body))
                    }
                    Err(ureq::Error::Status(404, _)) => Ok(None),
                    Err(ureq::Error::Status(c, _)) if c >= 500 => {
                        Err(Fail::Transient(format!("GET {path}: status {c}")))
                    }
                    Err(ureq::Error::Status(c, _)) => {
                        Err(Fail::Fatal(format!("GET {path}: status {c}")))
                    }
                    Err(e) => Err(transport_fail(format!("GET {path}: {e}"), &e)),
                }
            }
        }
    }

    fn put(&self, path: &str, body: &[u8]) -> Result<(), String> {
        let body = std::sync::Arc::new(body.to_vec());
        with_retries(
            || {
                let url = format!("{}/{path}", self.base);
                let headers = self.headers.clone();
                let path = path.to_owned();
                let body = body.clone();
                self.on_pool(move |agent| Self::put_once(agent, &url, &headers, &path, &body))
                    .map_err(Fail::Fatal)?
            },
            |f| matches!(f, Fail::Transient(_)),
        )
        .map_err(text)
    }

    fn put_once(
        agent: &ureq::Agent,
        url: &str,
        headers: &[(String, String)],
        path: &str,
        body: &[u8],
    ) -> Result<(), Fail> {
        {
            {
                let mut req = agent.put(url);
                for (k, v) in headers {
                    req = req.set(k, v);
                }
                match req.send_bytes(body) {
                    Ok(_) => Ok(()),
                    Err(ureq::Error::Status(c, _)) if c >= 500 => {
                        Err(Fail::Transient(format!("PUT {path}: status {c}")))
                    }
                    Err(ureq::Error::Status(c, _)) => {
                        Err(Fail::Fatal(format!("PUT {path}: status {c}")))
                    }
                    Err(e) => Err(transport_fail(format!("PUT {path}: {e}"), &e)),
                }
            }
        }
    }
}

/// The outputs an AC entry's `body` (`GET PREFIX/ac/<hash>`) records: a
/// serialized REAPI `ActionResult`, read as `outputs_of` does. Public
/// for the fuzzer (`kiln-fuzz http_result`).
pub fn decode_ac_entry(body: &[u8], hash: &str) -> Result<Option<Vec<WireOutput>>, String> {
    let ar = proto::ActionResult::decode(body)
        .map_err(|e| format!("ac/{hash}: not an ActionResult: {e}"))?;
    outputs_of(ar)
}

/// A failed read: transient, unless it timed out (the request already
/// waited as long as kiln allows; a stalled server would cost three
/// timeouts per request).
fn io_fail(text: String, e: &std::io::Error) -> Fail {
    if e.kind() == std::io::ErrorKind::TimedOut {
        Fail::Fatal(text)
    } else {
        Fail::Transient(text)
    }
}

/// A request that got no status: as [`io_fail`].
fn transport_fail(text: String, e: &ureq::Error) -> Fail {
    match std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>()) {
        Some(io) => io_fail(text, io),
        None => Fail::Transient(text),
    }
}

impl Backend for Http {
    fn hash_fn(&self) -> Result<HashFn, String> {
        Ok(HashFn::Sha256)
    }

    fn get_action(&self, action: &WireDigest) -> Result<Option<Vec<WireOutput>>, String> {
        match self.get(&format!("ac/{}", action.hash), MAX_ACTION_RESULT)? {
            None => Ok(None),
            Some(body) => decode_ac_entry(&body, &action.hash),
        }
    }

    fn read_blobs(&self, digests: &[WireDigest]) -> Result<Vec<Vec<u8>>, String> {
        digests
            .iter()
            .map(|d| {
                sane_size(d)?;
                let body = self
                    .get(&format!("cas/{}", d.hash), d.size as u64)?
                    .ok_or_else(|| format!("cas/{} is missing", d.hash))?;
                if body.len() as u64 != d.size as u64 {
                    return Err(format!(
                        "GET cas/{}: {} bytes, expected {} (the body ended early)",
                        d.hash,
                        body.len(),
                        d.size
                    ));
                }
                Ok(body)
            })
            .collect()
    }

    fn find_missing(&self, digests: &[WireDigest]) -> Result<Vec<WireDigest>, String> {
        // Uploading is idempotent; the protocol has no batch query.
        Ok(digests.to_vec())
    }

    fn write_blobs(&self, blobs: &[(WireDigest, Vec<u8>)]) -> Result<(), String> {
        blobs
            .iter()
            .try_for_each(|(d, b)| self.put(&format!("cas/{}", d.hash), b))
    }

    fn put_action(&self, action: &WireDigest, outputs: &[WireOutput]) -> Result<(), String> {
        self.put(
            &format!("ac/{}", action.hash),
            &action_result(outputs).encode_to_vec(),
        )
    }
}
