//! Arbitrary bytes as a client's request head, a target's response head and a chunked
//! body, through the load balancer's HTTP/1.1 fast-path framing: it must never panic,
//! a head it takes must lie within the input, and a rewritten head must parse again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lb::framing::{self, ChunkedScanner, RequestParse, ResponseParse};

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; framing::MAX_REQUEST_HEADERS];
    if let RequestParse::Ready(req) = framing::parse_request(data, &mut headers) {
        assert!(req.head_len <= data.len());
        let mut out = Vec::new();
        framing::write_request_head(&mut out, &req, b"192.0.2.1", b"80");
        let mut again = [httparse::EMPTY_HEADER; framing::MAX_REQUEST_HEADERS + 3];
        let parsed = httparse::Request::new(&mut again).parse(&out);
        assert!(matches!(parsed, Ok(httparse::Status::Complete(n)) if n == out.len()));
    }
    let mut out = Vec::new();
    // Extra lines as the load balancer adds them (its stickiness cookies).
    let extra = b"Set-Cookie: AWSALB=0; Path=/\r\nSet-Cookie: AWSALBCORS=0; Path=/\r\n";
    if let ResponseParse::Ready(head) = framing::parse_response(data, false, false, true, extra, &mut out) {
        assert!(head.head_len <= data.len());
        let mut again = [httparse::EMPTY_HEADER; framing::MAX_RESPONSE_HEADERS + 3];
        let parsed = httparse::Response::new(&mut again).parse(&out);
        assert!(matches!(parsed, Ok(httparse::Status::Complete(n)) if n == out.len()));
    }
    let mut scanner = ChunkedScanner::default();
    if let Ok(Some(end)) = scanner.scan(data) {
        assert!(end <= data.len());
    }
});
