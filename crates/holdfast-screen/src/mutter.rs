//! One GNOME remote-desktop session over D-Bus: Mutter's
//! `org.gnome.Mutter.RemoteDesktop` session, with a `ScreenCast` session
//! tied to it that records every monitor as a PipeWire stream. This is
//! the API gnome-remote-desktop uses; nobody is asked anything, so an
//! unattended machine can be served (the ScreenCast portal asks the person
//! to pick a screen).
//!
//! Mutter ends a session when the D-Bus connection that made it closes, so
//! the [`MutterSession`] owns its connection and lives as long as sharing
//! does; dropping it stops the session.
//!
//! Mutter also ends it by itself whenever the monitors change (a new scale,
//! resolution or layout closes every stream, and a closed stream closes
//! the session). [`MutterLink`] holds the session in use and starts a new
//! one when a user of it (capture, input, clipboard) finds it gone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};
use zbus::blocking::{Connection, Proxy};
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

use crate::detect::BusNames;
use crate::monitors::{self, LogicalMonitor, PhysicalMonitor, PlannedDisplay};
use crate::Display;

pub const REMOTE_DESKTOP: &str = "org.gnome.Mutter.RemoteDesktop";
const REMOTE_DESKTOP_PATH: &str = "/org/gnome/Mutter/RemoteDesktop";
const REMOTE_DESKTOP_SESSION: &str = "org.gnome.Mutter.RemoteDesktop.Session";
pub const SCREEN_CAST: &str = "org.gnome.Mutter.ScreenCast";
const SCREEN_CAST_PATH: &str = "/org/gnome/Mutter/ScreenCast";
const SCREEN_CAST_SESSION: &str = "org.gnome.Mutter.ScreenCast.Session";
const SCREEN_CAST_STREAM: &str = "org.gnome.Mutter.ScreenCast.Stream";
const DISPLAY_CONFIG: &str = "org.gnome.Mutter.DisplayConfig";
const DISPLAY_CONFIG_PATH: &str = "/org/gnome/Mutter/DisplayConfig";
pub const PORTAL: &str = "org.freedesktop.portal.Desktop";

/// How long Mutter has to announce a stream's PipeWire node after `Start`.
const STREAM_TIMEOUT: Duration = Duration::from_secs(5);
/// `cursor-mode` 1, embedded: the pointer is drawn into the frames, as a
/// viewer expects to see it.
const CURSOR_EMBEDDED: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum MutterError {
    #[error("{what}: {source}")]
    Call {
        what: &'static str,
        // Boxed: zbus::Error is large and every Result here carries it.
        #[source]
        source: Box<zbus::Error>,
    },
    #[error("Mutter reports no lit monitor to share")]
    NoMonitor,
    #[error("Mutter did not start the stream of monitor {0} within {STREAM_TIMEOUT:?}")]
    NoStream(String),
    #[error("the remote-desktop session ended; the last new one was tried under {RENEW_SPACING:?} ago")]
    RenewTooSoon,
}

/// The least time between two attempts at a new session (Mutter may be gone for good).
pub const RENEW_SPACING: Duration = Duration::from_secs(1);

/// The session in use, numbered: 0 the first, +1 for each one started
/// after Mutter ended the last (see the module doc).
pub struct MutterLink {
    current: Mutex<Current>,
}

struct Current {
    generation: u64,
    session: Arc<MutterSession>,
    last_renewal: Option<Instant>,
}

impl MutterLink {
    pub fn start() -> Result<Arc<MutterLink>, MutterError> {
        Ok(Arc::new(MutterLink {
            current: Mutex::new(Current {
                generation: 0,
                session: Arc::new(MutterSession::start()?),
                last_renewal: None,
            }),
        }))
    }

    /// The session in use and its generation.
    pub fn current(&self) -> (u64, Arc<MutterSession>) {
        let c = self.current.lock().expect("mutter link");
        (c.generation, c.session.clone())
    }

    /// Session `generation` stopped working: starts a new one, unless
    /// another user of the link already did (then that one).
    pub fn renew(&self, generation: u64) -> Result<(u64, Arc<MutterSession>), MutterError> {
        let mut c = self.current.lock().expect("mutter link");
        if c.generation != generation {
            return Ok((c.generation, c.session.clone()));
        }
        if c.last_renewal.is_some_and(|t| t.elapsed() < RENEW_SPACING) {
            return Err(MutterError::RenewTooSoon);
        }
        c.last_renewal = Some(Instant::now());
        warn!(
            generation,
            "Mutter ended the remote-desktop session (the monitors changed?); starting a new one"
        );
        let session = Arc::new(MutterSession::start()?);
        c.generation += 1;
        c.session = session;
        Ok((c.generation, c.session.clone()))
    }
}

trait Context<T> {
    fn ctx(self, what: &'static str) -> Result<T, MutterError>;
}

impl<T, E: Into<zbus::Error>> Context<T> for Result<T, E> {
    fn ctx(self, what: &'static str) -> Result<T, MutterError> {
        self.map_err(|e| MutterError::Call {
            what,
            source: Box::new(e.into()),
        })
    }
}

/// Which remote-desktop services the session bus has.
pub fn bus_names() -> BusNames {
    let Ok(conn) = Connection::session() else {
        return BusNames {
            no_bus: true,
            ..BusNames::default()
        };
    };
    let names: Vec<String> = zbus::blocking::fdo::DBusProxy::new(&conn)
        .and_then(|p| p.list_names().map_err(Into::into))
        .map(|names| names.into_iter().map(|n| n.to_string()).collect())
        .unwrap_or_default();
    let has = |n: &str| names.iter().any(|x| x == n);
    BusNames {
        mutter: has(REMOTE_DESKTOP) && has(SCREEN_CAST),
        portal: has(PORTAL),
        no_bus: false,
    }
}

/// The monitors a session would record, without starting one.
pub fn list_displays() -> Result<Vec<Display>, MutterError> {
    let conn = Connection::session().ctx("connecting to the session bus")?;
    let (physical, logical) = current_state(&conn)?;
    Ok(to_displays(&monitors::plan(&physical, &logical)))
}

fn to_displays(planned: &[PlannedDisplay]) -> Vec<Display> {
    planned
        .iter()
        .enumerate()
        .map(|(index, d)| Display {
            index,
            width: d.width,
            height: d.height,
            geometry: d.geometry,
            name: d.connector.clone(),
        })
        .collect()
}

/// One monitor's screen-cast stream.
#[derive(Debug, Clone)]
pub struct MutterStream {
    pub connector: String,
    /// The stream's object path: pointer positions are relative to it.
    pub path: String,
    /// Its PipeWire node.
    pub node_id: u32,
}

/// A started remote-desktop session (see the module doc).
pub struct MutterSession {
    session: Proxy<'static>,
    /// Mutter said it closed the session (its `Closed` signal).
    closed: Arc<AtomicBool>,
    streams: Vec<MutterStream>,
    planned: Vec<PlannedDisplay>,
}

/// `DisplayConfig.GetCurrentState`'s reply, as zbus reads it: a monitor's
/// (connector, vendor, product, serial).
pub type Spec = (String, String, String, String);
/// A mode: (id, width, height, refresh, preferred scale, supported scales, properties).
pub type Mode = (String, i32, i32, f64, f64, Vec<f64>, HashMap<String, OwnedValue>);
pub type Monitor = (Spec, Vec<Mode>, HashMap<String, OwnedValue>);
/// A logical monitor: (x, y, scale, transform, primary, monitors, properties).
pub type Logical = (i32, i32, f64, u32, bool, Vec<Spec>, HashMap<String, OwnedValue>);
/// (serial, monitors, logical monitors, properties).
pub type State = (u32, Vec<Monitor>, Vec<Logical>, HashMap<String, OwnedValue>);

/// The monitors and the layout, from `DisplayConfig.GetCurrentState`.
fn current_state(conn: &Connection) -> Result<(Vec<PhysicalMonitor>, Vec<LogicalMonitor>), MutterError> {
    let config = Proxy::new(conn, DISPLAY_CONFIG, DISPLAY_CONFIG_PATH, DISPLAY_CONFIG).ctx("DisplayConfig")?;
    let (_serial, monitors, logical, _props): State = config
        .call("GetCurrentState", &())
        .ctx("DisplayConfig.GetCurrentState")?;
    let is_current = |props: &HashMap<String, OwnedValue>| {
        props
            .get("is-current")
            .and_then(|v| bool::try_from(v).ok())
            .unwrap_or(false)
    };
    let physical = monitors
        .into_iter()
        .filter_map(|(spec, modes, _)| {
            let (_, w, h, ..) = modes.into_iter().find(|m| is_current(&m.6))?;
            Some(PhysicalMonitor {
                connector: spec.0,
                width: w.max(0) as u32,
                height: h.max(0) as u32,
            })
        })
        .collect();
    let logical = logical
        .into_iter()
        .map(|(x, y, scale, _transform, primary, specs, _)| LogicalMonitor {
            x,
            y,
            scale,
            primary,
            connectors: specs.into_iter().map(|s| s.0).collect(),
        })
        .collect();
    Ok((physical, logical))
}

fn owned(path: OwnedObjectPath) -> zbus::zvariant::ObjectPath<'static> {
    path.into_inner()
}

impl MutterSession {
    /// Creates the session, records every monitor and starts it; returns
    /// once each stream has its PipeWire node.
    pub fn start() -> Result<MutterSession, MutterError> {
        let conn = Connection::session().ctx("connecting to the session bus")?;
        let (physical, logical) = current_state(&conn)?;
        let planned = monitors::plan(&physical, &logical);
        if planned.is_empty() {
            return Err(MutterError::NoMonitor);
        }

        let remote = Proxy::new(&conn, REMOTE_DESKTOP, REMOTE_DESKTOP_PATH, REMOTE_DESKTOP).ctx("RemoteDesktop")?;
        let path: OwnedObjectPath = remote.call("CreateSession", &()).ctx("RemoteDesktop.CreateSession")?;
        let session =
            Proxy::new(&conn, REMOTE_DESKTOP, owned(path), REMOTE_DESKTOP_SESSION).ctx("RemoteDesktop.Session")?;
        let session_id: String = session
            .get_property("SessionId")
            .ctx("RemoteDesktop.Session.SessionId")?;
        let closed = Arc::new(AtomicBool::new(false));
        let closed_signal = session.receive_signal("Closed").ctx("subscribing to Closed")?;
        let flag = closed.clone();
        thread::Builder::new()
            .name("holdfast-mutter-closed".into())
            .spawn(move || {
                if closed_signal.into_iter().next().is_some() {
                    flag.store(true, Ordering::SeqCst);
                }
            })
            .map_err(|e| MutterError::Call {
                what: "starting a thread",
                source: Box::new(zbus::Error::Failure(e.to_string())),
            })?;

        let cast = Proxy::new(&conn, SCREEN_CAST, SCREEN_CAST_PATH, SCREEN_CAST).ctx("ScreenCast")?;
        let options = HashMap::from([("remote-desktop-session-id", Value::from(session_id.as_str()))]);
        let path: OwnedObjectPath = cast
            .call("CreateSession", &(options,))
            .ctx("ScreenCast.CreateSession")?;
        let cast_session =
            Proxy::new(&conn, SCREEN_CAST, owned(path), SCREEN_CAST_SESSION).ctx("ScreenCast.Session")?;

        // Every monitor is recorded now, so switching displays later needs
        // no new D-Bus calls; a stream nobody reads costs Mutter nothing.
        let mut pending = Vec::new();
        for d in &planned {
            let options = HashMap::from([("cursor-mode", Value::from(CURSOR_EMBEDDED))]);
            let path: OwnedObjectPath = cast_session
                .call("RecordMonitor", &(d.connector.as_str(), options))
                .ctx("ScreenCast.Session.RecordMonitor")?;
            let stream_path = path.as_str().to_owned();
            let stream = Proxy::new(&conn, SCREEN_CAST, owned(path), SCREEN_CAST_STREAM).ctx("ScreenCast.Stream")?;
            let added = stream
                .receive_signal("PipeWireStreamAdded")
                .ctx("subscribing to PipeWireStreamAdded")?;
            let (tx, rx) = mpsc::channel();
            thread::Builder::new()
                .name("holdfast-mutter-stream".into())
                .spawn(move || {
                    for msg in added {
                        if let Ok(node) = msg.body().deserialize::<u32>() {
                            let _ = tx.send(node);
                            break;
                        }
                    }
                })
                .map_err(|e| MutterError::Call {
                    what: "starting a thread",
                    source: Box::new(zbus::Error::Failure(e.to_string())),
                })?;
            pending.push((d.connector.clone(), stream_path, rx));
        }

        session
            .call::<_, _, ()>("Start", &())
            .ctx("RemoteDesktop.Session.Start")?;
        let mut streams = Vec::new();
        for (connector, path, rx) in pending {
            let node_id = rx
                .recv_timeout(STREAM_TIMEOUT)
                .map_err(|_| MutterError::NoStream(connector.clone()))?;
            debug!(%connector, %path, node_id, "Mutter stream ready");
            streams.push(MutterStream {
                connector,
                path,
                node_id,
            });
        }
        info!(
            session = %session_id,
            monitors = ?planned.iter().map(|d| (&d.connector, d.width, d.height)).collect::<Vec<_>>(),
            "GNOME remote desktop session started (no dialog on this path)"
        );
        Ok(MutterSession {
            session,
            closed,
            streams,
            planned,
        })
    }

    /// The stream of display `index`.
    pub fn stream(&self, index: usize) -> Option<&MutterStream> {
        self.streams.get(index)
    }

    pub fn displays(&self) -> Vec<Display> {
        to_displays(&self.planned)
    }

    /// Mutter closed the session (the monitors changed, or it is going away).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The remote-desktop session object (its clipboard).
    pub(crate) fn session_proxy(&self) -> &Proxy<'static> {
        &self.session
    }

    /// Calls a method of the remote-desktop session (input events).
    pub(crate) fn notify<B>(&self, method: &'static str, body: &B) -> Result<(), zbus::Error>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.session.call_method(method, body).map(drop)
    }
}

impl Drop for MutterSession {
    fn drop(&mut self) {
        // Closing the connection would stop it too; this says so at once.
        let _ = self.session.call_method("Stop", &());
    }
}
