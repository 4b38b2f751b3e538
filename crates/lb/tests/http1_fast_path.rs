//! The HTTP/1.1 fast path end to end, against a scripted raw-socket target whose every
//! byte is chosen: each response framing (length over many reads, chunked with
//! extensions and trailers, until-close, HEAD), interim responses, pooled connections the
//! target closed, pipelining, request bodies, and requests handed to hyper mid-connection.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use lb::framing::ChunkedScanner;
use model::lb::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A target that answers by path with exact bytes:
/// `/length/N` N bytes of `x`; `/chunked` a chunked body with an extension and a trailer;
/// `/close` a body delimited by closing; `/early` a 103 before the 200; `/once` answers
/// then closes the connection without saying so; `/echo` answers with what the request
/// carried (`cl:<body>` or `chunked:<raw length>`); `/ws` accepts a WebSocket upgrade,
/// greets with `hi`, then echoes every byte upper-cased (plain 200 without an upgrade).
struct Scripted {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    async fn start() -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                conns.spawn(serve_scripted(stream));
            }
        });
        Scripted {
            addr,
            connections,
            task,
        }
    }

    fn target(&self) -> Target {
        Target {
            key: TargetKey {
                id: "scripted".into(),
                port: self.addr.port(),
            },
            host: "127.0.0.1".into(),
            draining: false,
        }
    }
}

async fn serve_scripted(mut stream: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let (head_len, path, method, body_len, chunked, upgrade) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
                let header = |name: &str| {
                    req.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).into_owned())
                };
                let length = header("content-length").and_then(|v| v.parse().ok());
                let chunked = header("transfer-encoding").is_some();
                let upgrade = header("upgrade").is_some_and(|v| v == "websocket")
                    && header("connection").is_some_and(|v| v.eq_ignore_ascii_case("upgrade"));
                break (
                    n,
                    req.path.unwrap_or("/").to_owned(),
                    req.method.unwrap_or("GET").to_owned(),
                    length.unwrap_or(0),
                    chunked,
                    upgrade,
                );
            }
            if !read_more(&mut stream, &mut buf).await {
                return;
            }
        };
        // The body: by length, or by the chunked framing's end.
        let body_end = if chunked {
            let mut scanner = ChunkedScanner::default();
            let mut scanned = head_len;
            loop {
                match scanner.scan(&buf[scanned..]).expect("valid chunked body") {
                    Some(end) => break scanned + end,
                    None => {
                        scanned = buf.len();
                        if !read_more(&mut stream, &mut buf).await {
                            return;
                        }
                    }
                }
            }
        } else {
            while buf.len() < head_len + body_len {
                if !read_more(&mut stream, &mut buf).await {
                    return;
                }
            }
            head_len + body_len
        };
        let body: Vec<u8> = buf[head_len..body_end].to_vec();
        buf.drain(..body_end);
        if path == "/ws" && upgrade {
            let hello = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhi";
            if stream.write_all(hello).await.is_err() {
                return;
            }
            let mut pending = buf.clone();
            loop {
                if !pending.is_empty() {
                    let upper = pending.to_ascii_uppercase();
                    if stream.write_all(&upper).await.is_err() {
                        return;
                    }
                    pending.clear();
                }
                if !read_more(&mut stream, &mut pending).await {
                    return;
                }
            }
        }
        let (response, close): (Vec<u8>, bool) = match path.as_str() {
            "/ws" => (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nno upgrade".to_vec(),
                false,
            ),
            p if p.starts_with("/length/") => {
                let n: usize = p["/length/".len()..].parse().unwrap_or(0);
                let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n").into_bytes();
                if method != "HEAD" {
                    r.extend(std::iter::repeat_n(b'x', n));
                }
                (r, false)
            }
            "/chunked" => (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n\
                  5;note=1\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 11\r\n\r\n"
                    .to_vec(),
                false,
            ),
            "/close" => (b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec(), true),
            "/early" => (
                b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
                  HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                    .to_vec(),
                false,
            ),
            "/once" => (
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nonce".to_vec(),
                true,
            ),
            "/echo" => {
                let said = if chunked {
                    format!("chunked:{}", body.len()).into_bytes()
                } else {
                    [b"cl:".as_slice(), &body].concat()
                };
                let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", said.len())
                    .into_bytes();
                r.extend_from_slice(&said);
                (r, false)
            }
            _ => (
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                false,
            ),
        };
        if stream.write_all(&response).await.is_err() || close {
            return;
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(n) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        _ => false,
    }
}

/// A raw client response: status, headers (lower-case names), body.
struct RawReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response off a raw client connection: by Content-Length, chunked (body
/// returned still encoded), or until close.
async fn read_reply(stream: &mut TcpStream, buf: &mut Vec<u8>, head: bool) -> RawReply {
    tokio::time::timeout(LIMIT, async {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(n)) = resp.parse(buf) {
                let status = resp.code.expect("status");
                let headers: Vec<(String, String)> = resp
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let find = |name: &str| {
                    headers
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                };
                let end = if head {
                    n
                } else if find("transfer-encoding").is_some() {
                    let mut scanner = ChunkedScanner::default();
                    let mut scanned = n;
                    loop {
                        if let Some(end) = scanner.scan(&buf[scanned..]).expect("chunked") {
                            break scanned + end;
                        }
                        scanned = buf.len();
                        assert!(read_more(stream, buf).await, "connection closed mid-body");
                    }
                } else if let Some(len) = find("content-length") {
                    let len: usize = len.parse().expect("length");
                    while buf.len() < n + len {
                        assert!(read_more(stream, buf).await, "connection closed mid-body");
                    }
                    n + len
                } else {
                    while read_more(stream, buf).await {}
                    buf.len()
                };
                let body = buf[n..end].to_vec();
                buf.drain(..end);
                return RawReply {
                    status,
                    headers,
                    body,
                };
            }
            assert!(
                read_more(stream, buf).await,
                "connection closed before a response"
            );
        }
    })
    .await
    .expect("reply in time")
}

/// Sends `request` and reads its reply (`head`: the request is a HEAD).
async fn ask(client: &mut TcpStream, buf: &mut Vec<u8>, request: &[u8], head: bool) -> RawReply {
    client.write_all(request).await.expect("write");
    read_reply(client, buf, head).await
}

async fn start_lb(target: &Scripted) -> (Running, SocketAddr) {
    start_lb_idle(target, DEFAULT_IDLE_TIMEOUT).await
}

async fn start_lb_idle(target: &Scripted, idle: Duration) -> (Running, SocketAddr) {
    let mut config = alb(
        vec![],
        vec![forward("tg")],
        vec![group(
            "tg",
            vec![target.target()],
            Algorithm::RoundRobin,
            health_check(false),
        )],
    );
    config.load_balancers[0].idle_timeout = idle;
    let lb = Running::start(config).await;
    let addr = lb.addr(LISTENER);
    (lb, addr)
}

#[tokio::test]
async fn every_response_framing_passes_through_intact_on_one_connection() {
    let target = Scripted::start().await;
    let (_lb, addr) = start_lb(&target).await;
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let mut buf = Vec::new();
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: app\r\n\r\n");

    // A body far larger than one read, then a chunked one: trailers and extensions
    // arrive as sent.
    let r = ask(
        &mut client,
        &mut buf,
        get("/length/300000").as_bytes(),
        false,
    )
    .await;
    assert_eq!((r.status, r.body.len()), (200, 300_000));
    assert!(r.body.iter().all(|&b| b == b'x'));
    let r = ask(&mut client, &mut buf, get("/chunked").as_bytes(), false).await;
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "5;note=1\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 11\r\n\r\n"
    );
    // HEAD: the length is told, no body follows, and the connection stays in step.
    let r = ask(
        &mut client,
        &mut buf,
        b"HEAD /length/7 HTTP/1.1\r\nHost: app\r\n\r\n",
        true,
    )
    .await;
    assert_eq!((r.status, r.header("content-length")), (200, Some("7")));
    // An interim 103 is dropped; the final answer follows.
    let r = ask(&mut client, &mut buf, get("/early").as_bytes(), false).await;
    assert_eq!((r.status, r.body.as_slice()), (200, b"ok".as_slice()));
    // Until-close: the client is told the connection ends, and it does.
    let r = ask(&mut client, &mut buf, get("/close").as_bytes(), false).await;
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.body, b"until the end");
    let mut rest = [0u8; 16];
    let n = tokio::time::timeout(LIMIT, client.read(&mut rest))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(
        n, 0,
        "the client connection is closed after an until-close body"
    );
}

#[tokio::test]
async fn a_pooled_connection_the_target_closed_is_not_an_error() {
    let target = Scripted::start().await;
    let (_lb, addr) = start_lb(&target).await;
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let mut buf = Vec::new();
    for (round, method) in ["GET", "POST", "GET", "DELETE", "POST"].iter().enumerate() {
        let req = format!("{method} /once HTTP/1.1\r\nHost: app\r\nContent-Length: 0\r\n\r\n");
        client.write_all(req.as_bytes()).await.expect("write");
        let r = read_reply(&mut client, &mut buf, false).await;
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, b"once".as_slice()),
            "round {round}: {method}"
        );
        // Let the target's FIN reach the pooled connection.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(target.connections.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn pipelined_requests_bodies_and_requests_for_hyper_share_a_connection() {
    let target = Scripted::start().await;
    let (_lb, addr) = start_lb(&target).await;
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let mut buf = Vec::new();
    // Three requests in one write, one with a body: answered in order.
    client
        .write_all(
            b"GET /length/3 HTTP/1.1\r\nHost: app\r\n\r\n\
              POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\n\r\nhello\
              GET /length/4 HTTP/1.1\r\nHost: app\r\n\r\n",
        )
        .await
        .expect("write");
    let bodies: Vec<Vec<u8>> = [
        read_reply(&mut client, &mut buf, false).await,
        read_reply(&mut client, &mut buf, false).await,
        read_reply(&mut client, &mut buf, false).await,
    ]
    .into_iter()
    .map(|r| r.body)
    .collect();
    assert_eq!(
        bodies,
        vec![b"xxx".to_vec(), b"cl:hello".to_vec(), b"xxxx".to_vec()]
    );
    // A body sent in pieces, slower than the head.
    client
        .write_all(b"POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 11\r\n\r\nhello")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.write_all(b" world").await.expect("write");
    let r = read_reply(&mut client, &mut buf, false).await;
    assert_eq!(r.body, b"cl:hello world");
    // A chunked request body is hyper's to carry; the connection goes on with it.
    let r = ask(
        &mut client,
        &mut buf,
        b"POST /echo HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n0\r\n\r\n",
        false,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.starts_with(b"chunked:"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = ask(
        &mut client,
        &mut buf,
        b"GET /length/2 HTTP/1.1\r\nHost: app\r\n\r\n",
        false,
    )
    .await;
    assert_eq!(r.body, b"xx");
}

#[tokio::test]
async fn http_1_0_goes_to_hyper_and_malformed_requests_get_400() {
    let target = Scripted::start().await;
    let (_lb, addr) = start_lb(&target).await;
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let mut buf = Vec::new();
    let r = ask(
        &mut client,
        &mut buf,
        b"GET /length/3 HTTP/1.0\r\nHost: app\r\n\r\n",
        false,
    )
    .await;
    assert_eq!((r.status, r.body.as_slice()), (200, b"xxx".as_slice()));
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let mut buf = Vec::new();
    let r = ask(
        &mut client,
        &mut buf,
        b"GET /\x01 HTTP/1.1\r\nHost: app\r\n\r\n",
        false,
    )
    .await;
    assert_eq!((r.status, r.header("connection")), (400, Some("close")));
}

#[tokio::test]
async fn a_websocket_handshake_becomes_a_tunnel_both_ways() {
    let target = Scripted::start().await;
    let (_lb, addr) = start_lb(&target).await;
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let mut buf = Vec::new();
    // Without an upgrade the path is a plain request, and the connection goes on.
    let r = ask(
        &mut client,
        &mut buf,
        b"GET /ws HTTP/1.1\r\nHost: app\r\n\r\n",
        false,
    )
    .await;
    assert_eq!(r.body, b"no upgrade");
    // The handshake, with the first bytes of the new protocol in the same write.
    client
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Version: 13\r\n\r\nearly ",
        )
        .await
        .expect("write");
    let switched = tokio::time::timeout(LIMIT, async {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut resp = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(n)) = resp.parse(&buf) {
                let upgrade = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("upgrade"))
                    .map(|h| h.value.to_vec());
                let status = resp.code;
                buf.drain(..n);
                return (status, upgrade);
            }
            assert!(read_more(&mut client, &mut buf).await, "closed before 101");
        }
    })
    .await
    .expect("101 in time");
    assert_eq!(switched, (Some(101), Some(b"websocket".to_vec())));
    // The target's greeting and the echo of the early bytes.
    read_at_least(&mut client, &mut buf, 8).await;
    assert_eq!(buf, b"hiEARLY ");
    client.write_all(b"and more").await.expect("write");
    let mut rest = Vec::new();
    read_at_least(&mut client, &mut rest, 8).await;
    assert_eq!(rest, b"AND MORE");
}

/// Reads until `buf` holds at least `n` bytes; the tunnel must stay open meanwhile.
async fn read_at_least(stream: &mut TcpStream, buf: &mut Vec<u8>, n: usize) {
    tokio::time::timeout(LIMIT, async {
        while buf.len() < n {
            assert!(read_more(stream, buf).await, "tunnel closed early");
        }
    })
    .await
    .expect("tunnel bytes in time");
}

/// Reads until the peer closes; how long that took.
async fn closed_after(stream: &mut TcpStream) -> Duration {
    let start = std::time::Instant::now();
    let mut sink = Vec::new();
    tokio::time::timeout(LIMIT, async { while read_more(stream, &mut sink).await {} })
        .await
        .expect("closed in time");
    start.elapsed()
}

#[tokio::test]
async fn the_load_balancers_idle_timeout_closes_idle_connections_and_tunnels() {
    let target = Scripted::start().await;
    let idle = Duration::from_secs(1);
    let (_lb, addr) = start_lb_idle(&target, idle).await;
    // A keep-alive connection with nothing more to say.
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let mut buf = Vec::new();
    ask(
        &mut client,
        &mut buf,
        b"GET /ws HTTP/1.1\r\nHost: app\r\n\r\n",
        false,
    )
    .await;
    let waited = closed_after(&mut client).await;
    assert!(waited >= idle - Duration::from_millis(100), "{waited:?}");

    // A tunnel stays open while data moves, whichever way, and closes once idle.
    let mut client = TcpStream::connect(addr).await.expect("connect");
    client
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        )
        .await
        .expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(LIMIT, async {
        while !buf.ends_with(b"\r\n\r\nhi") {
            assert!(read_more(&mut client, &mut buf).await, "closed before 101");
        }
    })
    .await
    .expect("switched in time");
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        client.write_all(b"ping").await.expect("tunnel open");
        let mut echo = Vec::new();
        read_at_least(&mut client, &mut echo, 4).await;
        assert_eq!(echo, b"PING");
    }
    let waited = closed_after(&mut client).await;
    assert!(
        waited >= idle - Duration::from_millis(100) && waited < idle * 3,
        "{waited:?}"
    );
}
