//! Peer-connection plumbing shared by host and viewer: configuration from the
//! server's ICE list, and a handler that forwards every callback into a
//! channel (callbacks run on webrtc-rs's driver task and must never block).

use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast_proto::signal::{IceCandidate, IceServer};
use rtc::ice::mdns::MulticastDnsMode;
use tokio::sync::mpsc;
use webrtc::data_channel::DataChannel;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceCandidateInit,
    RTCIceCandidateType, RTCIceConnectionState, RTCIceServer, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    SettingEngineBuilder, StatsSelector,
};

use crate::PeerError;

/// How a peer connection binds and whom it asks for candidates.
#[derive(Debug, Clone)]
pub struct RtcOptions {
    /// Local UDP addresses to bind; `0.0.0.0:0` means every non-loopback interface.
    pub bind: Vec<String>,
    /// Gather loopback candidates too (tests run inside an isolated namespace).
    pub allow_loopback: bool,
    /// Resolve peers' `.local` (mDNS) candidates, which browsers send by
    /// default instead of their LAN addresses. Falls back to off where no
    /// multicast-capable interface exists.
    pub mdns: bool,
}

impl Default for RtcOptions {
    fn default() -> Self {
        RtcOptions {
            bind: vec!["0.0.0.0:0".into()],
            allow_loopback: false,
            mdns: true,
        }
    }
}

impl RtcOptions {
    /// Bound to `bind` (none: every interface), mDNS on.
    pub fn bound_to(bind: &[String], allow_loopback: bool) -> Self {
        let default = RtcOptions::default();
        RtcOptions {
            bind: if bind.is_empty() { default.bind } else { bind.to_vec() },
            allow_loopback,
            ..default
        }
    }

    /// Binds only to loopback, as the tests do.
    pub fn loopback() -> Self {
        RtcOptions {
            bind: vec!["127.0.0.1:0".into()],
            allow_loopback: true,
            mdns: false,
        }
    }
}

pub enum RtcEvent {
    Candidate(IceCandidate),
    State(RTCPeerConnectionState),
    IceState(RTCIceConnectionState),
    DataChannel(Arc<dyn DataChannel>),
}

struct Forwarder(mpsc::UnboundedSender<RtcEvent>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Forwarder {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.0.send(RtcEvent::Candidate(from_init(init)));
        }
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.0.send(RtcEvent::State(state));
    }
    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        let _ = self.0.send(RtcEvent::IceState(state));
    }
    async fn on_data_channel(&self, dc: Arc<dyn DataChannel>) {
        let _ = self.0.send(RtcEvent::DataChannel(dc));
    }
}

pub fn to_init(c: &IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: c.candidate.clone(),
        sdp_mid: c.sdp_mid.clone(),
        sdp_mline_index: c.sdp_mline_index,
        username_fragment: c.username_fragment.clone(),
        url: None,
    }
}

pub fn from_init(c: RTCIceCandidateInit) -> IceCandidate {
    IceCandidate {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_mline_index,
        username_fragment: c.username_fragment,
    }
}

/// How long the controlling agent waits before nominating a pair whose far
/// end was learnt from its checks (webrtc-rs's default: 1 s). See [`build`].
pub const PRFLX_ACCEPTANCE_WAIT: Duration = Duration::ZERO;

/// Builds a peer connection whose events arrive on the returned receiver.
pub async fn build_peer(
    ice_servers: &[IceServer],
    opts: &RtcOptions,
) -> Result<(Arc<dyn PeerConnection>, mpsc::UnboundedReceiver<RtcEvent>), PeerError> {
    if opts.mdns {
        match build(ice_servers, opts, MulticastDnsMode::QueryOnly).await {
            Ok(built) => return Ok(built),
            Err(e) => tracing::warn!("mDNS unavailable ({e}); .local candidates will not resolve"),
        }
    }
    build(ice_servers, opts, MulticastDnsMode::Disabled).await
}

/// The SCTP receive window each end offers (rtc-sctp's default is 1 MiB).
const SCTP_RECEIVE_BUFFER: u32 = 4 * 1024 * 1024;

async fn build(
    ice_servers: &[IceServer],
    opts: &RtcOptions,
    mdns: MulticastDnsMode,
) -> Result<(Arc<dyn PeerConnection>, mpsc::UnboundedReceiver<RtcEvent>), PeerError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let servers = rtc_servers(ice_servers);
    let settings = SettingEngineBuilder::new()
        .with_include_loopback_candidate(opts.allow_loopback)
        .with_multicast_dns_mode(mdns)
        .with_ice_timeouts(
            Some(Duration::from_secs(5)),
            Some(Duration::from_secs(25)),
            Some(Duration::from_secs(2)),
        )
        // A peer-reflexive pair is nominated as soon as its check succeeds,
        // not after the default 1 s: browsers hide their host addresses
        // behind mDNS names this end often cannot resolve, so the pair found
        // from the browser's own checks *is* its address, and the wait cost
        // every join 1 s plus the browser's DTLS retransmission backoff
        // (its ClientHellos are dropped until a pair is selected: 0.6 s
        // more). Relay pairs keep their 2 s, so a direct path found within
        // it wins (and a relayed session rechecks every two minutes).
        .with_prflx_acceptance_min_wait(Some(PRFLX_ACCEPTANCE_WAIT))
        .with_sctp_max_receive_buffer_size(SCTP_RECEIVE_BUFFER)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().with_ice_servers(servers).build())
        .with_setting_engine(settings)
        .with_handler(Arc::new(Forwarder(tx)))
        .with_udp_addrs(opts.bind.clone())
        .build()
        .await?;
    Ok((Arc::new(pc), rx))
}

fn rtc_servers(ice_servers: &[IceServer]) -> Vec<RTCIceServer> {
    ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone().unwrap_or_default(),
            credential: s.credential.clone().unwrap_or_default(),
        })
        .collect()
}

/// Gives a running connection another STUN/TURN list, applied at its next
/// ICE gathering (an ICE restart). Only for a connection without a relay
/// allocation: webrtc-rs re-signs a live allocation with new credentials,
/// which TURN servers refuse when the username changed (coturn: 441).
pub async fn apply_ice_servers(pc: &Arc<dyn PeerConnection>, ice_servers: &[IceServer]) -> Result<(), PeerError> {
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(rtc_servers(ice_servers))
        .build();
    Ok(pc.set_configuration(config).await?)
}

/// Whether the pair in use goes through a TURN relay (either end's
/// candidate is a relayed one) or straight between the peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    Direct,
    Relayed,
}

/// What ICE measured on the pair in use: its connectivity checks (consent
/// freshness runs every couple of seconds for as long as the connection
/// lives) are probes that see the path's loss and round trip, which the
/// reliable data channels hide.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathSample {
    /// Latest check round trip, if any was answered.
    pub rtt: Option<Duration>,
    /// Cumulative checks sent and answered on this pair.
    pub probes_sent: u64,
    pub probes_answered: u64,
    pub route: Route,
    /// Packets the transport has received in all (anything the far end
    /// sent: acknowledgements included), 0 when unknown.
    pub packets_received: u64,
}

/// Reads [`PathSample`] for the selected candidate pair (or, before one is
/// reported, the nominated one); `None` while there is no pair.
pub async fn path_sample(pc: &Arc<dyn PeerConnection>) -> Option<PathSample> {
    let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
    let selected = report.transport().map(|t| t.selected_candidate_pair_id.clone());
    let pair = report
        .candidate_pairs()
        .find(|p| selected.as_deref().is_some_and(|id| !id.is_empty() && p.stats.id == id))
        .or_else(|| {
            report
                .candidate_pairs()
                .filter(|p| p.nominated)
                .max_by_key(|p| p.responses_received)
        })?;
    let route = route(pc).await.unwrap_or(Route::Direct);
    let packets_received = report.transport().map_or(0, |t| t.packets_received);
    Some(PathSample {
        rtt: (pair.responses_received > 0 && pair.current_round_trip_time.is_finite())
            .then(|| Duration::from_secs_f64(pair.current_round_trip_time.max(0.0))),
        probes_sent: pair.requests_sent,
        probes_answered: pair.responses_received,
        route,
        packets_received,
    })
}

/// The route of the pair ICE selected, read from the ICE transport (the
/// statistics of webrtc-rs 0.21 do not resolve a pair's candidates). The far
/// end's relay candidate is often first learnt from its checks, as
/// peer-reflexive: the signalled relay candidate at its address says what it is.
pub async fn route(pc: &Arc<dyn PeerConnection>) -> Option<Route> {
    let ice = pc.sctp().await?.transport().ice_transport();
    let pair = ice.get_selected_candidate_pair().await.ok()??;
    let (local, remote) = (pair.local(), pair.remote());
    let remote_is_relay = remote.typ == RTCIceCandidateType::Relay
        || ice
            .get_remote_candidates()
            .await
            .unwrap_or_default()
            .iter()
            .any(|c| c.typ == RTCIceCandidateType::Relay && c.address == remote.address && c.port == remote.port);
    Some(if local.typ == RTCIceCandidateType::Relay || remote_is_relay {
        Route::Relayed
    } else {
        Route::Direct
    })
}

/// Waits (up to `within`) until everything sent on `dc` was acknowledged, so
/// a last message (`auth-failed`, say) survives closing the connection next.
pub async fn drained(dc: &Arc<dyn webrtc::data_channel::DataChannel>, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline && dc.outstanding_bytes().await.unwrap_or(0) > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
