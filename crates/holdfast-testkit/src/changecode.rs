//! The change code `holdfast-busyscreen` draws in the top-left corner of
//! each page and viewers read back: 16 cells of [`CELL`] px, 12 bits of the
//! change's number then 4 check bits, white for 1 and black for 0. One
//! definition for the screen, the Rust probe viewer and (by substitution)
//! the browser watcher in [`crate::ratebench`].

/// Side of one cell, in screen pixels.
pub const CELL: u16 = 24;
/// Cells in a code.
pub const CELLS: u16 = 16;

/// The cells of change `n`: 12 bits of `n`, then 4 check bits.
pub fn bits(n: u32) -> [bool; CELLS as usize] {
    let n = n & 0xFFF;
    let v = n | (check(n) << 12);
    std::array::from_fn(|i| v >> i & 1 == 1)
}

fn check(n: u32) -> u32 {
    n.wrapping_mul(7).wrapping_add(3) & 0xF
}

/// Reads a code from a picture: `rgb_at(x, y)` in screen coordinates (the
/// caller maps them onto a picture coded smaller). None when a cell is
/// neither light nor dark (mid-transition, blurred) or the check fails.
pub fn read(rgb_at: impl Fn(u32, u32) -> [u8; 3]) -> Option<u32> {
    let mut v = 0u32;
    for i in 0..CELLS as u32 {
        let [r, g, b] = rgb_at(i * CELL as u32 + CELL as u32 / 2, CELL as u32 / 2);
        let y = (r as u32 + g as u32 + b as u32) / 3;
        if y > 160 {
            v |= 1 << i;
        } else if y > 96 {
            return None;
        }
    }
    let (n, c) = (v & 0xFFF, v >> 12);
    (c == check(n) && n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_differ_in_their_check_bits_from_neighbours() {
        for n in 1..4095u32 {
            let (a, b) = (bits(n), bits(n + 1));
            assert_ne!(a[12..], b[12..], "{n}");
        }
    }

    #[test]
    fn a_drawn_code_reads_back_and_a_damaged_one_does_not() {
        for n in [1u32, 2, 77, 4095] {
            let cells = bits(n);
            let at = |x: u32, _y: u32| {
                if cells[(x / CELL as u32) as usize] {
                    [250; 3]
                } else {
                    [5; 3]
                }
            };
            assert_eq!(read(at), Some(n));
            let grey = |x: u32, y: u32| if x / CELL as u32 == 3 { [128; 3] } else { at(x, y) };
            assert_eq!(read(grey), None, "a cell in between");
            let flipped = |x: u32, y: u32| {
                if x / CELL as u32 == 0 {
                    [255 - at(x, y)[0]; 3]
                } else {
                    at(x, y)
                }
            };
            assert_eq!(read(flipped), None, "one bit wrong fails the check");
        }
    }
}
