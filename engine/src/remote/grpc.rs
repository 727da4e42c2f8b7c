//! REAPI v2 over gRPC (tonic): Capabilities, ActionCache, CAS batch calls
//! within the server's batch limit, ByteStream for larger blobs.
//!
//! Every call is bounded by the request timeout as a whole (tonic's own
//! timeout ends when the response headers arrive, so a server that sends
//! them and stalls would hang the build), and a ByteStream read by the
//! timeout between two messages. A blob read must be exactly its digest's
//! size: a size over [`MAX_BLOB`](super::MAX_BLOB) is refused before the
//! request, and a stream that ends early or runs long is `DATA_LOSS`.

// tonic's error type is `Status` (176 bytes); boxing it at every call
// would only add noise here.
#![allow(clippy::result_large_err)]

use std::sync::OnceLock;
use std::time::Duration;

use tonic::codec::ProstCodec;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use super::proto::{self, digest_function};
use super::{Backend, HashFn, RemoteOptions, WireDigest, WireOutput, sane_size, with_retries};

const CAPABILITIES: &str = "/build.bazel.remote.execution.v2.Capabilities/GetCapabilities";
const GET_ACTION: &str = "/build.bazel.remote.execution.v2.ActionCache/GetActionResult";
const UPDATE_ACTION: &str = "/build.bazel.remote.execution.v2.ActionCache/UpdateActionResult";
const FIND_MISSING: &str =
    "/build.bazel.remote.execution.v2.ContentAddressableStorage/FindMissingBlobs";
const BATCH_UPDATE: &str =
    "/build.bazel.remote.execution.v2.ContentAddressableStorage/BatchUpdateBlobs";
const BATCH_READ: &str =
    "/build.bazel.remote.execution.v2.ContentAddressableStorage/BatchReadBlobs";
const EXECUTE: &str = "/build.bazel.remote.execution.v2.Execution/Execute";
const WAIT_EXECUTION: &str = "/build.bazel.remote.execution.v2.Execution/WaitExecution";
const EXECUTE_RESPONSE: &str =
    "type.googleapis.com/build.bazel.remote.execution.v2.ExecuteResponse";
const BS_READ: &str = "/google.bytestream.ByteStream/Read";
const BS_WRITE: &str = "/google.bytestream.ByteStream/Write";

/// Batch limit when the server states none.
const DEFAULT_BATCH: i64 = 4 << 20;
/// Room left in a batch for message framing.
const BATCH_OVERHEAD: i64 = 64 << 10;
/// ByteStream chunk size.
const CHUNK: usize = 1 << 20;

struct Caps {
    hash: HashFn,
    batch: i64,
    exec: bool,
}

/// A REAPI client.
pub(crate) struct Grpc {
    rt: tokio::runtime::Runtime,
    channel: Channel,
    /// The same endpoint without a per-request timeout, for `Execute`
    /// streams that last as long as the action.
    stream_channel: Channel,
    instance: String,
    headers: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
    timeout: Duration,
    caps: OnceLock<Result<Caps, String>>,
}

/// Errors worth another try. A timeout is not one: the request already
/// waited as long as kiln allows, and a stalled server would cost three
/// timeouts per call.
fn transient(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable | Code::ResourceExhausted | Code::Aborted
    )
}

/// `f`, or `DEADLINE_EXCEEDED` saying so if it takes longer than `limit`.
/// Whichever of the three clocks fires first (this one, the channel's
/// timeout, which says `CANCELLED`, or the server's, which got the
/// deadline in `grpc-timeout`), the error is the same.
async fn within<T>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let late = || {
        Status::deadline_exceeded(format!(
            "no answer within {} s (--remote-timeout)",
            limit.as_secs()
        ))
    };
    match tokio::time::timeout(limit, f).await {
        Err(_) => Err(late()),
        Ok(Err(s))
            if s.code() == Code::DeadlineExceeded
                || (s.code() == Code::Cancelled && s.message() == "Timeout expired") =>
        {
            Err(late())
        }
        Ok(r) => r,
    }
}

fn describe(s: Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

impl Grpc {
    /// A client for `uri` (`http://` or `https://`); connects on first use.
    pub fn new(uri: &str, tls: bool, o: &RemoteOptions) -> Result<Grpc, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the gRPC runtime: {e}"))?;
        let mut ep = Endpoint::from_shared(uri.to_owned())
            .map_err(|e| format!("bad remote address `{uri}`: {e}"))?
            .connect_timeout(o.timeout)
            // HTTP/2 pings catch a half-open connection under a long
            // Execute stream. gRPC servers refuse pings more often than
            // every 5 minutes on a stream that sends no data (GOAWAY "too
            // many pings", as casd does during a 70 s action at a 10 s
            // interval), so: just over that.
            .http2_keep_alive_interval(Duration::from_secs(310))
            .keep_alive_timeout(Duration::from_secs(20));
        if tls {
            ep = ep
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| format!("TLS: {e}"))?;
        }
        let (channel, stream_channel) = {
            let _guard = rt.enter();
            (
                ep.clone().timeout(o.timeout).connect_lazy(),
                ep.connect_lazy(),
            )
        };
        let mut headers = Vec::new();
        for (k, v) in &o.headers {
            let key = AsciiMetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                .map_err(|_| format!("`--remote-header {k}=...`: not a valid header name"))?;
            let value = AsciiMetadataValue::try_from(v.as_str())
                .map_err(|_| format!("`--remote-header {k}=...`: not a valid header value"))?;
            headers.push((key, value));
        }
        Ok(Grpc {
            rt,
            channel,
            stream_channel,
            instance: o.instance.clone(),
            headers,
            timeout: o.timeout,
            caps: OnceLock::new(),
        })
    }

    fn request<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        self.add_headers(&mut r);
        r.set_timeout(self.timeout);
        r
    }

    fn unary<Req, Resp>(&self, path: &'static str, msg: Req) -> Result<Resp, Status>
    where
        Req: prost::Message + Clone + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        with_retries(
            || {
                self.rt.block_on(within(self.timeout, async {
                    let mut grpc = tonic::client::Grpc::new(self.channel.clone());
                    grpc.ready()
                        .await
                        .map_err(|e| Status::unavailable(e.to_string()))?;
                    let codec = ProstCodec::<Req, Resp>::default();
                    grpc.unary(
                        self.request(msg.clone()),
                        PathAndQuery::from_static(path),
                        codec,
                    )
                    .await
                    .map(|r| r.into_inner())
                }))
            },
            transient,
        )
    }

    fn caps(&self) -> Result<&Caps, String> {
        self.caps
            .get_or_init(|| {
                let c: proto::ServerCapabilities = self
                    .unary(
                        CAPABILITIES,
                        proto::GetCapabilitiesRequest {
                            instance_name: self.instance.clone(),
                        },
                    )
                    .map_err(describe)?;
                let cc = c.cache_capabilities.unwrap_or_default();
                let hash = if cc.digest_functions.contains(&digest_function::BLAKE3) {
                    HashFn::Blake3
                } else if cc.digest_functions.contains(&digest_function::SHA256)
                    || cc.digest_functions.is_empty()
                {
                    HashFn::Sha256
                } else {
                    return Err(format!(
                        "the server offers neither BLAKE3 nor SHA-256 (digest functions {:?})",
                        cc.digest_functions
                    ));
                };
                let batch = if cc.max_batch_total_size_bytes > 0 {
                    cc.max_batch_total_size_bytes
                } else {
                    DEFAULT_BATCH
                };
                let exec = c.execution_capabilities.is_some_and(|e| e.exec_enabled);
                Ok(Caps { hash, batch, exec })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether the server offers the Execution service.
    pub fn exec_enabled(&self) -> Result<bool, String> {
        self.caps().map(|c| c.exec)
    }

    fn digest_fn(&self) -> i32 {
        match self.caps().map(|c| c.hash) {
            Ok(HashFn::Blake3) => digest_function::BLAKE3,
            _ => digest_function::SHA256,
        }
    }

    fn resource(&self, d: &WireDigest, upload: Option<String>) -> String {
        let mut parts = Vec::new();
        if !self.instance.is_empty() {
            parts.push(self.instance.clone());
        }
        if let Some(u) = upload {
            parts.push(format!("uploads/{u}"));
        }
        parts.push("blobs".to_owned());
        if self.digest_fn() == digest_function::BLAKE3 {
            parts.push("blake3".to_owned());
        }
        parts.push(format!("{}/{}", d.hash, d.size));
        parts.join("/")
    }

    /// The blob `d` through ByteStream: exactly `d.size` bytes, or an
    /// error (the size is checked by the caller, [`sane_size`]).
    fn bytestream_read(&self, d: &WireDigest) -> Result<Vec<u8>, String> {
        let name = self.resource(d, None);
        let size = usize::try_from(d.size).map_err(|_| format!("bad blob size {}", d.size))?;
        with_retries(
            || {
                self.rt.block_on(async {
                    let mut stream = within(self.timeout, async {
                        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
                        grpc.ready()
                            .await
                            .map_err(|e| Status::unavailable(e.to_string()))?;
                        let codec =
                            ProstCodec::<proto::ReadRequest, proto::ReadResponse>::default();
                        let req = self.request(proto::ReadRequest {
                            resource_name: name.clone(),
                            read_offset: 0,
                            read_limit: 0,
                        });
                        Ok(grpc
                            .server_streaming(req, PathAndQuery::from_static(BS_READ), codec)
                            .await?
                            .into_inner())
                    })
                    .await?;
                    // Grown as bytes arrive: the size is only a claim.
                    let mut data = Vec::with_capacity(size.min(CHUNK));
                    while let Some(m) = within(self.timeout, stream.message()).await? {
                        if m.data.len() > size - data.len() {
                            return Err(Status::data_loss(format!(
                                "ByteStream sent more than the {size} bytes of blob {}",
                                d.hash
                            )));
                        }
                        data.extend_from_slice(&m.data);
                    }
                    if data.len() != size {
                        return Err(Status::data_loss(format!(
                            "ByteStream ended after {} of the {size} bytes of blob {}",
                            data.len(),
                            d.hash
                        )));
                    }
                    Ok(data)
                })
            },
            transient,
        )
        .map_err(describe)
    }

    fn bytestream_write(&self, d: &WireDigest, bytes: &[u8]) -> Result<(), String> {
        let upload = {
            let h =
                blake3::hash(format!("{}{:?}", d.hash, std::time::SystemTime::now()).as_bytes());
            let x = h.to_hex();
            format!(
                "{}-{}-{}-{}-{}",
                &x[0..8],
                &x[8..12],
                &x[12..16],
                &x[16..20],
                &x[20..32]
            )
        };
        let name = self.resource(d, Some(upload));
        with_retries(
            || {
                self.rt.block_on(async {
                    let mut grpc = tonic::client::Grpc::new(self.channel.clone());
                    grpc.ready()
                        .await
                        .map_err(|e| Status::unavailable(e.to_string()))?;
                    let mut msgs = Vec::new();
                    let mut offset = 0usize;
                    loop {
                        let end = (offset + CHUNK).min(bytes.len());
                        msgs.push(proto::WriteRequest {
                            resource_name: if offset == 0 {
                                name.clone()
                            } else {
                                String::new()
                            },
                            write_offset: offset as i64,
                            finish_write: end == bytes.len(),
                            data: bytes[offset..end].to_vec(),
                        });
                        offset = end;
                        if offset >= bytes.len() {
                            break;
                        }
                    }
                    let codec = ProstCodec::<proto::WriteRequest, proto::WriteResponse>::default();
                    let req = self.request(tokio_stream::iter(msgs));
                    let r = grpc
                        .client_streaming(req, PathAndQuery::from_static(BS_WRITE), codec)
                        .await?
                        .into_inner();
                    if r.committed_size != bytes.len() as i64 && r.committed_size != -1 {
                        return Err(Status::data_loss(format!(
                            "the server committed {} of {} bytes",
                            r.committed_size,
                            bytes.len()
                        )));
                    }
                    Ok(())
                })
            },
            transient,
        )
        .map_err(describe)
    }
}

/// How following an `Execute` operation ended.
pub enum ExecuteEnd {
    /// The operation finished with this response.
    Done(Box<proto::ExecuteResponse>),
    /// The operation finished with an error (the action never ran to completion).
    Error(proto::Status),
    /// The server could not be reached, or went away and did not come back.
    Lost(String),
}

impl Grpc {
    /// `Execute` the action `action`, following its operation stream to the
    /// end; a stream that breaks is resumed with `WaitExecution`.
    pub fn execute(
        &self,
        action: &WireDigest,
        skip_cache_lookup: bool,
        cancel: &std::sync::atomic::AtomicBool,
    ) -> ExecuteEnd {
        let mut name: Option<String> = None;
        let mut last_error = String::new();
        // A dropped stream is resumed (by name) a few times before the
        // executor counts as lost.
        for attempt in 0..4 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
            if cancel.load(std::sync::atomic::Ordering::SeqCst) {
                return ExecuteEnd::Lost("interrupted".to_owned());
            }
            let r = self.rt.block_on(async {
                let mut grpc = tonic::client::Grpc::new(self.stream_channel.clone());
                grpc.ready()
                    .await
                    .map_err(|e| Status::unavailable(e.to_string()))?;
                let codec = ProstCodec::<_, proto::Operation>::default();
                let mut stream = match &name {
                    None => {
                        let mut req = Request::new(proto::ExecuteRequest {
                            instance_name: self.instance.clone(),
                            skip_cache_lookup,
                            action_digest: Some(wire(action)),
                            digest_function: self.digest_fn(),
                        });
                        self.add_headers(&mut req);
                        grpc.server_streaming(req, PathAndQuery::from_static(EXECUTE), codec)
                            .await?
                            .into_inner()
                    }
                    Some(n) => {
                        let mut req = Request::new(proto::WaitExecutionRequest { name: n.clone() });
                        self.add_headers(&mut req);
                        let codec = ProstCodec::<_, proto::Operation>::default();
                        grpc.server_streaming(req, PathAndQuery::from_static(WAIT_EXECUTION), codec)
                            .await?
                            .into_inner()
                    }
                };
                loop {
                    // Polled so that an interrupted build stops waiting.
                    let next =
                        tokio::time::timeout(Duration::from_millis(100), stream.message()).await;
                    if cancel.load(std::sync::atomic::Ordering::SeqCst) {
                        return Err(Status::cancelled("interrupted"));
                    }
                    let Ok(op) = next else { continue };
                    let Some(op) = op? else { break };
                    if !op.name.is_empty() {
                        name = Some(op.name.clone());
                    }
                    if op.done {
                        return Ok(Some(op));
                    }
                }
                Ok::<_, Status>(None)
            });
            match r {
                Ok(Some(op)) => {
                    if let Some(e) = op.error.filter(|e| e.code != 0) {
                        return ExecuteEnd::Error(e);
                    }
                    let Some(any) = op.response else {
                        return ExecuteEnd::Error(proto::Status {
                            code: Code::Internal as i32,
                            message: "the finished operation has no response".to_owned(),
                        });
                    };
                    if any.type_url != EXECUTE_RESPONSE {
                        return ExecuteEnd::Error(proto::Status {
                            code: Code::Internal as i32,
                            message: format!("unexpected operation response `{}`", any.type_url),
                        });
                    }
                    return match <proto::ExecuteResponse as prost::Message>::decode(&any.value[..])
                    {
                        Ok(resp) => ExecuteEnd::Done(Box::new(resp)),
                        Err(e) => ExecuteEnd::Error(proto::Status {
                            code: Code::Internal as i32,
                            message: format!("malformed ExecuteResponse: {e}"),
                        }),
                    };
                }
                Err(_) if cancel.load(std::sync::atomic::Ordering::SeqCst) => {
                    return ExecuteEnd::Lost("interrupted".to_owned());
                }
                Ok(None) => {
                    last_error = "the operation stream ended before the action finished".to_owned()
                }
                Err(s)
                    if transient(&s)
                        || s.code() == Code::Unknown
                        || s.code() == Code::Cancelled =>
                {
                    last_error = describe(s)
                }
                // NOT_FOUND on WaitExecution: the server forgot the
                // operation (it restarted); anything else is final.
                Err(s) if name.is_some() && s.code() == Code::NotFound => {
                    return ExecuteEnd::Lost(format!(
                        "the server lost the operation: {}",
                        describe(s)
                    ));
                }
                Err(s) => {
                    return ExecuteEnd::Error(proto::Status {
                        code: s.code() as i32,
                        message: s.message().to_owned(),
                    });
                }
            }
            if name.is_none() && attempt >= 1 {
                break;
            }
        }
        ExecuteEnd::Lost(last_error)
    }

    fn add_headers<T>(&self, r: &mut Request<T>) {
        for (k, v) in &self.headers {
            r.metadata_mut().insert(k.clone(), v.clone());
        }
    }
}

/// The wire form of a digest.
pub fn wire(d: &WireDigest) -> proto::Digest {
    proto::Digest {
        hash: d.hash.clone(),
        size_bytes: d.size,
    }
}

/// A wire digest from its message.
pub fn unwire(d: &proto::Digest) -> WireDigest {
    WireDigest {
        hash: d.hash.clone(),
        size: d.size_bytes,
    }
}

impl Backend for Grpc {
    fn hash_fn(&self) -> Result<HashFn, String> {
        self.caps().map(|c| c.hash)
    }

    fn get_action(&self, action: &WireDigest) -> Result<Option<Vec<WireOutput>>, String> {
        let r: Result<proto::ActionResult, Status> = self.unary(
            GET_ACTION,
            proto::GetActionResultRequest {
                instance_name: self.instance.clone(),
                action_digest: Some(wire(action)),
                digest_function: self.digest_fn(),
            },
        );
        match r {
            Ok(ar) => inline_outputs_of(ar),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(describe(s)),
        }
    }

    fn read_blobs(&self, digests: &[WireDigest]) -> Result<Vec<Vec<u8>>, String> {
        for d in digests {
            sane_size(d)?;
        }
        let limit = self.caps()?.batch - BATCH_OVERHEAD;
        let mut out: Vec<Option<Vec<u8>>> = vec![None; digests.len()];
        let mut batch: Vec<usize> = Vec::new();
        let mut size = 0i64;
        let flush =
            |batch: &mut Vec<usize>, out: &mut Vec<Option<Vec<u8>>>| -> Result<(), String> {
                if batch.is_empty() {
                    return Ok(());
                }
                let r: proto::BatchReadBlobsResponse = self
                    .unary(
                        BATCH_READ,
                        proto::BatchReadBlobsRequest {
                            instance_name: self.instance.clone(),
                            digests: batch.iter().map(|i| wire(&digests[*i])).collect(),
                            digest_function: self.digest_fn(),
                        },
                    )
                    .map_err(describe)?;
                for resp in r.responses {
                    let code = resp.status.as_ref().map(|s| s.code).unwrap_or(0);
                    let d = resp.digest.as_ref().map(unwire);
                    if code != 0 {
                        return Err(format!(
                            "reading blob {}: status {code}: {}",
                            d.map(|d| d.hash).unwrap_or_default(),
                            resp.status.map(|s| s.message).unwrap_or_default()
                        ));
                    }
                    for i in batch.iter() {
                        if Some(&digests[*i]) == d.as_ref() && out[*i].is_none() {
                            out[*i] = Some(resp.data.clone());
                        }
                    }
                }
                batch.clear();
                Ok(())
            };
        for (i, d) in digests.iter().enumerate() {
            if d.size == 0 {
                out[i] = Some(Vec::new());
            } else if d.size > limit {
                out[i] = Some(self.bytestream_read(d)?);
            } else {
                if size + d.size > limit {
                    flush(&mut batch, &mut out)?;
                    size = 0;
                }
                batch.push(i);
                size += d.size;
            }
        }
        flush(&mut batch, &mut out)?;
        out.into_iter()
            .zip(digests)
            .map(|(b, d)| b.ok_or_else(|| format!("the server did not return blob {}", d.hash)))
            .collect()
    }

    fn find_missing(&self, digests: &[WireDigest]) -> Result<Vec<WireDigest>, String> {
        if digests.is_empty() {
            return Ok(Vec::new());
        }
        let r: proto::FindMissingBlobsResponse = self
            .unary(
                FIND_MISSING,
                proto::FindMissingBlobsRequest {
                    instance_name: self.instance.clone(),
                    blob_digests: digests.iter().map(wire).collect(),
                    digest_function: self.digest_fn(),
                },
            )
            .map_err(describe)?;
        Ok(r.missing_blob_digests.iter().map(unwire).collect())
    }

    fn write_blobs(&self, blobs: &[(WireDigest, Vec<u8>)]) -> Result<(), String> {
        let limit = self.caps()?.batch - BATCH_OVERHEAD;
        let mut batch: Vec<proto::UpdateBlob> = Vec::new();
        let mut size = 0i64;
        let flush = |batch: &mut Vec<proto::UpdateBlob>| -> Result<(), String> {
            if batch.is_empty() {
                return Ok(());
            }
            let r: proto::BatchUpdateBlobsResponse = self
                .unary(
                    BATCH_UPDATE,
                    proto::BatchUpdateBlobsRequest {
                        instance_name: self.instance.clone(),
                        requests: std::mem::take(batch),
                        digest_function: self.digest_fn(),
                    },
                )
                .map_err(describe)?;
            for resp in r.responses {
                if let Some(s) = resp.status.filter(|s| s.code != 0) {
                    return Err(format!("storing a blob: status {}: {}", s.code, s.message));
                }
            }
            Ok(())
        };
        for (d, bytes) in blobs {
            if d.size > limit {
                self.bytestream_write(d, bytes)?;
                continue;
            }
            if size + d.size > limit {
                flush(&mut batch)?;
                size = 0;
            }
            batch.push(proto::UpdateBlob {
                digest: Some(wire(d)),
                data: bytes.clone(),
            });
            size += d.size;
        }
        flush(&mut batch)
    }

    fn put_action(&self, action: &WireDigest, outputs: &[WireOutput]) -> Result<(), String> {
        let _: proto::ActionResult = self
            .unary(
                UPDATE_ACTION,
                proto::UpdateActionResultRequest {
                    instance_name: self.instance.clone(),
                    action_digest: Some(wire(action)),
                    action_result: Some(action_result(outputs)),
                    digest_function: self.digest_fn(),
                },
            )
            .map_err(describe)?;
        Ok(())
    }
}

/// The REAPI `ActionResult` of `outputs`.
pub fn action_result(outputs: &[WireOutput]) -> proto::ActionResult {
    proto::ActionResult {
        output_files: outputs
            .iter()
            .map(|o| proto::OutputFile {
                path: o.path.clone(),
                digest: Some(wire(&o.digest)),
                is_executable: o.executable,
                contents: Vec::new(),
            })
            .collect(),
        exit_code: 0,
        stdout_digest: None,
    }
}

/// The outputs of a REAPI `ActionResult` from `GetActionResult`, if it
/// succeeded, with the contents the server inlined (an empty blob counts
/// as inlined).
pub fn inline_outputs_of(ar: proto::ActionResult) -> Result<Option<Vec<WireOutput>>, String> {
    if ar.exit_code != 0 {
        return Ok(None);
    }
    let mut out = Vec::new();
    for f in ar.output_files {
        let d = f
            .digest
            .as_ref()
            .ok_or_else(|| format!("output `{}` has no digest", f.path))?;
        out.push(WireOutput {
            path: f.path.clone(),
            digest: unwire(d),
            executable: f.is_executable,
            contents: (!f.contents.is_empty() || d.size_bytes == 0).then(|| f.contents.clone()),
        });
    }
    Ok(Some(out))
}

/// What the gRPC client's `get_action` makes of a `GetActionResult`
/// response's bytes: the message as tonic's prost codec decodes it, then
/// its outputs with their inlined contents. Public for the fuzzer
/// (`kiln-fuzz reapi_result`).
pub fn decode_action_result(bytes: &[u8]) -> Result<Option<Vec<WireOutput>>, String> {
    let ar = <proto::ActionResult as prost::Message>::decode(bytes)
        .map_err(|e| format!("not an ActionResult: {e}"))?;
    inline_outputs_of(ar)
}

/// The outputs of a REAPI `ActionResult` (HTTP protocol), if it succeeded.
pub fn outputs_of(ar: proto::ActionResult) -> Result<Option<Vec<WireOutput>>, String> {
    if ar.exit_code != 0 {
        return Ok(None);
    }
    ar.output_files
        .into_iter()
        .map(|f| {
            let d = f
                .digest
                .as_ref()
                .ok_or_else(|| format!("output `{}` has no digest", f.path))?;
            Ok(WireOutput {
                path: f.path.clone(),
                digest: unwire(d),
                executable: f.is_executable,
                contents: None,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Some)
}
