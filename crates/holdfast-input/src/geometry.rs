//! Where a viewer's pointer lands. Viewers send coordinates normalised to the
//! shared display (0..=1 on each axis), so any canvas size works; the host
//! maps them onto that display's rectangle in the virtual desktop, which is
//! not at the origin when several monitors are side by side.

/// One display's rectangle in virtual-desktop pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplayGeometry {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

impl DisplayGeometry {
    pub fn new(x: i32, y: i32, width: u32, height: u32) -> Self {
        DisplayGeometry { x, y, width, height }
    }

    /// The pixel for normalised `(nx, ny)`: 0 is the first pixel, 1 the last,
    /// so the pointer can reach both edges and never leaves the display.
    pub fn to_screen(&self, nx: f32, ny: f32) -> (i32, i32) {
        let span = |n: f32, len: u32| -> i32 {
            let max = len.saturating_sub(1) as f64;
            (n.clamp(0.0, 1.0) as f64 * max).round() as i32
        };
        (self.x + span(nx, self.width), self.y + span(ny, self.height))
    }

    /// Geometry of display `index` as the capturer numbers them (0 is the
    /// primary display), from the X server's monitor layout.
    #[cfg(target_os = "linux")]
    pub fn of_display(index: usize) -> Option<DisplayGeometry> {
        use std::rc::Rc;
        let server = Rc::new(scrap::x11::Server::default().ok()?);
        let displays: Vec<_> = scrap::x11::Server::displays(server).collect();
        // Mirror `ScreenSource::open`: 0 means the default display.
        let d = if index == 0 {
            displays.iter().find(|d| d.is_default()).or(displays.first())?
        } else {
            displays.get(index)?
        };
        let r = d.rect();
        Some(DisplayGeometry::new(r.x as i32, r.y as i32, r.w as u32, r.h as u32))
    }

    /// Elsewhere the injector's main-display size is used (origin 0, 0).
    #[cfg(not(target_os = "linux"))]
    pub fn of_display(_index: usize) -> Option<DisplayGeometry> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corners_and_centre_of_a_single_display() {
        let g = DisplayGeometry::new(0, 0, 1920, 1080);
        assert_eq!(g.to_screen(0.0, 0.0), (0, 0));
        assert_eq!(g.to_screen(1.0, 1.0), (1919, 1079));
        assert_eq!(g.to_screen(0.5, 0.5), (960, 540));
    }

    #[test]
    fn a_second_monitor_is_offset() {
        // A 1280x1024 monitor to the right of a 1920x1080 one.
        let g = DisplayGeometry::new(1920, 0, 1280, 1024);
        assert_eq!(g.to_screen(0.0, 0.0), (1920, 0));
        assert_eq!(g.to_screen(1.0, 1.0), (1920 + 1279, 1023));
        // One to the left has a negative origin.
        let g = DisplayGeometry::new(-1280, 56, 1280, 1024);
        assert_eq!(g.to_screen(0.0, 0.0), (-1280, 56));
    }

    #[test]
    fn any_normalised_point_maps_within_one_pixel_of_exact() {
        let g = DisplayGeometry::new(100, 200, 1366, 768);
        for i in 0..=1000 {
            let n = i as f32 / 1000.0;
            let (x, y) = g.to_screen(n, 1.0 - n);
            assert!((x - 100) as f32 >= 0.0 && x < 100 + 1366);
            assert!(((x - 100) as f32 - n * 1365.0).abs() <= 0.5 + 1e-3);
            assert!(((y - 200) as f32 - (1.0 - n) * 767.0).abs() <= 0.5 + 1e-3);
        }
    }
}
