//! `arpg-serve` over real TCP: raw HTTP/1.1 requests, the answers checked byte by byte.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arpg_serve::CSP;

/// A scratch site: ROOT/{www/index.html, pkg/arpg.js, Cargo.toml, www/.env}.
fn scratch_root() -> PathBuf {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let root = std::env::temp_dir().join(format!("arpg-serve-test-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(root.join("www/sub")).unwrap();
    std::fs::create_dir_all(root.join("pkg")).unwrap();
    std::fs::write(root.join("www/index.html"), "<!doctype html><p>hello arpg</p>\n").unwrap();
    std::fs::write(root.join("www/sub/index.html"), "sub\n").unwrap();
    std::fs::write(root.join("www/a b.txt"), "spaced\n").unwrap();
    std::fs::write(root.join("www/.env"), "SECRET-ENV\n").unwrap();
    std::fs::write(root.join("pkg/arpg.js"), "export default 1;\n").unwrap();
    std::fs::write(root.join("Cargo.toml"), "SECRET-CARGO\n").unwrap();
    root
}

/// Start a server on a free port in a thread of its own; it lives as long as the test process.
fn start(root: &Path, header_timeout: Duration) -> SocketAddr {
    let root = root.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let listener = arpg_serve::bind(0).await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            arpg_serve::serve(listener, &root, header_timeout).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Send `raw` on a new connection and read until the server closes it.
fn send(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(raw).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Reply {
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("no end of head");
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    Reply { status, headers, body: bytes[split + 4..].to_vec() }
}

/// One request with `Connection: close` and the given extra header lines.
fn request(addr: SocketAddr, method: &str, target: &str, extra: &[&str]) -> Reply {
    let mut raw =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n", addr.port());
    for line in extra {
        raw.push_str(line);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    send(addr, raw.as_bytes())
}

fn get(addr: SocketAddr, target: &str) -> Reply {
    request(addr, "GET", target, &[])
}

#[test]
fn serves_www_at_the_root_and_pkg_below_it_with_the_security_headers() {
    let root = scratch_root();
    let addr = start(&root, arpg_serve::HEADER_TIMEOUT);
    assert!(addr.ip().is_loopback());

    let r = get(addr, "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<!doctype html><p>hello arpg</p>\n");
    assert_eq!(r.header("Content-Type"), Some("text/html"));
    assert_eq!(r.header("Content-Length"), Some(r.body.len().to_string().as_str()));
    assert_eq!(r.header("Content-Security-Policy"), Some(CSP));
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(r.header("Cache-Control"), Some("no-cache"));
    assert_eq!(r.header("Cross-Origin-Opener-Policy"), Some("same-origin"));
    assert_eq!(r.header("Vary"), Some("Accept-Encoding"));

    assert_eq!(get(addr, "/index.html").body, b"<!doctype html><p>hello arpg</p>\n");
    assert_eq!(get(addr, "/sub/").body, b"sub\n");
    assert_eq!(get(addr, "/a%20b.txt").body, b"spaced\n");
    let r = get(addr, "/pkg/arpg.js?v=3");
    assert_eq!((r.status, r.body.as_slice()), (200, b"export default 1;\n".as_slice()));
    assert!(r.header("Content-Type").unwrap().contains("javascript"), "{:?}", r.header("Content-Type"));
    assert_eq!(r.header("Content-Encoding"), None);
    assert_eq!(get(addr, "/pkg//arpg.js").status, 200);
    // "/pkgx" is a path under www/, not pkg/.
    assert_eq!(get(addr, "/pkgx/arpg.js").status, 404);

    let r = request(addr, "HEAD", "/", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("Content-Length"), Some("33"));

    let r = request(addr, "POST", "/", &[]);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    assert_eq!(r.header("Content-Security-Policy"), Some(CSP));

    assert_eq!(get(addr, "/missing.js").status, 404);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn refuses_traversal_dot_files_symlinks_out_and_malformed_targets() {
    let root = scratch_root();
    std::os::unix::fs::symlink(root.join("Cargo.toml"), root.join("www/link.toml")).unwrap();
    let addr = start(&root, arpg_serve::HEADER_TIMEOUT);
    let refused = [
        ("/../Cargo.toml", 404),
        ("/pkg/../Cargo.toml", 404),
        ("/pkg/../../Cargo.toml", 404),
        ("/%2e%2e/Cargo.toml", 404),
        ("/%2E%2E%2FCargo.toml", 404),
        ("/pkg/..%2f..%2fetc/passwd", 404),
        ("/./index.html", 404),
        ("/.env", 404),
        ("/%2eenv", 404),
        ("/.git/config", 404),
        ("/pkg/.gitignore", 404),
        ("/Cargo.toml", 404),
        ("/link.toml", 404), // a symlink out of www/
        ("//etc/passwd", 404),
        ("/a%00b", 400),
        ("/..%5cCargo.toml", 400),
        ("/a%0ab", 400),
        ("/%zz", 400),
        ("/%2", 400),
        ("/%+f", 400),
        ("/%ff", 400), // not UTF-8
        ("http://127.0.0.1/index.html", 400),
        ("*", 400),
        ("index.html", 400),
    ];
    for (target, status) in refused {
        let r = get(addr, target);
        assert_eq!(r.status, status, "{target}");
        assert!(!String::from_utf8_lossy(&r.body).contains("SECRET"), "{target}");
        assert_eq!(r.header("Content-Security-Policy"), Some(CSP), "{target}");
    }
    assert_eq!(send(addr, b"GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n").status, 400);
    assert_eq!(send(addr, b"GET / HTTP/1.1\r\nHost: localhost:1\r\nConnection: close\r\n\r\n").status, 200);
    assert_eq!(send(addr, b"nonsense\r\n\r\n").status, 400);
    // An HTTP/2 request line on an HTTP/1 connection: hyper answers 400 (the old server said 505).
    assert_eq!(send(addr, b"GET / HTTP/2.0\r\n\r\n").status, 400);
    let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(arpg_serve::MAX_HEAD));
    assert!(matches!(send(addr, long_line.as_bytes()).status, 414 | 431));
    let big_headers = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "b".repeat(arpg_serve::MAX_HEAD));
    assert_eq!(send(addr, big_headers.as_bytes()).status, 431);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn sends_a_fresh_precompressed_copy_when_the_client_accepts_it() {
    let root = scratch_root();
    let addr = start(&root, arpg_serve::HEADER_TIMEOUT);
    let with = |accept: &str| {
        let r = request(addr, "GET", "/pkg/arpg.js", &[&format!("Accept-Encoding: {accept}")]);
        assert_eq!(r.status, 200);
        (String::from_utf8(r.body.clone()).unwrap(), r.header("Content-Encoding").map(str::to_string))
    };
    std::fs::write(root.join("pkg/arpg.js.gz"), b"GZ-BYTES").unwrap();
    assert_eq!(with("br, gzip;q=0.9"), ("GZ-BYTES".into(), Some("gzip".into())));
    assert_eq!(get(addr, "/pkg/arpg.js").body, b"export default 1;\n");
    // FILE.br is preferred when brotli is accepted, and never sent when it is refused.
    std::fs::write(root.join("pkg/arpg.js.br"), b"BR-BYTES").unwrap();
    assert_eq!(with("gzip, deflate, br, zstd"), ("BR-BYTES".into(), Some("br".into())));
    assert_eq!(with("gzip, br;q=0"), ("GZ-BYTES".into(), Some("gzip".into())));
    assert_eq!(with("br;q=0, gzip;q=0"), ("export default 1;\n".into(), None));
    assert_eq!(with("identity"), ("export default 1;\n".into(), None));
    let r = request(addr, "GET", "/pkg/arpg.js", &["Accept-Encoding: br"]);
    assert!(r.header("Content-Type").unwrap().contains("javascript"), "the copy's type is the file's");
    // A copy older than its file (the file was replaced after it was made) is never sent.
    let old = SystemTime::now() - Duration::from_secs(60);
    File::options().write(true).open(root.join("pkg/arpg.js.br")).unwrap().set_modified(old).unwrap();
    assert_eq!(with("gzip, br"), ("GZ-BYTES".into(), Some("gzip".into())));
    File::options().write(true).open(root.join("pkg/arpg.js.gz")).unwrap().set_modified(old).unwrap();
    assert_eq!(with("gzip, br"), ("export default 1;\n".into(), None));
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_second_get_with_the_validator_gets_304_and_no_body() {
    let root = scratch_root();
    let addr = start(&root, arpg_serve::HEADER_TIMEOUT);
    let first = get(addr, "/pkg/arpg.js");
    let validator = first.header("Last-Modified").expect("no Last-Modified").to_string();
    let again = request(addr, "GET", "/pkg/arpg.js", &[&format!("If-Modified-Since: {validator}")]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("Content-Security-Policy"), Some(CSP));
    // A file changed since the validator is sent again, whole.
    std::thread::sleep(Duration::from_millis(1100)); // Last-Modified has whole seconds
    std::fs::write(root.join("pkg/arpg.js"), "export default 2;\n").unwrap();
    let changed = request(addr, "GET", "/pkg/arpg.js", &[&format!("If-Modified-Since: {validator}")]);
    assert_eq!((changed.status, changed.body.as_slice()), (200, b"export default 2;\n".as_slice()));
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_get_succeeds_while_200_idle_connections_are_open_and_idle_ones_are_closed_in_time() {
    let root = scratch_root();
    let addr = start(&root, Duration::from_secs(2));
    let idle: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let t0 = Instant::now();
    let r = get(addr, "/");
    assert_eq!(r.status, 200);
    assert!(t0.elapsed() < Duration::from_secs(1), "the GET took {:?}", t0.elapsed());
    // A client that sends nothing is closed once the header timeout has passed.
    let mut silent = idle.into_iter().next().unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let closed = silent.read_to_end(&mut buf).is_ok();
    assert!(closed, "an idle connection was still open after 10 s");
    assert!(t0.elapsed() < Duration::from_secs(5), "closed after {:?}", t0.elapsed());
    // So is a kept-alive connection that goes quiet after a request.
    let mut kept = TcpStream::connect(addr).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t1 = Instant::now();
    kept.write_all(format!("GET /sub/ HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", addr.port()).as_bytes())
        .unwrap();
    let mut bytes = Vec::new();
    kept.read_to_end(&mut bytes).expect("a kept-alive connection was still open after 10 s");
    assert_eq!(parse(&bytes).body, b"sub\n");
    assert!(t1.elapsed() < Duration::from_secs(5), "closed after {:?}", t1.elapsed());
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn keeps_a_connection_alive_for_the_next_request() {
    let root = scratch_root();
    let addr = start(&root, arpg_serve::HEADER_TIMEOUT);
    let host = format!("Host: 127.0.0.1:{}", addr.port());
    // Two requests on one connection, the second closing it: two answers come back on it.
    let raw = format!(
        "GET /pkg/arpg.js HTTP/1.1\r\n{host}\r\n\r\nGET / HTTP/1.1\r\n{host}\r\nConnection: close\r\n\r\n"
    );
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let second = text.rfind("HTTP/1.1 200").unwrap();
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
    assert!(text[..second].ends_with("export default 1;\n"), "{text}");
    assert_eq!(parse(&text.as_bytes()[second..]).body, b"<!doctype html><p>hello arpg</p>\n");
    std::fs::remove_dir_all(&root).ok();
}
