//! A Wayland-native test window: fullscreen on one output, it draws four
//! known colours (one quadrant each; `fill RRGGBB` on stdin repaints the
//! top-left one) and prints, as JSON lines on stdout, what it is told by the
//! compositor: its size, each pointer position (surface-local, which is the
//! output's pixels), buttons, and keys with the text they typed.
//!
//! It is how a test checks, from inside a Wayland session, what a viewer's
//! pixels and input did: no XWayland is involved.
//!
//! `animate MS` redraws every MS milliseconds with a white band moving
//! across the bottom half (a busy screen, for the benchmarks); `animate 0`
//! stops it.
//!
//! Usage: holdfast-wayland-pattern [--output NAME] [--fill RRGGBB]

use std::io::{BufRead, Write};
use std::time::Duration;

use holdfast_testkit::wayland_pattern::{self, packed};
use serde_json::json;
use smithay_client_toolkit::compositor::{CompositorHandler, CompositorState};
use smithay_client_toolkit::output::{OutputHandler, OutputState};
use smithay_client_toolkit::reexports::calloop::channel::{self as calloop_channel, Event as ChannelEvent};
use smithay_client_toolkit::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay_client_toolkit::reexports::calloop::{EventLoop, LoopHandle, RegistrationToken};
use smithay_client_toolkit::reexports::calloop_wayland_source::WaylandSource;
use smithay_client_toolkit::registry::{ProvidesRegistryState, RegistryState};
use smithay_client_toolkit::seat::keyboard::{KeyEvent, KeyboardHandler, Keysym, Modifiers, RawModifiers};
use smithay_client_toolkit::seat::pointer::{PointerEvent, PointerEventKind, PointerHandler};
use smithay_client_toolkit::seat::{Capability, SeatHandler, SeatState};
use smithay_client_toolkit::shell::xdg::window::{Window, WindowConfigure, WindowDecorations, WindowHandler};
use smithay_client_toolkit::shell::xdg::XdgShell;
use smithay_client_toolkit::shell::WaylandSurface;
use smithay_client_toolkit::shm::slot::SlotPool;
use smithay_client_toolkit::shm::{Shm, ShmHandler};
use smithay_client_toolkit::{delegate_registry, registry_handlers};
use wayland_client::globals::registry_queue_init;
use wayland_client::protocol::{wl_keyboard, wl_output, wl_pointer, wl_seat, wl_shm, wl_surface};
use wayland_client::{Connection, QueueHandle};

/// The quadrants' colours other than the top-left one (RGB).
const TOP_RIGHT: u32 = packed(wayland_pattern::TOP_RIGHT);
const BOTTOM_LEFT: u32 = packed(wayland_pattern::BOTTOM_LEFT);
const BOTTOM_RIGHT: u32 = packed(wayland_pattern::BOTTOM_RIGHT);
const DEFAULT_FILL: u32 = packed(wayland_pattern::FILL);
/// The moving band's width and step per frame, in pixels.
const BAND_WIDTH: u32 = 64;
const BAND_STEP: u32 = 24;

fn emit(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

struct Pattern {
    registry: RegistryState,
    seats: SeatState,
    outputs: OutputState,
    shm: Shm,
    pool: SlotPool,
    window: Window,
    want_output: Option<String>,
    fullscreened: bool,
    size: (u32, u32),
    configured: bool,
    fill: u32,
    /// Where the moving band is, and the timer that moves it.
    band: u32,
    animation: Option<RegistrationToken>,
    handle: LoopHandle<'static, Pattern>,
    keyboard: Option<wl_keyboard::WlKeyboard>,
    pointer: Option<wl_pointer::WlPointer>,
    exit: bool,
}

impl Pattern {
    fn draw(&mut self) {
        let (w, h) = self.size;
        if !self.configured || w == 0 || h == 0 {
            return;
        }
        let stride = w as i32 * 4;
        let Ok((buffer, canvas)) = self
            .pool
            .create_buffer(w as i32, h as i32, stride, wl_shm::Format::Xrgb8888)
        else {
            emit(json!({"event": "error", "what": "cannot allocate a buffer"}));
            return;
        };
        let (hw, hh) = (w / 2, h / 2);
        let band = self.animation.map(|_| (self.band % w, BAND_WIDTH));
        for (y, row) in canvas.chunks_exact_mut(stride as usize).enumerate() {
            for (x, px) in row.chunks_exact_mut(4).enumerate() {
                let in_band = band.is_some_and(|(at, width)| y as u32 >= hh && (x as u32).wrapping_sub(at) < width);
                let c = match (x as u32 >= hw, y as u32 >= hh) {
                    _ if in_band => 0xffffff,
                    (false, false) => self.fill,
                    (true, false) => TOP_RIGHT,
                    (false, true) => BOTTOM_LEFT,
                    (true, true) => BOTTOM_RIGHT,
                };
                px.copy_from_slice(&(0xff00_0000 | c).to_le_bytes());
            }
        }
        let surface = self.window.wl_surface();
        surface.damage_buffer(0, 0, w as i32, h as i32);
        if buffer.attach_to(surface).is_err() {
            return;
        }
        self.window.commit();
        if self.animation.is_none() {
            emit(json!({"event": "drawn", "fill": format!("{:06x}", self.fill), "width": w, "height": h}));
        }
    }

    fn animate(&mut self, every_ms: u64) {
        if let Some(t) = self.animation.take() {
            self.handle.remove(t);
        }
        if every_ms > 0 {
            let every = Duration::from_millis(every_ms);
            let token = self
                .handle
                .insert_source(Timer::from_duration(every), move |_, _, state: &mut Pattern| {
                    state.band = state.band.wrapping_add(BAND_STEP);
                    state.draw();
                    TimeoutAction::ToDuration(every)
                });
            self.animation = token.ok();
        }
        self.draw();
    }

    fn maybe_fullscreen(&mut self) {
        if self.fullscreened {
            return;
        }
        let target = self
            .outputs
            .outputs()
            .find(|o| match (&self.want_output, self.outputs.info(o)) {
                (None, _) => true,
                (Some(want), Some(info)) => info.name.as_deref() == Some(want.as_str()),
                _ => false,
            });
        if let Some(output) = target {
            let name = self.outputs.info(&output).and_then(|i| i.name);
            self.window.set_fullscreen(Some(&output));
            self.window.commit();
            self.fullscreened = true;
            emit(json!({"event": "fullscreen", "output": name}));
        }
    }
}

impl CompositorHandler for Pattern {
    fn scale_factor_changed(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &wl_surface::WlSurface, f: i32) {
        emit(json!({"event": "scale", "factor": f}));
    }
    fn transform_changed(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_surface::WlSurface,
        _: wl_output::Transform,
    ) {
    }
    fn frame(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &wl_surface::WlSurface, _: u32) {}
    fn surface_enter(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_surface::WlSurface,
        o: &wl_output::WlOutput,
    ) {
        let name = self.outputs.info(o).and_then(|i| i.name);
        emit(json!({"event": "entered", "output": name}));
    }
    fn surface_leave(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_surface::WlSurface,
        _: &wl_output::WlOutput,
    ) {
    }
}

impl OutputHandler for Pattern {
    fn output_state(&mut self) -> &mut OutputState {
        &mut self.outputs
    }
    fn new_output(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_output::WlOutput) {
        self.maybe_fullscreen();
    }
    fn update_output(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_output::WlOutput) {
        self.maybe_fullscreen();
    }
    fn output_destroyed(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_output::WlOutput) {}
}

impl WindowHandler for Pattern {
    fn request_close(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &Window) {
        self.exit = true;
    }
    fn configure(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &Window, c: WindowConfigure, _: u32) {
        let size = (
            c.new_size.0.map_or(640, |v| v.get()),
            c.new_size.1.map_or(480, |v| v.get()),
        );
        let changed = size != self.size || !self.configured;
        self.size = size;
        self.configured = true;
        emit(json!({"event": "configured", "width": size.0, "height": size.1, "fullscreen": c.is_fullscreen()}));
        if changed {
            self.draw();
        }
    }
}

impl SeatHandler for Pattern {
    fn seat_state(&mut self) -> &mut SeatState {
        &mut self.seats
    }
    fn new_seat(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_seat::WlSeat) {}
    fn new_capability(&mut self, _: &Connection, qh: &QueueHandle<Self>, seat: wl_seat::WlSeat, cap: Capability) {
        if cap == Capability::Keyboard && self.keyboard.is_none() {
            self.keyboard = self.seats.get_keyboard(qh, &seat, None).ok();
            emit(json!({"event": "seat", "capability": "keyboard"}));
        }
        if cap == Capability::Pointer && self.pointer.is_none() {
            self.pointer = self.seats.get_pointer(qh, &seat).ok();
            emit(json!({"event": "seat", "capability": "pointer"}));
        }
    }
    // A remote-desktop session's devices go when it ends (Mutter ends it
    // when the monitors change): let go, so the next session's are taken up.
    fn remove_capability(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_seat::WlSeat, cap: Capability) {
        if cap == Capability::Keyboard {
            if let Some(k) = self.keyboard.take() {
                k.release();
                emit(json!({"event": "seat-lost", "capability": "keyboard"}));
            }
        }
        if cap == Capability::Pointer {
            if let Some(p) = self.pointer.take() {
                p.release();
                emit(json!({"event": "seat-lost", "capability": "pointer"}));
            }
        }
    }
    fn remove_seat(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_seat::WlSeat) {}
}

impl KeyboardHandler for Pattern {
    fn enter(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_keyboard::WlKeyboard,
        _: &wl_surface::WlSurface,
        _: u32,
        _: &[u32],
        _: &[Keysym],
    ) {
        emit(json!({"event": "focus"}));
    }
    fn leave(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_keyboard::WlKeyboard,
        _: &wl_surface::WlSurface,
        _: u32,
    ) {
        emit(json!({"event": "unfocus"}));
    }
    fn press_key(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &wl_keyboard::WlKeyboard, _: u32, e: KeyEvent) {
        emit(json!({"event": "key", "pressed": true, "keysym": e.keysym.raw(), "utf8": e.utf8}));
    }
    fn repeat_key(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &wl_keyboard::WlKeyboard, _: u32, _: KeyEvent) {}
    fn release_key(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &wl_keyboard::WlKeyboard, _: u32, e: KeyEvent) {
        emit(json!({"event": "key", "pressed": false, "keysym": e.keysym.raw()}));
    }
    fn update_modifiers(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_keyboard::WlKeyboard,
        _: u32,
        _: Modifiers,
        _: RawModifiers,
        _: u32,
    ) {
    }
}

impl PointerHandler for Pattern {
    fn pointer_frame(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_pointer::WlPointer,
        events: &[PointerEvent],
    ) {
        for e in events {
            let (x, y) = e.position;
            match e.kind {
                PointerEventKind::Enter { .. } | PointerEventKind::Motion { .. } => {
                    emit(json!({"event": "pointer", "x": x, "y": y}))
                }
                PointerEventKind::Press { button, .. } => {
                    emit(json!({"event": "button", "button": button, "pressed": true, "x": x, "y": y}))
                }
                PointerEventKind::Release { button, .. } => {
                    emit(json!({"event": "button", "button": button, "pressed": false, "x": x, "y": y}))
                }
                PointerEventKind::Axis {
                    vertical, horizontal, ..
                } => emit(json!({"event": "scroll", "vertical": vertical.discrete, "horizontal": horizontal.discrete})),
                PointerEventKind::Leave { .. } => emit(json!({"event": "pointer-left"})),
            }
        }
    }
}

impl ShmHandler for Pattern {
    fn shm_state(&mut self) -> &mut Shm {
        &mut self.shm
    }
}

impl ProvidesRegistryState for Pattern {
    fn registry(&mut self) -> &mut RegistryState {
        &mut self.registry
    }
    registry_handlers![OutputState, SeatState];
}

delegate_registry!(Pattern);
smithay_client_toolkit::delegate_dispatch2!(Pattern);

fn parse_rgb(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim().trim_start_matches('#'), 16)
        .ok()
        .filter(|v| *v <= 0xff_ffff)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut want_output, mut fill) = (None, DEFAULT_FILL);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--output" => want_output = args.next(),
            "--fill" => fill = args.next().as_deref().and_then(parse_rgb).expect("--fill RRGGBB"),
            other => panic!("unknown argument {other}"),
        }
    }
    let conn = Connection::connect_to_env().expect("no Wayland compositor (WAYLAND_DISPLAY)");
    let (globals, queue) = registry_queue_init(&conn).expect("registry");
    let qh = queue.handle();
    let mut event_loop: EventLoop<Pattern> = EventLoop::try_new().expect("event loop");
    WaylandSource::new(conn.clone(), queue)
        .insert(event_loop.handle())
        .expect("wayland source");

    let compositor = CompositorState::bind(&globals, &qh).expect("wl_compositor");
    let xdg = XdgShell::bind(&globals, &qh).expect("xdg_wm_base");
    let shm = Shm::bind(&globals, &qh).expect("wl_shm");
    let window = xdg.create_window(compositor.create_surface(&qh), WindowDecorations::None, &qh);
    window.set_title("Holdfast Wayland pattern");
    window.set_app_id("app.holdfast.WaylandPattern");
    window.commit();

    // Commands from the test, one per line: `fill RRGGBB`, `quit`.
    let (tx, rx) = calloop_channel::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
        let _ = tx.send("quit".into());
    });
    event_loop
        .handle()
        .insert_source(rx, |event, _, state: &mut Pattern| {
            let ChannelEvent::Msg(line) = event else { return };
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("fill"), Some(rgb)) if parse_rgb(rgb).is_some() => {
                    state.fill = parse_rgb(rgb).unwrap_or(DEFAULT_FILL);
                    state.draw();
                }
                (Some("animate"), Some(ms)) if ms.parse::<u64>().is_ok() => state.animate(ms.parse().unwrap_or(0)),
                (Some("quit"), _) => state.exit = true,
                _ => emit(json!({"event": "error", "what": format!("unknown command {line:?}")})),
            }
        })
        .expect("stdin source");

    let pool = SlotPool::new(1920 * 1080 * 4, &shm).expect("shm pool");
    let mut state = Pattern {
        registry: RegistryState::new(&globals),
        seats: SeatState::new(&globals, &qh),
        outputs: OutputState::new(&globals, &qh),
        shm,
        pool,
        window,
        want_output,
        fullscreened: false,
        size: (0, 0),
        configured: false,
        fill,
        band: 0,
        animation: None,
        handle: event_loop.handle(),
        keyboard: None,
        pointer: None,
        exit: false,
    };
    while !state.exit {
        if event_loop.dispatch(Duration::from_millis(100), &mut state).is_err() {
            break;
        }
    }
}
