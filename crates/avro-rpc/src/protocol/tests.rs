//! The handshake state machines against each other, Java's NONE path, pings, unknown
//! messages and malformed input.

use super::*;

/// Hands `bytes` to the server as a received payload.
fn rx(server: &mut ServerSession, bytes: &[u8]) -> Result<Incoming, ProtocolError> {
    server.receive(&Bytes::copy_from_slice(bytes))
}

fn events() -> Vec<Event> {
    let mut with_headers = Event::new("b\u{e9}\u{0}\u{ff}".as_bytes().to_vec());
    with_headers.headers.insert("host".into(), "web-1".into());
    with_headers.headers.insert("k".into(), "v=w".into());
    vec![with_headers, Event::new(""), Event::new(vec![0u8, 255, 10])]
}

fn batch_call(events: &[Event]) -> Vec<u8> {
    let mut call = Vec::new();
    write_append_batch(events, &mut call).expect("encoded");
    call
}

#[test]
fn a_known_client_is_established_on_its_first_call_and_sends_no_handshake_after() {
    let known = KnownClients::default();
    let mut server = ServerSession::new(known, 100_000);
    let mut client = ClientSession::default();
    let sent = events();
    for round in 0..2 {
        let mut request = Vec::new();
        client.request(&batch_call(&sent), &mut request);
        let Incoming::Call { mut prefix, call } = rx(&mut server, &request).expect("read") else {
            panic!("a call");
        };
        let Call::AppendBatch(got) = call else {
            panic!("appendBatch: {call:?}");
        };
        assert_eq!(got.len(), 3);
        for (g, s) in got.iter().zip(&sent) {
            assert_eq!(g.body, s.body);
            let mut gh: Vec<_> = g.headers.iter().collect();
            let mut sh: Vec<_> = s.headers.iter().collect();
            gh.sort();
            sh.sort();
            assert_eq!(gh, sh);
        }
        assert_eq!(
            prefix.is_empty(),
            round == 1,
            "a handshake response on the first call only"
        );
        write_status(Status::Ok, &mut prefix);
        assert_eq!(
            client.response(&prefix).expect("reply"),
            Some(Reply::Status(Status::Ok))
        );
    }
}

#[test]
fn an_unknown_client_gets_none_then_resends_with_its_text() {
    let mut server = ServerSession::new(KnownClients::default(), 100_000);
    // A client whose protocol text differs (another hash), as Java's may.
    let text = PROTOCOL_TEXT.replace("AvroSourceProtocol", "AvroSourceProtocol ");
    let hash = md5_of(&text);
    let mut first = Vec::new();
    HandshakeRequest {
        client_hash: hash,
        client_protocol: None,
        server_hash: hash,
    }
    .write(&mut first);
    first.extend(batch_call(&events()));
    let Incoming::Answer(answer) = rx(&mut server, &first).expect("read") else {
        panic!("NONE: the call is not processed");
    };
    let response = HandshakeResponse::read(&mut answer.as_slice()).expect("response");
    assert_eq!(response.matched, HandshakeMatch::None);
    assert_eq!(response.server_hash, Some(*PROTOCOL_HASH));
    assert_eq!(response.server_protocol.as_deref(), Some(PROTOCOL_TEXT));

    let mut again = Vec::new();
    HandshakeRequest {
        client_hash: hash,
        client_protocol: Some(text),
        server_hash: *PROTOCOL_HASH,
    }
    .write(&mut again);
    again.extend(batch_call(&events()));
    let Incoming::Call { prefix, call } = rx(&mut server, &again).expect("read") else {
        panic!("processed");
    };
    assert!(matches!(call, Call::AppendBatch(ref e) if e.len() == 3));
    let response = HandshakeResponse::read(&mut prefix.as_slice()).expect("response");
    assert_eq!(response.matched, HandshakeMatch::Both);
    // A second connection from the same client is known by its hash now.
    let mut other = ServerSession::new(server.known.clone(), 100_000);
    let mut request = Vec::new();
    HandshakeRequest {
        client_hash: hash,
        client_protocol: None,
        server_hash: [0; 16],
    }
    .write(&mut request);
    request.extend(batch_call(&events()));
    let Incoming::Call { prefix, .. } = rx(&mut other, &request).expect("read") else {
        panic!("processed");
    };
    let response = HandshakeResponse::read(&mut prefix.as_slice()).expect("response");
    assert_eq!(
        response.matched,
        HandshakeMatch::Client,
        "a stale server hash"
    );
}

#[test]
fn the_client_follows_none_by_resending_with_its_text() {
    let mut client = ClientSession::default();
    let mut answer = Vec::new();
    HandshakeResponse {
        matched: HandshakeMatch::None,
        server_protocol: Some(PROTOCOL_TEXT.into()),
        server_hash: Some([7; 16]),
    }
    .write(&mut answer);
    assert_eq!(client.response(&answer).expect("read"), None, "resend");
    let mut request = Vec::new();
    client.request(&batch_call(&[]), &mut request);
    let handshake = HandshakeRequest::read(&mut request.as_slice()).expect("handshake");
    assert_eq!(handshake.client_protocol.as_deref(), Some(PROTOCOL_TEXT));
    assert_eq!(handshake.server_hash, [7; 16]);
}

#[test]
fn pings_unknown_messages_and_errors() {
    let mut server = ServerSession::new(KnownClients::default(), 100_000);
    let mut ping = Vec::new();
    ClientSession::default().request(&[0, 0], &mut ping); // empty meta, empty name
    let Incoming::Answer(answer) = rx(&mut server, &ping).expect("read") else {
        panic!("a ping is answered with the handshake alone");
    };
    let response = HandshakeResponse::read(&mut answer.as_slice()).expect("response");
    assert_eq!(response.matched, HandshakeMatch::Both);

    let mut unknown = Vec::new();
    write(&SCHEMAS.meta, Value::Map(HashMap::new()), &mut unknown);
    write(
        &SCHEMAS.string,
        Value::String("launch".into()),
        &mut unknown,
    );
    let Incoming::Call { call, .. } = rx(&mut server, &unknown).expect("read") else {
        panic!("a call");
    };
    assert!(matches!(call, Call::Unknown(ref n) if n == "launch"));

    let mut error = Vec::new();
    write_error("No such message: launch", &mut error);
    assert_eq!(
        read_reply(&mut error.as_slice()).expect("reply"),
        Reply::Error("No such message: launch".into())
    );
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let mut server = ServerSession::new(KnownClients::default(), 100_000);
    for garbage in [
        &b""[..],
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x02abc",
    ] {
        assert!(rx(&mut server, garbage).is_err(), "{garbage:?}");
    }
    // Established, then a truncated batch and an absurd array length.
    let mut request = Vec::new();
    ClientSession::default().request(&[0, 0], &mut request);
    rx(&mut server, &request).expect("ping");
    let call = batch_call(&events());
    assert!(rx(&mut server, &call[..call.len() - 2]).is_err());
    let mut absurd = Vec::new();
    write(&SCHEMAS.meta, Value::Map(HashMap::new()), &mut absurd);
    write(
        &SCHEMAS.string,
        Value::String("appendBatch".into()),
        &mut absurd,
    );
    absurd.extend([0xfe, 0xff, 0xff, 0xff, 0x0f]); // an array of 2^31 - 1 items
    assert!(rx(&mut server, &absurd).is_err());
    let mut client = ClientSession::default();
    assert!(client.response(b"\x08").is_err(), "no such match");
}
