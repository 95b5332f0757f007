// The Holdfast desktop app. All logic lives in the crates; see lib.rs.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    holdfast_app::run();
}
