//! Mutter's monitor layout (`org.gnome.Mutter.DisplayConfig.GetCurrentState`)
//! turned into Holdfast's numbered displays: pure, so the ordering and the
//! pointer space are unit-tested.
//!
//! Display 0 is the primary monitor, as on X11; the rest follow left to
//! right, top to bottom. The injector's coordinate space puts the monitors'
//! streams side by side in that order: Mutter takes pointer positions
//! relative to a stream (in the stream's pixels, scale applied by the
//! compositor), so this space only has to tell the streams apart, and it
//! never overlaps, whatever the real layout or scales.

use holdfast_input::DisplayGeometry;

/// One connected monitor and its current mode, in pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct PhysicalMonitor {
    pub connector: String,
    pub width: u32,
    pub height: u32,
}

/// One monitor of the desktop's layout (mirrored monitors share one).
#[derive(Debug, Clone, PartialEq)]
pub struct LogicalMonitor {
    pub x: i32,
    pub y: i32,
    pub scale: f64,
    pub primary: bool,
    pub connectors: Vec<String>,
}

/// A monitor Holdfast can share, in display order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedDisplay {
    pub connector: String,
    pub width: u32,
    pub height: u32,
    pub scale: f64,
    /// Its rectangle in the injector's coordinate space.
    pub geometry: DisplayGeometry,
}

/// The displays to share: one per logical monitor that has a lit monitor
/// (the first, when mirrored), primary first.
pub fn plan(physical: &[PhysicalMonitor], logical: &[LogicalMonitor]) -> Vec<PlannedDisplay> {
    let mut order: Vec<&LogicalMonitor> = logical.iter().collect();
    order.sort_by_key(|l| (!l.primary, l.x, l.y));
    let mut next_x = 0i32;
    let mut out = Vec::new();
    for l in order {
        let Some(p) = l.connectors.iter().find_map(|c| {
            physical
                .iter()
                .find(|p| &p.connector == c && p.width > 0 && p.height > 0)
        }) else {
            continue;
        };
        out.push(PlannedDisplay {
            connector: p.connector.clone(),
            width: p.width,
            height: p.height,
            scale: l.scale,
            geometry: DisplayGeometry::new(next_x, 0, p.width, p.height),
        });
        next_x = next_x.saturating_add(p.width.min(i32::MAX as u32) as i32);
    }
    out
}

/// Which display's rectangle holds `(x, y)` of the injector's space, and
/// the point relative to it; a point outside every display goes to the
/// nearest edge of the closest one.
pub fn locate(displays: &[DisplayGeometry], x: i32, y: i32) -> Option<(usize, f64, f64)> {
    let distance = |g: &DisplayGeometry| {
        let dx = (g.x - x).max(0).max(x - (g.x + g.width as i32 - 1));
        let dy = (g.y - y).max(0).max(y - (g.y + g.height as i32 - 1));
        dx as i64 + dy as i64
    };
    let (i, g) = displays.iter().enumerate().min_by_key(|(_, g)| distance(g))?;
    let lx = (x - g.x).clamp(0, g.width.saturating_sub(1) as i32);
    let ly = (y - g.y).clamp(0, g.height.saturating_sub(1) as i32);
    Some((i, lx as f64, ly as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phys(c: &str, w: u32, h: u32) -> PhysicalMonitor {
        PhysicalMonitor {
            connector: c.into(),
            width: w,
            height: h,
        }
    }

    fn logical(x: i32, y: i32, primary: bool, c: &[&str]) -> LogicalMonitor {
        LogicalMonitor {
            x,
            y,
            scale: 1.0,
            primary,
            connectors: c.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_primary_monitor_is_display_zero_and_the_rest_follow_left_to_right() {
        // The layout the two-monitor test starts: Meta-0 1920x1080 primary,
        // Meta-1 1280x1024 to its right; here listed out of order and with
        // a third monitor to the left of the primary.
        let physical = [
            phys("Meta-1", 1280, 1024),
            phys("Meta-0", 1920, 1080),
            phys("HDMI-1", 1024, 768),
        ];
        let logical = [
            logical(1920, 0, false, &["Meta-1"]),
            logical(-1024, 0, false, &["HDMI-1"]),
            logical(0, 0, true, &["Meta-0"]),
        ];
        let d = plan(&physical, &logical);
        let names: Vec<_> = d.iter().map(|d| d.connector.as_str()).collect();
        assert_eq!(names, ["Meta-0", "HDMI-1", "Meta-1"]);
        assert_eq!(d[0].geometry, DisplayGeometry::new(0, 0, 1920, 1080));
        assert_eq!(d[1].geometry, DisplayGeometry::new(1920, 0, 1024, 768));
        assert_eq!(d[2].geometry, DisplayGeometry::new(2944, 0, 1280, 1024));
    }

    #[test]
    fn mirrored_and_unlit_monitors_are_not_separate_displays() {
        let physical = [phys("eDP-1", 2560, 1600), phys("DP-1", 1920, 1080), phys("DP-2", 0, 0)];
        let logical = [
            logical(0, 0, true, &["eDP-1", "DP-1"]),
            logical(2560, 0, false, &["DP-2"]),
        ];
        let d = plan(&physical, &logical);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].connector.as_str(), d[0].width), ("eDP-1", 2560));
    }

    #[test]
    fn a_point_lands_on_the_display_that_holds_it_relative_to_that_display() {
        let g = [
            DisplayGeometry::new(0, 0, 1920, 1080),
            DisplayGeometry::new(1920, 0, 1280, 1024),
        ];
        assert_eq!(locate(&g, 0, 0), Some((0, 0.0, 0.0)));
        assert_eq!(locate(&g, 1919, 1079), Some((0, 1919.0, 1079.0)));
        assert_eq!(locate(&g, 1920, 0), Some((1, 0.0, 0.0)));
        assert_eq!(locate(&g, 1920 + 320, 768), Some((1, 320.0, 768.0)));
        // Outside: clamped onto the nearest display.
        assert_eq!(locate(&g, 1920 + 5000, 2000), Some((1, 1279.0, 1023.0)));
        assert_eq!(locate(&g, -50, 500), Some((0, 0.0, 500.0)));
        assert_eq!(locate(&[], 1, 1), None);
    }
}
