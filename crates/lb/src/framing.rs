//! HTTP/1.1 message framing for the forwarding fast path, as pure functions over bytes:
//! which client requests the fast path carries (everything else is left to hyper), how a
//! request head is rewritten for a target, how a target's response head is rewritten for
//! the client and how its body is delimited, and where a chunked body ends.
//!
//! Why this exists next to hyper: hyper's client hands each request to a separate
//! connection task and back, two task switches and channel hand-offs per request, which
//! left the balancer at ~0.9× nginx's throughput. The fast path parses a head once with
//! httparse (the parser hyper itself uses), copies header bytes, and passes bodies through
//! untouched on the client connection's own task. It only has to be right for the plain
//! case: HTTP/1.0, request bodies that are chunked or large, `Expect`, upgrades other
//! than WebSocket and absolute-form targets go to hyper before a byte is consumed.

use httparse::{Header, Status};

/// Request headers the fast path parses; more go to hyper (which allows 100).
pub const MAX_REQUEST_HEADERS: usize = 64;
/// Response headers accepted from a target; more is a 502.
pub const MAX_RESPONSE_HEADERS: usize = 128;
/// The largest head the fast path waits for; a longer one goes to hyper (request) or is a
/// 502 (response).
pub const MAX_HEAD: usize = 64 * 1024;
/// Request bodies up to this size are read whole before forwarding (so a request can be
/// retried on a fresh connection); larger ones go to hyper, which streams them.
pub const MAX_BUFFERED_BODY: usize = 1 << 20;

/// A client request the fast path can forward.
#[derive(Debug)]
pub struct Request<'h, 'b> {
    /// The method, as sent.
    pub method: &'b str,
    /// The origin-form target: path and query.
    pub target: &'b str,
    /// The `Host` header's value (with any port).
    pub host: &'b str,
    /// Every header as sent.
    pub headers: &'h [Header<'b>],
    /// Bytes of head, including the blank line.
    pub head_len: usize,
    /// Bytes of body (`Content-Length`, 0 without one).
    pub body_len: usize,
    /// The client asked to close the connection after this exchange.
    pub close: bool,
    /// A WebSocket handshake: the `Upgrade` header's value, passed on to the target.
    pub upgrade: Option<&'b [u8]>,
}

impl Request<'_, '_> {
    /// The path, without the query string.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(self.target, |(p, _)| p)
    }

    /// The query string, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// Whether a failed attempt may be sent again (RFC 9110 §9.2.2).
    pub fn idempotent(&self) -> bool {
        matches!(
            self.method,
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        )
    }
}

/// What the bytes buffered from a client hold.
#[derive(Debug)]
pub enum RequestParse<'h, 'b> {
    /// Not a whole head yet: read more.
    Partial,
    /// A head the fast path forwards.
    Ready(Request<'h, 'b>),
    /// Something for hyper: unusual, or a head too large to wait for here.
    Unsupported,
    /// Not HTTP: the client gets a 400 and the connection closes, as with ALB.
    Malformed,
}

fn is(name: &str, lower: &str) -> bool {
    name.eq_ignore_ascii_case(lower)
}

/// Headers that concern one connection only and are never forwarded.
fn hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ]
    .iter()
    .any(|h| is(name, h))
}

fn tokens(value: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(|t| t.trim_ascii())
}

/// A `Content-Length` value: digits only, no sign, no list.
fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Parses the head at the start of `buf` and decides whether the fast path takes it.
pub fn parse_request<'h, 'b>(buf: &'b [u8], headers: &'h mut [Header<'b>]) -> RequestParse<'h, 'b> {
    let mut parsed = httparse::Request::new(headers);
    let head_len = match parsed.parse(buf) {
        Ok(Status::Complete(n)) => n,
        Ok(Status::Partial) if buf.len() <= MAX_HEAD => return RequestParse::Partial,
        Ok(Status::Partial) => return RequestParse::Unsupported,
        Err(_) => return RequestParse::Malformed,
    };
    let (Some(method), Some(target), Some(1)) = (parsed.method, parsed.path, parsed.version) else {
        return RequestParse::Unsupported;
    };
    if method == "CONNECT" || !target.starts_with('/') {
        return RequestParse::Unsupported;
    }
    let headers: &'h [Header<'b>] = parsed.headers;
    let (mut host, mut body_len, mut close) = (None, None, false);
    let (mut upgrade, mut upgrade_token) = (None, false);
    for h in headers {
        let name = h.name;
        if is(name, "content-length") {
            match (body_len, content_length(h.value)) {
                (None, Some(n)) if n <= MAX_BUFFERED_BODY as u64 => body_len = Some(n as usize),
                _ => return RequestParse::Unsupported,
            }
        } else if is(name, "host") {
            match (host, std::str::from_utf8(h.value)) {
                (None, Ok(value)) => host = Some(value),
                _ => return RequestParse::Unsupported,
            }
        } else if is(name, "connection") {
            for token in tokens(h.value) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    upgrade_token = true;
                } else if !token.eq_ignore_ascii_case(b"keep-alive") && !token.is_empty() {
                    // It names other headers to drop: hyper's path does that.
                    return RequestParse::Unsupported;
                }
            }
        } else if is(name, "upgrade") {
            if upgrade.replace(h.value).is_some() {
                return RequestParse::Unsupported;
            }
        } else if is(name, "transfer-encoding") || is(name, "expect") {
            return RequestParse::Unsupported;
        }
    }
    let Some(host) = host else {
        return RequestParse::Unsupported;
    };
    // Like ALB, only WebSocket is tunnelled (a GET without a body, RFC 6455 §4.1); other
    // upgrades go to hyper, which serves them as plain requests.
    let upgrade = match upgrade {
        None => None,
        Some(value)
            if upgrade_token
                && method == "GET"
                && body_len.unwrap_or(0) == 0
                && tokens(value).any(|t| t.eq_ignore_ascii_case(b"websocket")) =>
        {
            Some(value)
        }
        Some(_) => return RequestParse::Unsupported,
    };
    RequestParse::Ready(Request {
        method,
        target,
        host,
        headers,
        head_len,
        body_len: body_len.unwrap_or(0),
        close,
        upgrade,
    })
}

/// Writes the head sent to a target: the request line and headers as received, less the
/// hop-by-hop ones, with `X-Forwarded-For` (the client's address appended to any value
/// already there), `X-Forwarded-Proto` and `X-Forwarded-Port` set; a WebSocket
/// handshake keeps its `Upgrade` and `Connection: Upgrade`.
pub fn write_request_head(out: &mut Vec<u8>, req: &Request<'_, '_>, peer: &[u8], port: &[u8]) {
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut forwarded_for: Option<&[u8]> = None;
    for h in req.headers {
        let name = h.name;
        if hop_by_hop(name) || is(name, "x-forwarded-proto") || is(name, "x-forwarded-port") {
            continue;
        }
        if is(name, "x-forwarded-for") {
            forwarded_for = forwarded_for.or(Some(h.value));
            continue;
        }
        push_header(out, name.as_bytes(), h.value);
    }
    if let Some(protocol) = req.upgrade {
        push_header(out, b"Upgrade", protocol);
        out.extend_from_slice(b"Connection: Upgrade\r\n");
    }
    out.extend_from_slice(b"X-Forwarded-For: ");
    if let Some(previous) = forwarded_for {
        out.extend_from_slice(previous);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(peer);
    out.extend_from_slice(b"\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: ");
    out.extend_from_slice(port);
    out.extend_from_slice(b"\r\n\r\n");
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// No body (HEAD, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked: ends where [`ChunkedScanner`] says.
    Chunked,
    /// Until the target closes the connection.
    UntilClose,
    /// The target switched protocols (WebSocket): bytes flow both ways until either
    /// side closes.
    Tunnel,
}

/// A target's final response head, ready for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// Bytes of head in the target's buffer.
    pub head_len: usize,
    /// The status code.
    pub status: u16,
    /// How the body that follows is delimited.
    pub body: Body,
    /// The target's connection can carry another request after this body.
    pub reusable: bool,
    /// The client connection must close after this response.
    pub close_client: bool,
}

/// What the bytes buffered from a target hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseParse {
    /// Not a whole head yet: read more.
    Partial,
    /// An interim (1xx) head of this many bytes, which is dropped: the fast path never
    /// sends `Expect`, so none is owed to the client (101 is final: see [`Body::Tunnel`]).
    Interim(usize),
    /// A final head; its rewritten form was written out.
    Ready(ResponseHead),
    /// Not a response the balancer can pass on (→ 502).
    Invalid,
}

/// Parses a target's response head at the start of `buf` and, when it is a final one,
/// writes the client's version of it to `out`: hop-by-hop headers (and those `Connection`
/// names) removed, `Content-Length` dropped when `Transfer-Encoding` is present, `extra`
/// (whole header lines the load balancer adds, each ending in CRLF, such as its
/// stickiness cookies; usually empty) after the target's headers, and
/// `Connection: close` added when the client connection is to end. A 101 is accepted
/// only as the answer to a WebSocket handshake (`upgrade`), and keeps its `Upgrade`.
pub fn parse_response(
    buf: &[u8],
    head_request: bool,
    client_close: bool,
    upgrade: bool,
    extra: &[u8],
    out: &mut Vec<u8>,
) -> ResponseParse {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(Status::Complete(n)) => n,
        Ok(Status::Partial) if buf.len() <= MAX_HEAD => return ResponseParse::Partial,
        Ok(Status::Partial) | Err(_) => return ResponseParse::Invalid,
    };
    let (Some(version), Some(status)) = (parsed.version, parsed.code) else {
        return ResponseParse::Invalid;
    };
    let switching = match status {
        101 if upgrade => true,
        101 => return ResponseParse::Invalid,
        100..=199 => return ResponseParse::Interim(head_len),
        _ => false,
    };
    let headers: &[Header<'_>] = parsed.headers;
    let mut keep_alive = version == 1;
    let mut listed: Vec<&[u8]> = Vec::new();
    let (mut length, mut transfer_encoding, mut chunked) = (None, false, false);
    for h in headers {
        let name = h.name;
        if is(name, "connection") {
            for token in tokens(h.value) {
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                } else if !token.is_empty() && !token.eq_ignore_ascii_case(b"upgrade") {
                    // (`Upgrade` is hop-by-hop anyway, and kept only by a 101.)
                    listed.push(token);
                }
            }
        } else if is(name, "transfer-encoding") {
            transfer_encoding = true;
            // Chunked must be the final coding; checked on the last value seen.
            chunked = tokens(h.value)
                .next_back()
                .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
        } else if is(name, "content-length") {
            match (length, content_length(h.value)) {
                (None, Some(n)) => length = Some(n),
                (Some(a), Some(b)) if a == b => {}
                _ => return ResponseParse::Invalid,
            }
        }
    }
    let body = if switching {
        Body::Tunnel
    } else if head_request || status == 204 || status == 304 {
        Body::Empty
    } else if transfer_encoding {
        if chunked {
            Body::Chunked
        } else {
            Body::UntilClose
        }
    } else {
        length.map_or(Body::UntilClose, Body::Length)
    };
    let reusable = keep_alive && !matches!(body, Body::UntilClose | Body::Tunnel);
    let close_client = client_close || body == Body::UntilClose;
    let reason = parsed.reason.unwrap_or("");
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa3(status).as_slice());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in headers {
        let name = h.name;
        let kept = is(name, "trailer") || (switching && is(name, "upgrade"));
        let dropped = (hop_by_hop(name) && !kept)
            || (transfer_encoding && is(name, "content-length"))
            || listed
                .iter()
                .any(|l| l.eq_ignore_ascii_case(name.as_bytes()));
        if !dropped {
            push_header(out, name.as_bytes(), h.value);
        }
    }
    out.extend_from_slice(extra);
    if switching {
        out.extend_from_slice(b"Connection: Upgrade\r\n");
    } else if close_client {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    ResponseParse::Ready(ResponseHead {
        head_len,
        status,
        body,
        reusable,
        close_client,
    })
}

/// A status code as three digits (httparse only accepts three-digit codes).
fn itoa3(status: u16) -> [u8; 3] {
    let s = status.min(999);
    [
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ]
}

/// A chunked body that does not follow RFC 9112 §7.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct ChunkedError;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Chunk {
    #[default]
    Size,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// Finds where a chunked body ends while its bytes pass through unchanged: fed the body
/// piece by piece, it says at which offset of a piece the body (last chunk and trailers
/// included) is complete.
#[derive(Clone, Debug, Default)]
pub struct ChunkedScanner {
    state: Chunk,
    /// While in `Size`: the size read so far (and its digit count); in `Data`: what is
    /// left of the chunk.
    size: u64,
    digits: u8,
}

impl ChunkedScanner {
    /// Consumes `data`; `Ok(Some(n))` when the body ends after `data[..n]` (bytes after
    /// it belong to whatever follows), `Ok(None)` when more is needed.
    pub fn scan(&mut self, data: &[u8]) -> Result<Option<usize>, ChunkedError> {
        let mut i = 0;
        while i < data.len() {
            if self.state == Chunk::Data {
                let take = self.size.min((data.len() - i) as u64);
                self.size -= take;
                i += take as usize;
                if self.size == 0 {
                    self.state = Chunk::DataCr;
                }
                continue;
            }
            let b = data[i];
            i += 1;
            self.state = match (self.state, b) {
                (Chunk::Size, b) if b.is_ascii_hexdigit() => {
                    if self.digits == 15 {
                        return Err(ChunkedError);
                    }
                    let digit = (b as char).to_digit(16).ok_or(ChunkedError)?;
                    self.size = self.size * 16 + u64::from(digit);
                    self.digits += 1;
                    Chunk::Size
                }
                (Chunk::Size, b';' | b' ' | b'\t') if self.digits > 0 => Chunk::Extension,
                (Chunk::Size, b'\r') if self.digits > 0 => Chunk::SizeLf,
                (Chunk::Extension, b'\r') => Chunk::SizeLf,
                (Chunk::Extension, b) if b != b'\n' => Chunk::Extension,
                (Chunk::SizeLf, b'\n') if self.size == 0 => Chunk::TrailerStart,
                (Chunk::SizeLf, b'\n') => Chunk::Data,
                (Chunk::DataCr, b'\r') => Chunk::DataLf,
                (Chunk::DataLf, b'\n') => {
                    self.digits = 0;
                    Chunk::Size
                }
                (Chunk::TrailerStart, b'\r') => Chunk::EndLf,
                (Chunk::TrailerStart | Chunk::TrailerLine, b) if b != b'\n' && b != b'\r' => {
                    Chunk::TrailerLine
                }
                (Chunk::TrailerLine, b'\r') => Chunk::TrailerLf,
                (Chunk::TrailerLf, b'\n') => Chunk::TrailerStart,
                (Chunk::EndLf, b'\n') => {
                    self.state = Chunk::Done;
                    return Ok(Some(i));
                }
                _ => return Err(ChunkedError),
            };
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests;
