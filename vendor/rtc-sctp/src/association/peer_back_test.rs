//! Holdfast patch: a packet from the peer after an unanswered T3-rtx expiry
//! brings the retransmission forward (`retransmit_now_if_peer_is_back`).

use super::*;

const PAYLOAD: &[u8] = &[0x5a; 1024];

/// An association with one reliable message sent, and the time it went out.
fn sent_one() -> Result<(Association, Instant, u32)> {
    let mut a = timed_test_association();
    a.rto_mgr.set_rto(1000, false);
    a.cwnd = 16 * 1024;
    let now = Instant::now();
    let first = a.my_next_tsn;
    let ppi = PayloadProtocolIdentifier::Binary;
    let mut stream = a.open_stream(1, ppi)?;
    stream.write_sctp(now, &Bytes::from_static(PAYLOAD), ppi)?;
    assert_eq!(transmitted_data(&a.gather_outbound(now).0).len(), 1);
    Ok((a, now, first))
}

/// Something from the peer that acknowledges nothing new: a repeated SACK.
fn from_peer(a: &mut Association, first: u32, at: Instant) -> Result<()> {
    let sack = ChunkSelectiveAck {
        cumulative_tsn_ack: first.wrapping_sub(1),
        advertised_receiver_window_credit: 65536,
        ..Default::default()
    };
    let packet = Packet {
        common_header: CommonHeader {
            source_port: 5000,
            destination_port: 5000,
            ..Default::default()
        },
        chunks: vec![Box::new(sack)],
    };
    a.handle_inbound(packet, at)
}

/// T3 fires at its deadline and the retransmission is lost; returns when.
fn expire_into_the_void(a: &mut Association) -> Instant {
    let at = a.timers.get(Timer::T3RTX).expect("T3 running");
    a.handle_timeout(at);
    assert_eq!(transmitted_data(&a.gather_outbound(at).0).len(), 1, "retransmitted at expiry");
    at
}

#[test]
fn a_peer_heard_after_an_unanswered_expiry_gets_the_retransmission_at_once() -> Result<()> {
    let (mut a, _, first) = sent_one()?;
    // A blackout: two expiries, both retransmissions lost; the timer is now 3 s.
    expire_into_the_void(&mut a);
    let last = expire_into_the_void(&mut a);
    let deadline = a.timers.get(Timer::T3RTX).unwrap();
    assert_eq!(deadline - last, Duration::from_secs(3));

    // The path comes back 1.2 s later and the peer says something.
    let heard = last + Duration::from_millis(1200);
    from_peer(&mut a, first, heard)?;
    let sent = transmitted_data(&a.gather_outbound(heard).0);
    assert_eq!(sent.len(), 1, "retransmitted when the peer was heard, not {:?} later", deadline - heard);
    assert_eq!(sent[0].tsn, first);
    assert_eq!(a.stats.get_num_t3timeouts(), 3);
    // The timer runs on from now, backed off as any expiry would.
    assert_eq!(a.timers.get(Timer::T3RTX), Some(heard + Duration::from_secs(3)));

    // More packets from the peer right after do not duplicate it.
    for ms in [1, 200, 900] {
        let t = heard + Duration::from_millis(ms);
        from_peer(&mut a, first, t)?;
        assert!(transmitted_data(&a.gather_outbound(t).0).is_empty(), "{ms} ms after");
    }
    // Once acknowledged, all is normal again.
    a.handle_sack(
        &ChunkSelectiveAck {
            cumulative_tsn_ack: first,
            advertised_receiver_window_credit: 65536,
            ..Default::default()
        },
        heard + Duration::from_millis(950),
    )?;
    assert!(a.timers.get(Timer::T3RTX).is_none());
    Ok(())
}

#[test]
fn without_an_expiry_or_too_soon_after_one_nothing_is_brought_forward() -> Result<()> {
    // Data in flight, no expiry yet: the peer's packets change nothing.
    let (mut a, sent_at, first) = sent_one()?;
    let deadline = a.timers.get(Timer::T3RTX).unwrap();
    from_peer(&mut a, first, sent_at + Duration::from_millis(900))?;
    assert!(transmitted_data(&a.gather_outbound(sent_at + Duration::from_millis(900)).0).is_empty());
    assert_eq!(a.timers.get(Timer::T3RTX), Some(deadline));

    // After an expiry, a retransmission out for less than RTO.min is left to arrive.
    let last = expire_into_the_void(&mut a);
    let deadline = a.timers.get(Timer::T3RTX).unwrap();
    let soon = last + Duration::from_millis(999);
    from_peer(&mut a, first, soon)?;
    assert!(transmitted_data(&a.gather_outbound(soon).0).is_empty());
    assert_eq!(a.timers.get(Timer::T3RTX), Some(deadline));
    assert_eq!(a.stats.get_num_t3timeouts(), 1);

    // On a slow path (SRTT 800 ms) the wait is two round trips.
    a.rto_mgr.srtt = 800;
    let t = last + Duration::from_millis(1500);
    from_peer(&mut a, first, t)?;
    assert!(transmitted_data(&a.gather_outbound(t).0).is_empty());
    let t = last + Duration::from_millis(1600);
    from_peer(&mut a, first, t)?;
    assert_eq!(transmitted_data(&a.gather_outbound(t).0).len(), 1);
    Ok(())
}
