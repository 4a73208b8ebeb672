//! A real DNS server for the tests, on 127.0.0.1 over UDP: hickory-server
//! answering from in-memory zones, behind a tiny UDP relay that counts the
//! queries reaching it (so tests can see what the worker's cache saved).
//! Nothing is mocked on the resolver's side: the worker asks this server
//! the way it asks any (`PUFFLE_DNS_SERVERS=127.0.0.1:<port>`).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hickory_server::proto::rr::rdata::{A, AAAA, MX, SOA};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use hickory_server::Server;
use tokio::net::UdpSocket;

/// One record of a zone, written the way people read them.
pub enum Rr {
    Mx(&'static str, u16, &'static str),
    A(&'static str, Ipv4Addr),
    Aaaa(&'static str, Ipv6Addr),
}

pub struct TestDns {
    /// Where resolvers should send queries (the counting relay).
    pub addr: SocketAddr,
    queries: Arc<AtomicUsize>,
}

impl TestDns {
    /// Serves `zones` (origin → records); every zone gets an SOA.
    pub async fn start(zones: &[(&str, Vec<Rr>)]) -> TestDns {
        let mut catalog = Catalog::new();
        for (origin, records) in zones {
            let origin_name = Name::from_str(&format!("{origin}.")).unwrap();
            let mut zone = InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::empty(
                origin_name.clone(),
                ZoneType::Primary,
                AxfrPolicy::Deny,
            );
            let soa = SOA::new(
                Name::from_str(&format!("ns.{origin}.")).unwrap(),
                Name::from_str(&format!("hostmaster.{origin}.")).unwrap(),
                1,
                3600,
                600,
                86400,
                60,
            );
            zone.upsert_mut(Record::from_rdata(origin_name.clone(), 60, RData::SOA(soa)), 1);
            for r in records {
                let rec = match r {
                    Rr::Mx(name, pref, exchange) => Record::from_rdata(
                        Name::from_str(&format!("{name}.")).unwrap(),
                        60,
                        RData::MX(MX::new(*pref, Name::from_str(exchange).unwrap())),
                    ),
                    Rr::A(name, ip) => {
                        Record::from_rdata(Name::from_str(&format!("{name}.")).unwrap(), 60, RData::A(A(*ip)))
                    }
                    Rr::Aaaa(name, ip) => {
                        Record::from_rdata(Name::from_str(&format!("{name}.")).unwrap(), 60, RData::AAAA(AAAA(*ip)))
                    }
                };
                zone.upsert_mut(rec, 1);
            }
            catalog.upsert(LowerName::new(&origin_name), vec![Arc::new(zone)]);
        }
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server_addr = socket.local_addr().unwrap();
        let mut server = Server::new(catalog);
        server.register_socket(socket);
        // The server runs as long as the test process: leak its handle.
        Box::leak(Box::new(server));

        let relay = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = relay.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let counted = queries.clone();
        tokio::spawn(async move {
            let relay = Arc::new(relay);
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, client)) = relay.recv_from(&mut buf).await else { return };
                counted.fetch_add(1, Ordering::SeqCst);
                let packet = buf[..n].to_vec();
                let relay = relay.clone();
                tokio::spawn(async move {
                    let up = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                    if up.send_to(&packet, server_addr).await.is_err() {
                        return;
                    }
                    let mut answer = vec![0u8; 4096];
                    let got = tokio::time::timeout(std::time::Duration::from_secs(5), up.recv(&mut answer)).await;
                    if let Ok(Ok(m)) = got {
                        let _ = relay.send_to(&answer[..m], client).await;
                    }
                });
            }
        });
        TestDns { addr, queries }
    }

    /// Queries received so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

/// A UDP socket that reads queries and never answers: a DNS server that is down.
pub async fn black_hole() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while s.recv_from(&mut buf).await.is_ok() {}
    });
    addr
}
