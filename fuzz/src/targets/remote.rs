//! Remote cache answers: a REAPI `GetActionResult` response as the gRPC
//! client reads it (`reapi_result`) and an HTTP cache's AC entry
//! (`http_result`). Both are a serialized `ActionResult` decoded with
//! prost, then turned into kiln's outputs; a result that decodes must
//! survive kiln's own encoding (`remote::action_result`, what kiln
//! uploads) unchanged: paths, digests and executable bits.

use kiln_engine::remote::proto;
use kiln_engine::remote::{
    HashFn, WireOutput, action_result, decode_ac_entry, decode_action_result,
};
use prost::Message;

use super::{Target, regression_seeds};

/// Tokens of protobuf: field keys of `ActionResult` (2: output files, 4:
/// exit code, 6: stdout digest), of `OutputFile` (1 path, 2 digest, 4
/// executable, 5 contents) and `Digest` (1 hash, 2 size), varints and
/// lengths at their limits.
const PROTO_DICT: &[&[u8]] = &[
    &[0x12],
    &[0x20],
    &[0x32],
    &[0x0a],
    &[0x10],
    &[0x2a],
    &[0x20, 0x01],
    &[0x12, 0x00],
    &[0x0a, 0x40],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    &[
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
    ],
    &[0x80],
    &[0x00],
    b"kiln-out/a/x",
    b"../escape",
];

/// Encoded `ActionResult`s: kiln's own uploads, and a server's answers
/// with inlined contents, a failed exit code and a stdout digest.
fn result_seeds(target: &str) -> Vec<Vec<u8>> {
    let hf = HashFn::Sha256;
    let out = |path: &str, body: &[u8], executable| WireOutput {
        path: path.to_owned(),
        digest: hf.digest(body),
        executable,
        contents: None,
    };
    let outputs = vec![
        out("kiln-out/a/x.o", b"object", false),
        out("kiln-out/a/tool", b"#!/bin/sh\n", true),
        out("kiln-out/a/empty", b"", false),
    ];
    let mut v = vec![
        action_result(&[]).encode_to_vec(),
        action_result(&outputs).encode_to_vec(),
    ];
    let mut inline = action_result(&outputs[..1]);
    inline.output_files[0].contents = b"object".to_vec();
    inline.stdout_digest = Some(proto::Digest {
        hash: hf.digest(b"log").hash,
        size_bytes: 3,
    });
    v.push(inline.encode_to_vec());
    let mut failed = action_result(&outputs);
    failed.exit_code = 1;
    v.push(failed.encode_to_vec());
    v.extend(regression_seeds(target));
    v
}

/// The parts of outputs that survive kiln's encoding.
fn essence(o: &[WireOutput]) -> Vec<(&str, &str, i64, bool)> {
    o.iter()
        .map(|o| {
            (
                o.path.as_str(),
                o.digest.hash.as_str(),
                o.digest.size,
                o.executable,
            )
        })
        .collect()
}

/// Decode `b` with `decode`; what decodes must decode the same after
/// kiln's own encoding. Returns whether `b` was accepted.
fn survives_encoding<E: PartialEq + std::fmt::Debug>(
    b: &[u8],
    decode: impl Fn(&[u8]) -> Result<Option<Vec<WireOutput>>, E>,
) -> bool {
    match decode(b) {
        Ok(Some(outputs)) => {
            let back = decode(&action_result(&outputs).encode_to_vec());
            let back = back.map(|o| o.map(|o| format!("{:?}", essence(&o))));
            assert_eq!(
                back,
                Ok(Some(format!("{:?}", essence(&outputs)))),
                "outputs survive kiln's encoding"
            );
            true
        }
        Ok(None) => true,
        Err(_) => false,
    }
}

/// `reapi_result`: `remote::decode_action_result`.
pub const REAPI_RESULT: Target = Target {
    name: "reapi_result",
    about: "a GetActionResult response: prost decoding of ActionResult and kiln's conversion (engine/src/remote/grpc.rs)",
    max_len: 64 * 1024,
    dict: PROTO_DICT,
    seeds: || result_seeds("reapi_result"),
    setup: || Box::new(|b| survives_encoding(b, decode_action_result)),
};

/// `http_result`: `remote::decode_ac_entry`.
pub const HTTP_RESULT: Target = Target {
    name: "http_result",
    about: "an HTTP cache AC entry: prost decoding of ActionResult and kiln's conversion (engine/src/remote/http.rs)",
    max_len: 64 * 1024,
    dict: PROTO_DICT,
    seeds: || result_seeds("http_result"),
    setup: || {
        Box::new(|b| {
            let hash = "0".repeat(64);
            survives_encoding(b, |b| decode_ac_entry(b, &hash))
        })
    },
};
