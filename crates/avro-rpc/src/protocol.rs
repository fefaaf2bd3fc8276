//! Flume's Avro protocol (`flume.avdl`: `AvroFlumeEvent`, `append`, `appendBatch`, `Status`)
//! over Avro IPC, with Java's stateful handshake: a connection's requests carry a
//! `HandshakeRequest` until a response says the handshake is established (`BOTH` or
//! `CLIENT`), and a client the server does not know gets `NONE` (its call is not processed)
//! and resends with its protocol text. Datums are encoded with the `apache-avro` crate;
//! only the message layout is written here.
//!
//! Request: `[HandshakeRequest] meta:map<bytes> name:string params`. Response:
//! `[HandshakeResponse] meta:map<bytes> error:boolean (response | error union)`. An empty
//! message name is a handshake ping: its response is the handshake response alone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use bytes::Bytes;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use flumen_core::event::{Event, Headers};

/// The protocol as Flume declares it, in Avro's JSON protocol form.
pub const PROTOCOL_TEXT: &str = concat!(
    r#"{"protocol":"AvroSourceProtocol","namespace":"org.apache.flume.source.avro","#,
    r#""types":[{"type":"enum","name":"Status","symbols":["OK","FAILED","UNKNOWN"]},"#,
    r#"{"type":"record","name":"AvroFlumeEvent","fields":[{"name":"headers","type":"#,
    r#"{"type":"map","values":"string"}},{"name":"body","type":"bytes"}]}],"#,
    r#""messages":{"append":{"request":[{"name":"event","type":"AvroFlumeEvent"}],"#,
    r#""response":"Status"},"appendBatch":{"request":[{"name":"events","type":"#,
    r#"{"type":"array","items":"AvroFlumeEvent"}}],"response":"Status"}}}"#
);

/// The MD5 of [`PROTOCOL_TEXT`]: how a handshake names this protocol.
pub static PROTOCOL_HASH: LazyLock<[u8; 16]> = LazyLock::new(|| md5_of(PROTOCOL_TEXT));

/// MD5 of a protocol's text.
pub fn md5_of(text: &str) -> [u8; 16] {
    Md5::digest(text.as_bytes()).into()
}

/// Most bytes `apache-avro` may allocate for one string, bytes, array or map it decodes:
/// without it a 20-byte request announcing a huge length makes the crate allocate up to its
/// default of 512 MiB. Requests are at most `maxFrameBytes` (64 MiB by default) anyway.
pub const MAX_AVRO_ALLOCATION: usize = 64 << 20;

/// Sets [`MAX_AVRO_ALLOCATION`] (the crate's setting is process-wide and set once).
pub fn limit_allocations() {
    apache_avro::util::max_allocation_bytes(MAX_AVRO_ALLOCATION);
}

/// The schemas of every datum on the wire.
struct Schemas {
    handshake_request: Schema,
    handshake_response: Schema,
    meta: Schema,
    string: Schema,
    boolean: Schema,
    event: Schema,
    events: Schema,
    status: Schema,
    errors: Schema,
}

const EVENT_SCHEMA: &str = r#"{"type":"record","name":"AvroFlumeEvent","namespace":"org.apache.flume.source.avro","fields":[{"name":"headers","type":{"type":"map","values":"string"}},{"name":"body","type":"bytes"}]}"#;

static SCHEMAS: LazyLock<Schemas> = LazyLock::new(|| {
    // Constant texts: a parse failure is a bug caught by every test of this module.
    let parse = |text: &str| Schema::parse_str(text).expect("a built-in Avro schema parses");
    Schemas {
        handshake_request: parse(
            r#"{"type":"record","name":"HandshakeRequest","namespace":"org.apache.avro.ipc","fields":[{"name":"clientHash","type":{"type":"fixed","name":"MD5","size":16}},{"name":"clientProtocol","type":["null","string"]},{"name":"serverHash","type":"MD5"},{"name":"meta","type":["null",{"type":"map","values":"bytes"}]}]}"#,
        ),
        handshake_response: parse(
            r#"{"type":"record","name":"HandshakeResponse","namespace":"org.apache.avro.ipc","fields":[{"name":"match","type":{"type":"enum","name":"HandshakeMatch","symbols":["BOTH","CLIENT","NONE"]}},{"name":"serverProtocol","type":["null","string"]},{"name":"serverHash","type":["null",{"type":"fixed","name":"MD5","size":16}]},{"name":"meta","type":["null",{"type":"map","values":"bytes"}]}]}"#,
        ),
        meta: parse(r#"{"type":"map","values":"bytes"}"#),
        string: parse(r#""string""#),
        boolean: parse(r#""boolean""#),
        event: parse(EVENT_SCHEMA),
        events: parse(&format!(r#"{{"type":"array","items":{EVENT_SCHEMA}}}"#)),
        status: parse(
            r#"{"type":"enum","name":"Status","namespace":"org.apache.flume.source.avro","symbols":["OK","FAILED","UNKNOWN"]}"#,
        ),
        errors: parse(r#"["string"]"#),
    }
});

/// Why a message cannot be read. The connection's state is unknown afterwards: answer if
/// possible, then close it.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The bytes are not the datum expected.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which part of the message.
        what: &'static str,
        /// The decoder's words.
        detail: String,
    },
}

fn malformed(what: &'static str, detail: impl ToString) -> ProtocolError {
    ProtocolError::Malformed {
        what,
        detail: detail.to_string(),
    }
}

/// Flume's `Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The events are committed to the channel.
    Ok,
    /// They are not (a full channel); the client should retry.
    Failed,
    /// Never sent by Flume's source.
    Unknown,
}

impl Status {
    fn symbol(self) -> (u32, &'static str) {
        match self {
            Status::Ok => (0, "OK"),
            Status::Failed => (1, "FAILED"),
            Status::Unknown => (2, "UNKNOWN"),
        }
    }
}

/// Flume's `AvroFlumeEvent`, as serde sees it.
#[derive(Serialize, Deserialize)]
struct AvroFlumeEvent {
    headers: HashMap<String, String>,
    #[serde(with = "apache_avro::serde::bytes")]
    body: Vec<u8>,
}

impl From<AvroFlumeEvent> for Event {
    /// The event; `read_call` refuses one with more than [`crate::events::MAX_HEADERS`]
    /// headers before converting it.
    fn from(e: AvroFlumeEvent) -> Event {
        let headers: Headers = e
            .headers
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Event::with_headers(headers, e.body)
    }
}

/// A call a client made.
#[derive(Debug)]
pub enum Call {
    /// `append(event)`.
    Append(Event),
    /// `appendBatch(events)`.
    AppendBatch(Vec<Event>),
    /// An empty message name: the client only wanted the handshake.
    Ping,
    /// A message this protocol does not have.
    Unknown(String),
}

/// What a response carried.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// The call's result.
    Status(Status),
    /// A system error, in the server's words.
    Error(String),
}

fn write(schema: &Schema, value: Value, out: &mut Vec<u8>) {
    let written = GenericDatumWriter::builder(schema)
        .build()
        .and_then(|w| w.write_value(out, value));
    // The values are built here to match their schemas; a mismatch is a bug.
    debug_assert!(written.is_ok(), "{written:?}");
}

fn read(schema: &Schema, input: &mut &[u8], what: &'static str) -> Result<Value, ProtocolError> {
    GenericDatumReader::builder(schema)
        .build()
        .and_then(|r| r.read_value(input))
        .map_err(|e| malformed(what, e))
}

fn fixed16(value: Value) -> Option<[u8; 16]> {
    match value {
        Value::Fixed(16, bytes) => bytes.try_into().ok(),
        _ => None,
    }
}

fn optional_string(value: Value) -> Option<String> {
    match value {
        Value::Union(_, inner) => match *inner {
            Value::String(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

fn field(fields: &mut Vec<(String, Value)>, name: &str) -> Value {
    fields
        .iter()
        .position(|(n, _)| n == name)
        .map(|i| fields.swap_remove(i).1)
        .unwrap_or(Value::Null)
}

fn record(value: Value, what: &'static str) -> Result<Vec<(String, Value)>, ProtocolError> {
    match value {
        Value::Record(fields) => Ok(fields),
        other => Err(malformed(what, format!("not a record: {other:?}"))),
    }
}

fn null_or_string(s: Option<&str>) -> Value {
    match s {
        Some(s) => Value::Union(1, Box::new(Value::String(s.to_string()))),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

/// A client's `HandshakeRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeRequest {
    /// The MD5 of the client's protocol.
    pub client_hash: [u8; 16],
    /// The client's protocol text, sent after a `NONE`.
    pub client_protocol: Option<String>,
    /// The hash the client believes the server has.
    pub server_hash: [u8; 16],
}

impl HandshakeRequest {
    /// Appends the encoded request.
    pub fn write(&self, out: &mut Vec<u8>) {
        let value = Value::Record(vec![
            (
                "clientHash".into(),
                Value::Fixed(16, self.client_hash.to_vec()),
            ),
            (
                "clientProtocol".into(),
                null_or_string(self.client_protocol.as_deref()),
            ),
            (
                "serverHash".into(),
                Value::Fixed(16, self.server_hash.to_vec()),
            ),
            ("meta".into(), Value::Union(0, Box::new(Value::Null))),
        ]);
        write(&SCHEMAS.handshake_request, value, out);
    }

    /// Reads one from the front of `input`.
    pub fn read(input: &mut &[u8]) -> Result<Self, ProtocolError> {
        const WHAT: &str = "handshake request";
        let mut fields = record(read(&SCHEMAS.handshake_request, input, WHAT)?, WHAT)?;
        let bad_hash = || malformed(WHAT, "a hash is not 16 bytes");
        Ok(HandshakeRequest {
            client_hash: fixed16(field(&mut fields, "clientHash")).ok_or_else(bad_hash)?,
            client_protocol: optional_string(field(&mut fields, "clientProtocol")),
            server_hash: fixed16(field(&mut fields, "serverHash")).ok_or_else(bad_hash)?,
        })
    }
}

/// How a server matched a client's handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeMatch {
    /// Both sides know each other's protocol.
    Both,
    /// The server knows the client's; the client learns the server's from the response.
    Client,
    /// The server does not know the client's protocol: resend with its text.
    None,
}

/// A server's `HandshakeResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeResponse {
    /// The match.
    pub matched: HandshakeMatch,
    /// The server's protocol text, unless `BOTH`.
    pub server_protocol: Option<String>,
    /// The server's protocol hash, unless `BOTH`.
    pub server_hash: Option<[u8; 16]>,
}

impl HandshakeResponse {
    /// Appends the encoded response.
    pub fn write(&self, out: &mut Vec<u8>) {
        let (index, symbol) = match self.matched {
            HandshakeMatch::Both => (0, "BOTH"),
            HandshakeMatch::Client => (1, "CLIENT"),
            HandshakeMatch::None => (2, "NONE"),
        };
        let hash = match self.server_hash {
            Some(h) => Value::Union(1, Box::new(Value::Fixed(16, h.to_vec()))),
            None => Value::Union(0, Box::new(Value::Null)),
        };
        let value = Value::Record(vec![
            ("match".into(), Value::Enum(index, symbol.into())),
            (
                "serverProtocol".into(),
                null_or_string(self.server_protocol.as_deref()),
            ),
            ("serverHash".into(), hash),
            ("meta".into(), Value::Union(0, Box::new(Value::Null))),
        ]);
        write(&SCHEMAS.handshake_response, value, out);
    }

    /// Reads one from the front of `input`.
    pub fn read(input: &mut &[u8]) -> Result<Self, ProtocolError> {
        const WHAT: &str = "handshake response";
        let mut fields = record(read(&SCHEMAS.handshake_response, input, WHAT)?, WHAT)?;
        let matched = match field(&mut fields, "match") {
            Value::Enum(0, _) => HandshakeMatch::Both,
            Value::Enum(1, _) => HandshakeMatch::Client,
            Value::Enum(2, _) => HandshakeMatch::None,
            other => return Err(malformed(WHAT, format!("match {other:?}"))),
        };
        let server_hash = match field(&mut fields, "serverHash") {
            Value::Union(_, inner) => fixed16(*inner),
            _ => None,
        };
        Ok(HandshakeResponse {
            matched,
            server_protocol: optional_string(field(&mut fields, "serverProtocol")),
            server_hash,
        })
    }
}

/// An event borrowed for encoding: no copy of its body or headers.
struct EventRef<'a>(&'a Event);

impl Serialize for EventRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut record = s.serialize_struct("AvroFlumeEvent", 2)?;
        record.serialize_field("headers", &HeadersRef(&self.0.headers))?;
        record.serialize_field("body", &BodyRef(&self.0.body))?;
        record.end()
    }
}

struct HeadersRef<'a>(&'a Headers);

impl Serialize for HeadersRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

struct BodyRef<'a>(&'a [u8]);

impl Serialize for BodyRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        apache_avro::serde::bytes::serialize(self.0, s)
    }
}

struct EventsRef<'a>(&'a [Event]);

impl Serialize for EventsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(EventRef))
    }
}

/// Appends an `appendBatch` call (empty call metadata).
pub fn write_append_batch(events: &[Event], out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    write(&SCHEMAS.meta, Value::Map(HashMap::new()), out);
    write(&SCHEMAS.string, Value::String("appendBatch".into()), out);
    GenericDatumWriter::builder(&SCHEMAS.events)
        .build()
        .and_then(|w| w.write_ser(out, &EventsRef(events)))
        .map(|_| ())
        .map_err(|e| malformed("appendBatch events", e))
}

/// Appends an `append` call of one event (empty call metadata).
pub fn write_append(event: &Event, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    write(&SCHEMAS.meta, Value::Map(HashMap::new()), out);
    write(&SCHEMAS.string, Value::String("append".into()), out);
    GenericDatumWriter::builder(&SCHEMAS.event)
        .build()
        .and_then(|w| w.write_ser(out, &EventRef(event)))
        .map(|_| ())
        .map_err(|e| malformed("append event", e))
}

/// Reads a call (metadata, name, parameters) from the front of `input`, a suffix of
/// `payload` (event bodies are sliced out of `payload`), taking at most `max_events` events.
pub fn read_call(
    payload: &Bytes,
    input: &mut &[u8],
    max_events: usize,
) -> Result<Call, ProtocolError> {
    read(&SCHEMAS.meta, input, "call metadata")?;
    let name = match read(&SCHEMAS.string, input, "message name")? {
        Value::String(s) => s,
        other => return Err(malformed("message name", format!("{other:?}"))),
    };
    match name.as_str() {
        "" => Ok(Call::Ping),
        "appendBatch" => {
            let start = payload.len() - input.len();
            let (events, used) = crate::events::decode_events(payload.slice(start..), max_events)
                .map_err(|e| malformed("appendBatch events", e))?;
            *input = &input[used..];
            Ok(Call::AppendBatch(events))
        }
        "append" => {
            let event: AvroFlumeEvent = GenericDatumReader::builder(&SCHEMAS.event)
                .build()
                .and_then(|r| r.read_deser(input))
                .map_err(|e| malformed("append event", e))?;
            if event.headers.len() > crate::events::MAX_HEADERS {
                return Err(malformed(
                    "append event",
                    crate::events::DecodeError::TooManyHeaders,
                ));
            }
            Ok(Call::Append(event.into()))
        }
        _ => Ok(Call::Unknown(name)),
    }
}

/// `array<AvroFlumeEvent>` read by `apache-avro`: the reference the fast reader
/// ([`crate::events`]) is checked against.
#[cfg(test)]
pub(crate) fn read_events_with_apache_avro(input: &mut &[u8]) -> Result<Vec<Event>, ProtocolError> {
    let events: Vec<AvroFlumeEvent> = GenericDatumReader::builder(&SCHEMAS.events)
        .build()
        .and_then(|r| r.read_deser(input))
        .map_err(|e| malformed("appendBatch events", e))?;
    Ok(events.into_iter().map(Event::from).collect())
}

/// Appends a response carrying `status` (empty metadata, no error).
pub fn write_status(status: Status, out: &mut Vec<u8>) {
    write(&SCHEMAS.meta, Value::Map(HashMap::new()), out);
    write(&SCHEMAS.boolean, Value::Boolean(false), out);
    let (index, symbol) = status.symbol();
    write(&SCHEMAS.status, Value::Enum(index, symbol.into()), out);
}

/// Appends a response carrying a system error.
pub fn write_error(message: &str, out: &mut Vec<u8>) {
    write(&SCHEMAS.meta, Value::Map(HashMap::new()), out);
    write(&SCHEMAS.boolean, Value::Boolean(true), out);
    write(
        &SCHEMAS.errors,
        Value::Union(0, Box::new(Value::String(message.into()))),
        out,
    );
}

/// Reads a response's metadata and result from the front of `input`.
pub fn read_reply(input: &mut &[u8]) -> Result<Reply, ProtocolError> {
    read(&SCHEMAS.meta, input, "response metadata")?;
    let error = matches!(
        read(&SCHEMAS.boolean, input, "error flag")?,
        Value::Boolean(true)
    );
    if error {
        return match read(&SCHEMAS.errors, input, "error")? {
            Value::Union(_, inner) => match *inner {
                Value::String(s) => Ok(Reply::Error(s)),
                other => Ok(Reply::Error(format!("{other:?}"))),
            },
            other => Ok(Reply::Error(format!("{other:?}"))),
        };
    }
    match read(&SCHEMAS.status, input, "status")? {
        Value::Enum(0, _) => Ok(Reply::Status(Status::Ok)),
        Value::Enum(1, _) => Ok(Reply::Status(Status::Failed)),
        Value::Enum(2, _) => Ok(Reply::Status(Status::Unknown)),
        other => Err(malformed("status", format!("{other:?}"))),
    }
}

/// The protocol hashes a server has learnt (its own included), shared by its connections, as
/// Java's `Responder` caches them.
#[derive(Clone)]
pub struct KnownClients(Arc<Mutex<HashSet<[u8; 16]>>>);

impl Default for KnownClients {
    fn default() -> Self {
        KnownClients(Arc::new(Mutex::new(HashSet::from([*PROTOCOL_HASH]))))
    }
}

impl KnownClients {
    fn knows(&self, hash: &[u8; 16]) -> bool {
        self.0.lock().map(|s| s.contains(hash)).unwrap_or(false)
    }

    fn learn(&self, hash: [u8; 16]) {
        if let Ok(mut s) = self.0.lock() {
            // Bounded: a client inventing hashes cannot grow it without limit.
            if s.len() < 1024 {
                s.insert(hash);
            }
        }
    }
}

/// What a server does with one request.
#[derive(Debug)]
pub enum Incoming {
    /// Answer with these bytes and process nothing (a `NONE` handshake, a ping).
    Answer(Vec<u8>),
    /// Process the call, then answer with `prefix` followed by its result.
    Call {
        /// The handshake response, when the request carried a handshake.
        prefix: Vec<u8>,
        /// The call.
        call: Call,
    },
}

/// One server connection's handshake state.
pub struct ServerSession {
    established: bool,
    known: KnownClients,
    max_events: usize,
}

impl ServerSession {
    /// A new connection's state, taking at most `max_events` events per call.
    pub fn new(known: KnownClients, max_events: usize) -> Self {
        limit_allocations();
        ServerSession {
            established: false,
            known,
            max_events,
        }
    }

    /// Reads one request's payload.
    pub fn receive(&mut self, payload: &Bytes) -> Result<Incoming, ProtocolError> {
        let mut input: &[u8] = payload;
        let mut prefix = Vec::new();
        if !self.established {
            let request = HandshakeRequest::read(&mut input)?;
            let response = self.handshake(&request)?;
            response.write(&mut prefix);
            if response.matched == HandshakeMatch::None {
                return Ok(Incoming::Answer(prefix));
            }
            self.established = true;
        }
        match read_call(payload, &mut input, self.max_events)? {
            Call::Ping => Ok(Incoming::Answer(prefix)),
            call => Ok(Incoming::Call { prefix, call }),
        }
    }

    fn handshake(&self, request: &HandshakeRequest) -> Result<HandshakeResponse, ProtocolError> {
        let mut known = self.known.knows(&request.client_hash);
        if !known {
            if let Some(text) = &request.client_protocol {
                check_client_protocol(text)?;
                self.known.learn(request.client_hash);
                known = true;
            }
        }
        let ours = *PROTOCOL_HASH;
        Ok(if !known {
            HandshakeResponse {
                matched: HandshakeMatch::None,
                server_protocol: Some(PROTOCOL_TEXT.into()),
                server_hash: Some(ours),
            }
        } else if request.server_hash == ours {
            HandshakeResponse {
                matched: HandshakeMatch::Both,
                server_protocol: None,
                server_hash: None,
            }
        } else {
            HandshakeResponse {
                matched: HandshakeMatch::Client,
                server_protocol: Some(PROTOCOL_TEXT.into()),
                server_hash: Some(ours),
            }
        })
    }
}

/// A client's protocol must be a protocol with Flume's messages (the names are what the two
/// sides agree on; Avro resolves the rest).
fn check_client_protocol(text: &str) -> Result<(), ProtocolError> {
    let parsed: serde_json::Value =
        serde_json::from_str(text).map_err(|e| malformed("client protocol", e))?;
    let messages = parsed.get("messages").and_then(|m| m.as_object());
    match messages {
        Some(m) if m.contains_key("appendBatch") || m.contains_key("append") => Ok(()),
        _ => Err(malformed(
            "client protocol",
            "it has neither `append` nor `appendBatch`",
        )),
    }
}

/// One client connection's handshake state.
#[derive(Default)]
pub struct ClientSession {
    established: bool,
    send_text: bool,
    server_hash: Option<[u8; 16]>,
}

impl ClientSession {
    /// A new connection's state, starting from the server hash an earlier connection to the
    /// same server learnt (Java's requestor remembers it per server), so that a reconnect
    /// is matched `BOTH` at once.
    pub fn resuming(server_hash: Option<[u8; 16]>) -> Self {
        ClientSession {
            server_hash,
            ..ClientSession::default()
        }
    }

    /// The server's protocol hash, once a response named it.
    pub fn server_hash(&self) -> Option<[u8; 16]> {
        self.server_hash
    }

    /// Appends a request carrying `call` (metadata, name, parameters), with a handshake until
    /// it is established.
    pub fn request(&self, call: &[u8], out: &mut Vec<u8>) {
        if !self.established {
            HandshakeRequest {
                client_hash: *PROTOCOL_HASH,
                client_protocol: self.send_text.then(|| PROTOCOL_TEXT.to_string()),
                server_hash: self.server_hash.unwrap_or(*PROTOCOL_HASH),
            }
            .write(out);
        }
        out.extend_from_slice(call);
    }

    /// Reads a response; `None` when the server did not know our protocol (`NONE`): send the
    /// same call again, this time with the protocol text.
    pub fn response(&mut self, payload: &[u8]) -> Result<Option<Reply>, ProtocolError> {
        let mut input = payload;
        if !self.established {
            let handshake = HandshakeResponse::read(&mut input)?;
            if let Some(hash) = handshake.server_hash {
                self.server_hash = Some(hash);
            }
            if handshake.matched == HandshakeMatch::None {
                if self.send_text {
                    return Err(malformed(
                        "handshake response",
                        "the server refused our protocol text",
                    ));
                }
                self.send_text = true;
                return Ok(None);
            }
            self.established = true;
        }
        read_reply(&mut input).map(Some)
    }
}

#[cfg(test)]
mod tests;
