use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::{HeaderMap as AxHeaders, StatusCode as AxStatus};
use axum::response::IntoResponse;
use axum::routing::get;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

#[test]
fn refused_ranges() {
    for (addr, range) in [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.10.1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified (this network)"),
        ("224.0.0.251", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "cloud metadata"),
        ("fd12::1", "unique local (private)"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("64:ff9b::a00:1", "private"),
        ("::10.0.0.1", "private"),
    ] {
        assert_eq!(refused_range(ip(addr)), Some(range), "{addr}");
    }
    for public in
        ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"]
    {
        assert_eq!(refused_range(ip(public)), None, "{public}");
    }
}

#[test]
fn literal_check() {
    let none = AllowList::default();
    assert!(check_url(&url("https://api.example.com/v1"), &none).is_ok());
    assert!(check_url(&url("http://8.8.8.8/"), &none).is_ok());
    assert_eq!(check_url(&url("ftp://example.com/"), &none), Err(Refusal::Scheme("ftp".into())));
    assert_eq!(check_url(&url("file:///etc/passwd"), &none), Err(Refusal::Scheme("file".into())));
    assert!(matches!(
        check_url(&url("http://169.254.169.254/latest/meta-data"), &none),
        Err(Refusal::Address { range: "cloud metadata", .. })
    ));
    assert!(matches!(check_url(&url("http://10.0.0.1/"), &none), Err(Refusal::Address { range: "private", .. })));
    assert!(matches!(check_url(&url("http://[::1]:8080/"), &none), Err(Refusal::Address { range: "loopback", .. })));
    // Decimal and hex spellings are parsed as the IPv4 address they are.
    assert!(matches!(check_url(&url("http://2130706433/"), &none), Err(Refusal::Address { range: "loopback", .. })));
    assert!(matches!(check_url(&url("http://0x7f.1/"), &none), Err(Refusal::Address { range: "loopback", .. })));
    assert_eq!(check_url(&url("http://localhost:3000/"), &none), Err(Refusal::LocalName("localhost".into())));
    assert_eq!(check_url(&url("http://LOCALHOST./"), &none), Err(Refusal::LocalName("localhost".into())));
    assert_eq!(check_url(&url("http://api.localhost/"), &none), Err(Refusal::LocalName("api.localhost".into())));
}

#[test]
fn allow_list() {
    let a = AllowList::parse(" 127.0.0.1:8080, stub.test ,[::1]:9000,,bad:port");
    assert!(check_url(&url("http://127.0.0.1:8080/x"), &a).is_ok());
    assert!(matches!(check_url(&url("http://127.0.0.1:22/"), &a), Err(Refusal::Port { port: 22, .. })));
    assert!(check_url(&url("http://[::1]:9000/"), &a).is_ok());
    assert!(check_url(&url("http://stub.test:1234/"), &a).is_ok());
    // Allowing 127.0.0.1 does not allow `localhost`, nor other loopback addresses.
    assert!(check_url(&url("http://localhost:8080/"), &a).is_err());
    assert!(check_url(&url("http://127.0.0.2:8080/"), &a).is_err());
    let any_port = AllowList::parse("127.0.0.1");
    assert!(check_url(&url("http://127.0.0.1:1/"), &any_port).is_ok());
    assert!(AllowList::parse("").is_empty());
    assert!(AllowList::parse(" , ").is_empty());
}

#[tokio::test]
async fn resolver_refuses_names_that_resolve_to_refused_addresses() {
    let r = GuardedResolver { allow: Arc::new(AllowList::default()) };
    let err = r.resolve(Name::from_str("localhost").unwrap()).await.err().expect("refused");
    let refusal = err.downcast_ref::<Refusal>().expect("a Refusal");
    assert!(matches!(refusal, Refusal::Resolved { range: "loopback", .. }), "{refusal:?}");
    // A listed name resolves as usual.
    let r = GuardedResolver { allow: Arc::new(AllowList::parse("localhost")) };
    let addrs: Vec<SocketAddr> = r.resolve(Name::from_str("localhost").unwrap()).await.unwrap().collect();
    assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
}

/// A stub on 127.0.0.1: `/ok`, `/big` (3 MB), `/to?u=<url>` (302 to u), `/loop`, `/headers`.
async fn stub() -> SocketAddr {
    async fn to(
        axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    ) -> impl IntoResponse {
        (AxStatus::FOUND, [("location", q.get("u").cloned().unwrap_or_default())])
    }
    async fn headers(h: AxHeaders) -> String {
        h.get("x-key").map(|v| v.to_str().unwrap_or("").to_string()).unwrap_or_default()
    }
    let app = axum::Router::new()
        .route("/ok", get(|| async { "hello" }))
        .route("/big", get(|| async { vec![b'x'; 3 * 1024 * 1024] }))
        .route("/to", get(to))
        .route("/loop", get(|| async { (AxStatus::FOUND, [("location", "/loop")]) }))
        .route("/headers", get(headers));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn get_req(u: &str) -> Outbound {
    Outbound {
        method: Method::GET,
        url: url(u),
        headers: HeaderMap::new(),
        body: None,
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn guard_end_to_end() {
    let addr = stub().await;
    let base = format!("http://127.0.0.1:{}", addr.port());
    let closed = Egress::new(AllowList::default(), Duration::from_secs(2)).unwrap();
    let open = Egress::new(AllowList::parse(&format!("127.0.0.1:{}", addr.port())), Duration::from_secs(2)).unwrap();

    // Without the allow setting a loopback stub is refused; with it, reached.
    let err = closed.send(get_req(&format!("{base}/ok"))).await.unwrap_err();
    assert!(matches!(err, EgressError::Refused(Refusal::Address { range: "loopback", .. })), "{err:?}");
    let ok = open.send(get_req(&format!("{base}/ok"))).await.unwrap();
    assert_eq!((ok.status.as_u16(), &ok.body[..]), (200, &b"hello"[..]));
    // `localhost` is refused even when 127.0.0.1 is allowed.
    let err = open.send(get_req(&format!("http://localhost:{}/ok", addr.port()))).await.unwrap_err();
    assert!(matches!(err, EgressError::Refused(Refusal::LocalName(_))), "{err:?}");

    // Redirects are checked: to the metadata address, to a private address,
    // to another port of the allowed host.
    for (target, what) in
        [("http://169.254.169.254/latest/meta-data/", "cloud metadata"), ("http://10.0.0.1/", "private")]
    {
        let err = open.send(get_req(&format!("{base}/to?u={target}"))).await.unwrap_err();
        assert!(matches!(&err, EgressError::Refused(Refusal::Address { range, .. }) if *range == what), "{err:?}");
    }
    let err = open.send(get_req(&format!("{base}/to?u=http://127.0.0.1:1/"))).await.unwrap_err();
    assert!(matches!(err, EgressError::Refused(Refusal::Port { .. })), "{err:?}");
    // A redirect inside the origin is followed; more than three are not.
    let ok = open.send(get_req(&format!("{base}/to?u=/ok"))).await.unwrap();
    assert_eq!(&ok.body[..], b"hello");
    assert!(matches!(open.send(get_req(&format!("{base}/loop"))).await.unwrap_err(), EgressError::TooManyRedirects));

    // Bodies are capped.
    assert!(matches!(open.send(get_req(&format!("{base}/big"))).await.unwrap_err(), EgressError::TooLarge));

    // Headers reach the first origin.
    let mut req = get_req(&format!("{base}/headers"));
    req.headers.insert("x-key", HeaderValue::from_static("k1"));
    assert_eq!(&open.send(req).await.unwrap().body[..], b"k1");
}

#[tokio::test]
async fn cross_origin_redirects_drop_the_callers_headers() {
    let a = stub().await;
    let b = stub().await;
    let open = Egress::new(
        AllowList::parse(&format!("127.0.0.1:{},127.0.0.1:{}", a.port(), b.port())),
        Duration::from_secs(2),
    )
    .unwrap();
    let mut req = get_req(&format!("http://127.0.0.1:{}/to?u=http://127.0.0.1:{}/headers", a.port(), b.port()));
    req.headers.insert("x-key", HeaderValue::from_static("secret"));
    let got = open.send(req).await.unwrap();
    assert_eq!(&got.body[..], b"", "the key must not follow the redirect to another origin");
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error_and_a_slow_one_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let open = Egress::new(AllowList::parse("127.0.0.1"), Duration::from_secs(2)).unwrap();
    let err = open.send(get_req(&format!("http://127.0.0.1:{port}/"))).await.unwrap_err();
    assert!(matches!(err, EgressError::Connect(_)), "{err:?}");
    assert!(!err.to_string().contains("127.0.0.1"), "no URL in messages: {err}");

    // Accepts but never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = vec![];
        loop {
            if let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        }
    });
    let mut req = get_req(&format!("http://127.0.0.1:{port}/"));
    req.timeout = Duration::from_millis(200);
    assert!(matches!(open.send(req).await.unwrap_err(), EgressError::Timeout));
}

#[tokio::test]
async fn webhook_limits_do_not_follow_redirects_and_read_64_kb() {
    let addr = stub().await;
    let base = format!("http://127.0.0.1:{}", addr.port());
    let open = Egress::new(AllowList::parse(&format!("127.0.0.1:{}", addr.port())), Duration::from_secs(2)).unwrap();
    // The 302 is the answer (a failed delivery), even to the same origin.
    let r = open.send_with(get_req(&format!("{base}/to?u=/ok")), Limits::WEBHOOK).await.unwrap();
    assert_eq!(r.status.as_u16(), 302);
    // The answer is read up to 64 KB and no further: not an error.
    let r = open.send_with(get_req(&format!("{base}/big")), Limits::WEBHOOK).await.unwrap();
    assert_eq!((r.status.as_u16(), r.body.len()), (200, 64 * 1024));
    // The guard still stands: a loopback name and a refused literal.
    let err = open.send_with(get_req(&format!("http://localhost:{}/ok", addr.port())), Limits::WEBHOOK).await;
    assert!(matches!(err, Err(EgressError::Refused(Refusal::LocalName(_)))), "{err:?}");
}

#[tokio::test]
async fn check_resolved_refuses_names_of_refused_addresses_only() {
    let none = AllowList::default();
    let r = check_resolved(&url("http://localhost:8080/hook"), &none).await;
    assert!(matches!(r, Err(Refusal::LocalName(_))), "{r:?}");
    assert!(matches!(check_resolved(&url("http://10.0.0.1/"), &none).await, Err(Refusal::Address { .. })));
    // `.invalid` never resolves: accepted (its deliveries fail and retry).
    assert!(check_resolved(&url("https://hooks.invalid/x"), &none).await.is_ok());
    assert!(check_resolved(&url("http://127.0.0.1:9/x"), &AllowList::parse("127.0.0.1:9")).await.is_ok());
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        let loopback = tokio::net::lookup_host((h, 80)).await.is_ok_and(|a| {
            let a: Vec<SocketAddr> = a.collect();
            !a.is_empty() && a.iter().all(|x| x.ip().is_loopback())
        });
        if loopback {
            let r = check_resolved(&url(&format!("http://{h}/x")), &none).await;
            assert!(matches!(r, Err(Refusal::Resolved { range: "loopback", .. })), "{r:?}");
        }
    }
}
