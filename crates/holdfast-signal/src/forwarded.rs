//! Which address a request comes from, behind reverse proxies. The limiter
//! (failed codes, connections and rooms per address) counts this address, so
//! `X-Forwarded-For` is believed only from proxies the operator listed
//! (`trusted_proxies`): from anyone else it would let a client pick a fresh
//! address for every guess. Pure.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Longest `X-Forwarded-For` read (a longer one is ignored whole).
const MAX_FORWARDED_LEN: usize = 1024;

/// The client's address: the peer's, unless the peer is a trusted proxy;
/// then the nearest address in `X-Forwarded-For` (read from the right) that
/// is not itself a trusted proxy. A malformed or oversized header, or one
/// naming only proxies, leaves the last trusted hop's address.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let values = headers.get_all("x-forwarded-for");
    let mut hops: Vec<&str> = Vec::new();
    let mut len = 0;
    for v in values.iter() {
        let Ok(v) = v.to_str() else { return peer };
        len += v.len();
        if len > MAX_FORWARDED_LEN {
            return peer;
        }
        hops.extend(v.split(','));
    }
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_cannot_claim_another_address() {
        let h = headers(&["203.0.113.7"]);
        assert_eq!(client_addr(ip("198.51.100.1"), &h, &[]), ip("198.51.100.1"));
        assert_eq!(
            client_addr(ip("198.51.100.1"), &h, &nets(&["127.0.0.1/32"])),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_chains_are_read_from_the_right() {
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        let h = headers(&["203.0.113.7"]);
        assert_eq!(client_addr(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.7"));
        // The client put a lie on the left; our two proxies appended the truth.
        let h = headers(&["1.2.3.4, 203.0.113.7, 10.1.1.1"]);
        assert_eq!(client_addr(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.7"));
        let h = headers(&["1.2.3.4", "203.0.113.7"]);
        assert_eq!(client_addr(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.7"));
    }

    #[test]
    fn garbage_or_oversized_headers_fall_back_to_what_is_known() {
        let trusted = nets(&["127.0.0.1/32"]);
        assert_eq!(client_addr(ip("127.0.0.1"), &headers(&[]), &trusted), ip("127.0.0.1"));
        assert_eq!(
            client_addr(ip("127.0.0.1"), &headers(&["not-an-ip"]), &trusted),
            ip("127.0.0.1")
        );
        let long = vec!["203.0.113.7"; 200].join(",");
        assert_eq!(
            client_addr(ip("127.0.0.1"), &headers(&[&long]), &trusted),
            ip("127.0.0.1")
        );
    }
}
