use super::*;
use proptest::prelude::*;

fn parse(buf: &[u8]) -> String {
    let mut headers = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
    match parse_request(buf, &mut headers) {
        RequestParse::Partial => "partial".into(),
        RequestParse::Unsupported => "hyper".into(),
        RequestParse::Malformed => "400".into(),
        RequestParse::Ready(r) => format!(
            "{} {} host={} head={} body={} close={}",
            r.method, r.target, r.host, r.head_len, r.body_len, r.close
        ),
    }
}

#[test]
fn plain_requests_take_the_fast_path() {
    let get = b"GET /a?b=c HTTP/1.1\r\nHost: x:8080\r\nConnection: keep-alive\r\n\r\n";
    assert_eq!(
        parse(get),
        format!(
            "GET /a?b=c host=x:8080 head={} body=0 close=false",
            get.len()
        )
    );
    let post = b"POST /p HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc";
    assert_eq!(
        parse(post),
        format!("POST /p host=x head={} body=3 close=true", post.len() - 3)
    );
}

#[test]
fn incomplete_heads_wait_for_more() {
    assert_eq!(parse(b""), "partial");
    assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), "partial");
}

#[test]
fn unusual_requests_go_to_hyper() {
    for raw in [
        &b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: x-secret\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    ] {
        assert_eq!(parse(raw), "hyper", "{}", String::from_utf8_lossy(raw));
    }
    for raw in [
        &b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
    ] {
        assert_eq!(parse(raw), "400", "{}", String::from_utf8_lossy(raw));
    }
    let huge = format!("GET / HTTP/1.1\r\nHost: x\r\nA: {}", "a".repeat(MAX_HEAD));
    assert_eq!(parse(huge.as_bytes()), "hyper");
}

fn rewritten(raw: &[u8]) -> String {
    let mut headers = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
    let RequestParse::Ready(req) = parse_request(raw, &mut headers) else {
        panic!("not fast-path: {}", String::from_utf8_lossy(raw));
    };
    let mut out = Vec::new();
    write_request_head(&mut out, &req, b"10.0.0.9", b"80");
    String::from_utf8(out).expect("ascii")
}

#[test]
fn request_heads_lose_hop_by_hop_headers_and_gain_forwarding_ones() {
    let out = rewritten(
        b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\nTE: trailers\r\n\
          X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 1\r\nAccept: */*\r\n\r\n",
    );
    assert_eq!(
        out,
        "GET /x HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nX-Forwarded-For: 1.2.3.4, 10.0.0.9\r\n\
         X-Forwarded-Proto: http\r\nX-Forwarded-Port: 80\r\n\r\n"
    );
    let out = rewritten(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(out.contains("\r\nX-Forwarded-For: 10.0.0.9\r\n"), "{out}");
}

fn response(raw: &[u8], head_request: bool, client_close: bool) -> (ResponseParse, String) {
    let mut out = Vec::new();
    let parsed = parse_response(raw, head_request, client_close, false, b"", &mut out);
    (parsed, String::from_utf8_lossy(&out).into_owned())
}

fn ready(raw: &[u8]) -> ResponseHead {
    match response(raw, false, false).0 {
        ResponseParse::Ready(head) => head,
        other => panic!("{other:?}"),
    }
}

#[test]
fn response_framing_follows_rfc_9112() {
    assert_eq!(
        ready(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").body,
        Body::Length(5)
    );
    assert_eq!(
        ready(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n")
            .body,
        Body::Chunked
    );
    let close = ready(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
    assert_eq!(
        (close.body, close.reusable, close.close_client),
        (Body::UntilClose, false, true)
    );
    let bare = ready(b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!((bare.body, bare.reusable), (Body::UntilClose, false));
    assert_eq!(ready(b"HTTP/1.1 204 No Content\r\n\r\n").body, Body::Empty);
    assert_eq!(
        ready(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").body,
        Body::Empty
    );
    let (head, _) = response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true, false);
    assert!(matches!(
        head,
        ResponseParse::Ready(ResponseHead {
            body: Body::Empty,
            ..
        })
    ));
    assert!(!ready(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").reusable);
    assert!(!ready(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").reusable);
    assert!(
        ready(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").reusable
    );
}

#[test]
fn interim_and_bad_responses_are_told_apart() {
    let continue_ = b"HTTP/1.1 100 Continue\r\n\r\n";
    assert_eq!(
        response(continue_, false, false).0,
        ResponseParse::Interim(continue_.len())
    );
    for raw in [
        &b"HTTP/1.1 101 Switching Protocols\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"garbage\r\n\r\n",
    ] {
        assert_eq!(
            response(raw, false, false).0,
            ResponseParse::Invalid,
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
    assert_eq!(
        response(b"HTTP/1.1 200 OK\r\n", false, false).0,
        ResponseParse::Partial
    );
}

#[test]
fn response_heads_are_rewritten_for_the_client() {
    let (_, out) = response(
        b"HTTP/1.1 200 Fine\r\nConnection: keep-alive, x-internal\r\nX-Internal: 1\r\nKeep-Alive: 5\r\n\
          Transfer-Encoding: chunked\r\nContent-Length: 3\r\nTrailer: x-sum\r\nX-App: a\r\n\r\n",
        false,
        true,
    );
    assert_eq!(
        out,
        "HTTP/1.1 200 Fine\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\nX-App: a\r\n\
         Connection: close\r\n\r\n"
    );
}

#[test]
fn extra_header_lines_follow_the_targets_own() {
    let mut out = Vec::new();
    let parsed = parse_response(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: app=1\r\nContent-Length: 0\r\n\r\n",
        false,
        true,
        false,
        b"Set-Cookie: AWSALB=t\r\n",
        &mut out,
    );
    assert!(matches!(parsed, ResponseParse::Ready(_)), "{parsed:?}");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "HTTP/1.1 200 OK\r\nSet-Cookie: app=1\r\nContent-Length: 0\r\nSet-Cookie: AWSALB=t\r\n\
         Connection: close\r\n\r\n"
    );
    // Nothing is written for an interim head, extra or not.
    let mut out = Vec::new();
    let interim = parse_response(
        b"HTTP/1.1 100 Continue\r\n\r\n",
        false,
        false,
        false,
        b"X: 1\r\n",
        &mut out,
    );
    assert_eq!((interim, out.len()), (ResponseParse::Interim(25), 0));
}

#[test]
fn chunked_end_is_found_with_extensions_and_trailers() {
    let body = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Sum: 1\r\n\r\nNEXT";
    let mut scanner = ChunkedScanner::default();
    assert_eq!(scanner.scan(body), Ok(Some(body.len() - 4)));
    for bad in [
        &b"x\r\n"[..],
        b"4\r\nWikiX",
        b"0\r\nbad\n",
        b"\r\n",
        b"1234567890abcdef0\r\n",
    ] {
        let mut scanner = ChunkedScanner::default();
        assert_eq!(
            scanner.scan(bad),
            Err(ChunkedError),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

fn encode(chunks: &[Vec<u8>], trailers: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks.iter().filter(|c| !c.is_empty()) {
        out.extend_from_slice(format!("{:X}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    for t in trailers {
        out.extend_from_slice(format!("X-{t}: v\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

proptest! {
    /// However a valid chunked body is split into reads, its end is found exactly where
    /// it is, and never before.
    #[test]
    fn chunked_end_is_found_exactly_across_any_split(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6),
        trailers in prop::collection::vec("[a-z]{1,8}", 0..3),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        tail in prop::collection::vec(any::<u8>(), 0..10),
    ) {
        let encoded = encode(&chunks, &trailers);
        let mut stream = encoded.clone();
        stream.extend_from_slice(&tail);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        points.dedup();
        let mut scanner = ChunkedScanner::default();
        let mut found = None;
        for pair in points.windows(2) {
            let piece = &stream[pair[0]..pair[1]];
            if let Some(end) = scanner.scan(piece).expect("valid body") {
                found = Some(pair[0] + end);
                break;
            }
        }
        prop_assert_eq!(found, Some(encoded.len()));
    }

    /// Arbitrary bytes never make the parsers panic, and a fast-path request never
    /// claims more head than it was given.
    #[test]
    fn parsers_take_any_bytes(raw in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
        if let RequestParse::Ready(req) = parse_request(&raw, &mut headers) {
            prop_assert!(req.head_len <= raw.len());
        }
        let mut out = Vec::new();
        let _ = parse_response(&raw, false, false, true, b"", &mut out);
        let _ = ChunkedScanner::default().scan(&raw);
    }
}

#[test]
fn websocket_handshakes_keep_their_upgrade_both_ways() {
    let raw = b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let out = rewritten(raw);
    assert_eq!(
        out,
        "GET /chat HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         X-Forwarded-For: 10.0.0.9\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 80\r\n\r\n"
    );
    let switched =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    let mut out = Vec::new();
    let parsed = parse_response(switched, false, false, true, b"", &mut out);
    assert!(
        matches!(
            parsed,
            ResponseParse::Ready(ResponseHead {
                status: 101,
                body: Body::Tunnel,
                reusable: false,
                ..
            })
        ),
        "{parsed:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nConnection: Upgrade\r\n\r\n"
    );
    // A 101 nobody asked for is a broken target.
    assert_eq!(
        parse_response(switched, false, false, false, b"", &mut Vec::new()),
        ResponseParse::Invalid
    );
}
