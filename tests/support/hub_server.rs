//! A minimal local stand-in for `huggingface.co`, enough for the `hf-hub`
//! crate's sync API (`ApiRepo::get` / `download`).
//!
//! `hf-hub` 0.5 downloads a file in two requests to
//! `{endpoint}/{repo url}/resolve/{revision}/{filename}`:
//!
//! 1. a metadata probe, `GET` with `Range: bytes=0-0`, from which it needs
//!    `x-linked-etag` or `etag` (the blob name in the cache, quotes stripped),
//!    `x-repo-commit` (the snapshot directory) and `Content-Range` (the file
//!    size is the part after `/`); a missing header is an error;
//! 2. the download, `GET` with `Range: bytes=N-` (N = size of a partial file
//!    in the cache, usually 0), whose body is copied to the cache as is
//!    (neither the status nor the length is checked).
//!
//! Any 4xx/5xx status is an error on the client side.
//!
//! The server speaks HTTP/1.1 with keep-alive on `127.0.0.1`, serves every
//! connection on its own thread, and shuts down (closing the listener and all
//! connections) when the [`HubServer`] is dropped.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The commit every file is served at (`x-repo-commit`).
pub const COMMIT: &str = "77f3279092bd6b4f9a2a5a8f1d21b0e8b8a5d4c3";

/// How often blocked connection threads look at the stop flag.
const POLL: Duration = Duration::from_millis(20);
/// A connection without a request for this long is closed (ureq drops idle
/// pooled connections after 15 s, so this never races a reused connection).
const IDLE_LIMIT: Duration = Duration::from_secs(120);
/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;

struct Entry {
    data: Vec<u8>,
    /// SHA-256 of `data` in hex, like the hub's etag for LFS files.
    sha256: String,
}

struct State {
    files: HashMap<String, Entry>,
    log: Mutex<Vec<String>>,
    stop: AtomicBool,
}

/// A local HTTP server answering like `huggingface.co` for a fixed set of
/// files. Dropping it stops the server.
pub struct HubServer {
    /// `http://127.0.0.1:PORT`, to pass to `ApiBuilder::with_endpoint` or
    /// `HF_ENDPOINT`.
    pub endpoint: String,
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl HubServer {
    /// Starts serving `files`, given as (URL path, contents), e.g.
    /// `("/datasets/ylecun/mnist/resolve/main/mnist/train-00000-of-00001.parquet", bytes)`.
    /// Every other path answers 404 `EntryNotFound`.
    pub fn start(files: Vec<(String, Vec<u8>)>) -> Self {
        let files = files
            .into_iter()
            .map(|(path, data)| {
                let sha256 = hex(&sha256(&data));
                (path, Entry { data, sha256 })
            })
            .collect();
        let state = Arc::new(State {
            files,
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let accept_state = Arc::clone(&state);
        let accept = std::thread::Builder::new()
            .name("hub-server-accept".into())
            .spawn(move || accept_loop(listener, accept_state))
            .expect("spawn hub server thread");
        HubServer {
            endpoint: format!("http://{addr}"),
            addr,
            state,
            accept: Some(accept),
        }
    }

    /// Number of requests served so far (all paths, all methods).
    pub fn requests(&self) -> usize {
        self.state.log.lock().unwrap().len()
    }

    /// Every request served so far, in order, as `"METHOD /path"` (the
    /// request target as sent, query string included).
    pub fn request_log(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the loop sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let conn_state = Arc::clone(&state);
        if let Ok(worker) = std::thread::Builder::new()
            .name("hub-server-conn".into())
            .spawn(move || {
                let _ = serve_connection(stream, &conn_state);
            })
        {
            workers.push(worker);
        }
        workers.retain(|w| !w.is_finished());
    }
    drop(listener);
    for worker in workers {
        let _ = worker.join();
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    http10: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn wants_close(&self) -> bool {
        match self.header("connection") {
            Some(v) if v.eq_ignore_ascii_case("close") => true,
            Some(v) if v.eq_ignore_ascii_case("keep-alive") => false,
            _ => self.http10,
        }
    }
}

/// Serves requests on one connection until the client closes it, it idles
/// too long, or the server stops.
fn serve_connection(mut stream: TcpStream, state: &State) -> std::io::Result<()> {
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut last_activity = Instant::now();
    loop {
        // Serve every complete request already buffered.
        while let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let Some(request) = parse_head(&head) else {
                write_response(&mut stream, "400 Bad Request", &[], b"bad request\n", true)?;
                return Ok(());
            };
            let body_len: usize = request
                .header("content-length")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() < end + 4 + body_len {
                break; // wait for the request body (ignored)
            }
            buf.drain(..end + 4 + body_len);
            state
                .log
                .lock()
                .unwrap()
                .push(format!("{} {}", request.method, request.target));
            let close = request.wants_close();
            respond(&mut stream, state, &request, close)?;
            if close {
                let _ = stream.shutdown(Shutdown::Both);
                return Ok(());
            }
            last_activity = Instant::now();
        }
        if buf.len() > MAX_HEAD {
            write_response(&mut stream, "431 Request Header Fields Too Large", &[], b"", true)?;
            return Ok(());
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                last_activity = Instant::now();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if state.stop.load(Ordering::SeqCst) || last_activity.elapsed() > IDLE_LIMIT {
                    let _ = stream.shutdown(Shutdown::Both);
                    return Ok(());
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return None;
    }
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Request {
        method,
        target,
        headers,
        http10: version == "HTTP/1.0",
    })
}

fn respond(stream: &mut TcpStream, state: &State, request: &Request, close: bool) -> std::io::Result<()> {
    let head_only = request.method == "HEAD";
    if request.method != "GET" && !head_only {
        return write_response(
            stream,
            "405 Method Not Allowed",
            &[("allow", "GET, HEAD".into())],
            b"method not allowed\n",
            close,
        );
    }
    let path = request.target.split(['?', '#']).next().unwrap_or("");
    let entry = state.files.get(path).or_else(|| state.files.get(&percent_decode(path)));
    let Some(entry) = entry else {
        let body: &[u8] = if head_only { b"" } else { b"Entry not found" };
        return write_response(
            stream,
            "404 Not Found",
            &[
                ("content-type", "text/plain; charset=utf-8".into()),
                ("x-error-code", "EntryNotFound".into()),
                ("x-error-message", "Entry not found".into()),
            ],
            body,
            close,
        );
    };

    let len = entry.data.len();
    let etag = format!("\"{}\"", entry.sha256);
    let mut headers = vec![
        ("content-type", "application/octet-stream".to_string()),
        ("accept-ranges", "bytes".into()),
        ("x-repo-commit", COMMIT.into()),
        ("etag", etag.clone()),
        ("x-linked-etag", etag),
        ("x-linked-size", len.to_string()),
    ];
    let (status, range) = match request.header("range").map(|r| parse_range(r, len)) {
        None => ("200 OK", 0..len),
        // An empty file has no satisfiable range; answer it whole, with the
        // size in Content-Range, which hf-hub requires.
        Some(_) if len == 0 => {
            headers.push(("content-range", "bytes */0".into()));
            ("200 OK", 0..0)
        }
        Some(Some(range)) => {
            headers.push((
                "content-range",
                format!("bytes {}-{}/{len}", range.start, range.end - 1),
            ));
            ("206 Partial Content", range)
        }
        Some(None) => {
            headers.push(("content-range", format!("bytes */{len}")));
            ("416 Range Not Satisfiable", 0..0)
        }
    };
    let body = if head_only {
        // HEAD: the headers of a GET, Content-Length included, and no body.
        headers.push(("content-length", range.len().to_string()));
        &[][..]
    } else {
        &entry.data[range]
    };
    write_response(stream, status, &headers, body, close)
}

/// Parses a single `bytes=` range against a resource of `len` bytes into a
/// half-open byte range; `None` when unsatisfiable or malformed.
fn parse_range(value: &str, len: usize) -> Option<std::ops::Range<usize>> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let suffix: usize = end.parse().ok()?;
        len.saturating_sub(suffix)..len
    } else {
        let start: usize = start.parse().ok()?;
        let end = if end.is_empty() {
            len
        } else {
            end.parse::<usize>().ok()?.saturating_add(1).min(len)
        };
        start..end
    };
    (range.start < len && range.start < range.end).then_some(range)
}

fn write_response(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
    close: bool,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    let mut has_length = false;
    for (name, value) in headers {
        has_length |= name.eq_ignore_ascii_case("content-length");
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !has_length {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn percent_decode(s: &str) -> String {
    fn nibble(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (nibble(bytes[i + 1]), nibble(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (FIPS 180-4), so that etags and cache blob names look like the
/// hub's.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, word) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MNIST_TRAIN: &str = "/datasets/ylecun/mnist/resolve/main/mnist/train-00000-of-00001.parquet";

    fn pseudo_random_bytes(n: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }

    /// Sends raw requests on one connection and reads `n` responses.
    fn raw_exchange(endpoint: &str, requests: &str, n: usize) -> Vec<(String, Vec<u8>)> {
        let addr = endpoint.strip_prefix("http://").unwrap();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(requests.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        while out.len() < n {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8(buf[..end].to_vec()).unwrap();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                if buf.len() >= end + 4 + len {
                    let body = buf[end + 4..end + 4 + len].to_vec();
                    buf.drain(..end + 4 + len);
                    out.push((head, body));
                    continue;
                }
            }
            let k = stream.read(&mut chunk).unwrap();
            assert!(k > 0, "connection closed early");
            buf.extend_from_slice(&chunk[..k]);
        }
        out
    }

    #[test]
    fn support_hub_server_sha256() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn support_hub_server_ranges_and_keep_alive() {
        let data = pseudo_random_bytes(1000);
        let server = HubServer::start(vec![(MNIST_TRAIN.to_string(), data.clone())]);
        let responses = raw_exchange(
            &server.endpoint,
            &format!(
                "GET {MNIST_TRAIN} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n\r\n\
                 GET {MNIST_TRAIN} HTTP/1.1\r\nHost: x\r\nRange: bytes=10-\r\n\r\n\
                 GET {MNIST_TRAIN} HTTP/1.1\r\nHost: x\r\n\r\n\
                 GET /datasets/ylecun/mnist/resolve/main/nope HTTP/1.1\r\nHost: x\r\n\r\n\
                 GET {MNIST_TRAIN} HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-\r\n\r\n"
            ),
            5,
        );
        let (head, body) = &responses[0];
        assert!(head.starts_with("HTTP/1.1 206 "), "{head}");
        assert!(head.contains("content-range: bytes 0-0/1000\r\n"), "{head}");
        assert!(head.contains(&format!("x-repo-commit: {COMMIT}\r\n")), "{head}");
        let etag = format!("etag: \"{}\"\r\n", hex(&sha256(&data)));
        assert!(head.contains(&etag), "{head}");
        assert_eq!(body, &data[..1]);

        let (head, body) = &responses[1];
        assert!(head.starts_with("HTTP/1.1 206 "), "{head}");
        assert!(head.contains("content-range: bytes 10-999/1000\r\n"), "{head}");
        assert_eq!(body, &data[10..]);

        let (head, body) = &responses[2];
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert_eq!(body, &data);

        let (head, body) = &responses[3];
        assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
        assert!(head.contains("x-error-code: EntryNotFound\r\n"), "{head}");
        assert_eq!(body, b"Entry not found");

        let (head, _) = &responses[4];
        assert!(head.starts_with("HTTP/1.1 416 "), "{head}");

        assert_eq!(server.requests(), 5);
        assert_eq!(server.request_log()[3], "GET /datasets/ylecun/mnist/resolve/main/nope");

        let addr = server.endpoint.strip_prefix("http://").unwrap().to_string();
        drop(server);
        assert!(TcpStream::connect(addr).is_err(), "listener still open after drop");
    }

    #[test]
    fn support_hub_server_serves_hf_hub() -> anyhow::Result<()> {
        let data = pseudo_random_bytes(300_000);
        let server = HubServer::start(vec![(MNIST_TRAIN.to_string(), data.clone())]);
        let cache = tempfile::tempdir()?;
        let api = hf_hub::api::sync::ApiBuilder::new()
            .with_endpoint(server.endpoint.clone())
            .with_cache_dir(cache.path().to_path_buf())
            .with_progress(false)
            .build()?;
        let repo = api.dataset("ylecun/mnist".into());

        let path = repo.get("mnist/train-00000-of-00001.parquet")?;
        assert_eq!(std::fs::read(&path)?, data);
        assert_eq!(
            path,
            cache
                .path()
                .join("datasets--ylecun--mnist/snapshots")
                .join(COMMIT)
                .join("mnist/train-00000-of-00001.parquet")
        );
        let blob = cache
            .path()
            .join("datasets--ylecun--mnist/blobs")
            .join(hex(&sha256(&data)));
        assert_eq!(std::fs::read(blob)?, data);
        assert_eq!(
            server.request_log(),
            [format!("GET {MNIST_TRAIN}"), format!("GET {MNIST_TRAIN}")]
        );

        // Cached now: no request at all.
        let again = repo.get("mnist/train-00000-of-00001.parquet")?;
        assert_eq!(again, path);
        assert_eq!(server.requests(), 2);

        // A file the hub does not have is an error, not a panic.
        let missing = repo.get("mnist/missing.parquet");
        assert!(missing.is_err(), "{missing:?}");
        assert_eq!(server.requests(), 3);
        Ok(())
    }
}
