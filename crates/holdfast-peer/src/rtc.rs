//! Peer-connection plumbing shared by host and viewer: configuration from the
//! server's ICE list, and a handler that forwards every callback into a
//! channel (callbacks run on webrtc-rs's driver task and must never block).

use std::sync::Arc;
use std::time::Duration;

use holdfast_proto::signal::{IceCandidate, IceServer};
use rtc::ice::mdns::MulticastDnsMode;
use tokio::sync::mpsc;
use webrtc::data_channel::DataChannel;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceCandidateInit,
    RTCIceConnectionState, RTCIceServer, RTCPeerConnectionIceEvent, RTCPeerConnectionState, SettingEngineBuilder,
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

async fn build(
    ice_servers: &[IceServer],
    opts: &RtcOptions,
    mdns: MulticastDnsMode,
) -> Result<(Arc<dyn PeerConnection>, mpsc::UnboundedReceiver<RtcEvent>), PeerError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let servers = ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone().unwrap_or_default(),
            credential: s.credential.clone().unwrap_or_default(),
        })
        .collect();
    let settings = SettingEngineBuilder::new()
        .with_include_loopback_candidate(opts.allow_loopback)
        .with_multicast_dns_mode(mdns)
        .with_ice_timeouts(
            Some(Duration::from_secs(5)),
            Some(Duration::from_secs(25)),
            Some(Duration::from_secs(2)),
        )
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
