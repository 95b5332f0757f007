//! Holdfast patch: after a T3-rtx expiry, retransmissions are limited by the
//! congestion window (RFC 9260 6.3.3 E3, 7.2.1 B), not sent all at once.
//!
//! Found with a 10 s blackout: the expiry marked ~120 chunks (138 KB) for
//! retransmission and, with cwnd at one MTU, all of them left in one burst
//! (each `poll_transmit` started again from the whole cwnd). The viewer's
//! socket buffer dropped part of the burst, the tail loss had no SACKs left to
//! trigger a fast retransmit, and the channel waited 3 s for the next expiry.

use super::*;

const CHUNK: usize = 1000;

/// `n` one-chunk messages sent with a wide window, none acknowledged.
fn in_flight(n: usize) -> Result<(Association, Instant, u32)> {
    let mut a = timed_test_association();
    a.rto_mgr.set_rto(1000, false);
    a.cwnd = 1 << 20;
    a.rwnd = 1 << 20;
    let now = Instant::now();
    let first = a.my_next_tsn;
    let ppi = PayloadProtocolIdentifier::Binary;
    let mut stream = a.open_stream(1, ppi)?;
    for _ in 0..n {
        stream.write_sctp(now, &Bytes::from(vec![0x5a; CHUNK]), ppi)?;
    }
    assert_eq!(drain(&mut a, now).len(), n, "all sent at first");
    Ok((a, now, first))
}

/// Every DATA chunk the association sends at `now`, as `poll_transmit` would
/// ask for them: until it has nothing more.
fn drain(a: &mut Association, now: Instant) -> Vec<ChunkPayloadData> {
    let mut sent = Vec::new();
    loop {
        let (packets, _) = a.gather_outbound(now);
        if packets.is_empty() {
            return sent;
        }
        sent.extend(transmitted_data(&packets));
    }
}

fn sack(a: &mut Association, cumulative: u32, at: Instant) -> Result<()> {
    a.handle_sack(
        &ChunkSelectiveAck {
            cumulative_tsn_ack: cumulative,
            advertised_receiver_window_credit: 1 << 20,
            ..Default::default()
        },
        at,
    )?;
    Ok(())
}

#[test]
fn an_expiry_retransmits_one_window_then_grows_with_each_sack() -> Result<()> {
    let (mut a, _, first) = in_flight(120)?;
    let at = a.timers.get(Timer::T3RTX).expect("T3 running");
    a.handle_timeout(at);
    assert_eq!(a.cwnd as usize, a.mtu as usize);

    // One MTU of window: one chunk, however often the association is polled.
    let sent = drain(&mut a, at);
    assert_eq!(sent.iter().map(|c| c.tsn).collect::<Vec<_>>(), vec![first], "one window after the expiry");
    assert!(drain(&mut a, at + Duration::from_millis(10)).is_empty(), "nothing more before a SACK");

    // Each SACK frees its bytes and slow start opens the window: the next
    // chunks in TSN order, never more than the window minus what is in flight.
    let mut acked = first;
    let mut t = at;
    let mut rounds = 0;
    while acked != first.wrapping_add(119) {
        t += Duration::from_millis(5);
        sack(&mut a, acked, t)?;
        let sent = drain(&mut a, t);
        // Everything sent before this SACK is acknowledged by it: what is in
        // flight now is what this round sent.
        let flight: usize = sent.iter().map(|c| c.user_data.len()).sum();
        assert!(flight <= a.cwnd as usize, "in flight {flight} > cwnd {}", a.cwnd);
        assert!(!sent.is_empty() || acked == first.wrapping_add(119), "stalled at {acked}");
        for (i, c) in sent.iter().enumerate() {
            assert_eq!(c.tsn, acked.wrapping_add(1 + i as u32), "in order");
        }
        acked = sent.last().map_or(acked, |c| c.tsn);
        rounds += 1;
        assert!(rounds < 120, "the window never grew");
    }
    sack(&mut a, acked, t + Duration::from_millis(5))?;
    assert!(a.inflight_queue.is_empty());
    assert!(!a.t3_retransmit_pending);
    Ok(())
}
