//! `holdfast-netem A B --loss 10 --delay-ms 150 [--seed N]`: carries every
//! frame between interfaces `A` and `B` (in the namespace it runs in),
//! losing and delaying them in both directions as `tc netem` would
//! (see `holdfast_testkit::netem`, which owns the decisions).
//!
//! Frames are read and written with AF_PACKET sockets carrying a virtio-net
//! header (`PACKET_VNET_HDR`), so segmentation and checksum offload pass
//! through untouched: a TCP super-frame read on one side is written as one
//! on the other and the kernel finishes it, as for a VM's tap device.
//! Prints a JSON line of counters every second.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use holdfast_testkit::netem::{Impairment, Lane};

#[derive(Parser)]
struct Cli {
    a: String,
    b: String,
    /// Loss in percent, each direction.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Delay in milliseconds, each direction.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// An AF_PACKET socket bound to one interface, with virtio-net headers.
fn packet_socket(dev: &str) -> anyhow::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket calls on a descriptor we own; every result is checked.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_NONBLOCK, proto as i32);
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("AF_PACKET socket (needs root)");
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let one: libc::c_int = 1;
        if libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_VNET_HDR,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of_val(&one) as libc::socklen_t,
        ) < 0
        {
            return Err(io::Error::last_os_error()).context("PACKET_VNET_HDR");
        }
        let name = std::ffi::CString::new(dev)?;
        let index = libc::if_nametoindex(name.as_ptr());
        if index == 0 {
            bail!("no interface {dev}");
        }
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        addr.sll_ifindex = index as i32;
        if libc::bind(
            fd.as_raw_fd(),
            &addr as *const _ as *const libc::sockaddr,
            std::mem::size_of_val(&addr) as libc::socklen_t,
        ) < 0
        {
            return Err(io::Error::last_os_error()).with_context(|| format!("bind to {dev}"));
        }
        Ok(fd)
    }
}

/// The next frame that arrived on the interface (not one it sent), if any.
fn receive(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        // SAFETY: `buf` and `addr` outlive the call, their lengths are passed.
        let (n, addr) = unsafe {
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            let mut len = std::mem::size_of_val(&addr) as libc::socklen_t;
            let n = libc::recvfrom(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
                &mut addr as *mut _ as *mut libc::sockaddr,
                &mut len,
            );
            (n, addr)
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(None)
            } else {
                Err(e)
            };
        }
        // Our own writes show up as outgoing frames of the interface.
        if addr.sll_pkttype != libc::PACKET_OUTGOING {
            return Ok(Some(n as usize));
        }
    }
}

fn transmit(fd: &OwnedFd, frame: &[u8]) {
    // SAFETY: `frame` is valid for its length. A failed write is a lost
    // packet, as on a real link.
    unsafe {
        libc::send(fd.as_raw_fd(), frame.as_ptr() as *const libc::c_void, frame.len(), 0);
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !(0.0..=100.0).contains(&cli.loss) {
        bail!("--loss is a percentage");
    }
    let imp = Impairment {
        loss: cli.loss / 100.0,
        delay: Duration::from_millis(cli.delay_ms),
    };
    let (a, b) = (packet_socket(&cli.a)?, packet_socket(&cli.b)?);
    let mut a_to_b = Lane::new(imp, cli.seed);
    let mut b_to_a = Lane::new(imp, cli.seed.wrapping_add(1));
    // A virtio-net header and a 64 KiB super-frame.
    let mut buf = vec![0u8; 70_000];
    let mut next_report = Instant::now();
    loop {
        let now = Instant::now();
        let next = [a_to_b.next_due(), b_to_a.next_due(), Some(next_report)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
        let timeout = next.saturating_duration_since(now);
        let mut fds = [
            libc::pollfd {
                fd: a.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: b.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Round up: waking a little late is a little more delay, never less.
        let ms = timeout.as_micros().div_ceil(1000).min(1000) as libc::c_int;
        // SAFETY: `fds` is a valid array of two pollfds.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) } < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e).context("poll");
            }
        }
        let now = Instant::now();
        while let Some(n) = receive(&a, &mut buf)? {
            a_to_b.arrive(now, buf[..n].to_vec());
        }
        while let Some(n) = receive(&b, &mut buf)? {
            b_to_a.arrive(now, buf[..n].to_vec());
        }
        while let Some(frame) = a_to_b.due(now) {
            transmit(&b, &frame);
        }
        while let Some(frame) = b_to_a.due(now) {
            transmit(&a, &frame);
        }
        if now >= next_report {
            next_report = now + Duration::from_secs(1);
            println!(
                "{}",
                serde_json::json!({"event": "netem", "a_to_b": a_to_b.counters(), "b_to_a": b_to_a.counters()})
            );
        }
    }
}
