//! Per-stage cost of the host's media path at 1920x1080 on synthetic desktop
//! content that changes every frame: change detection, BGRA->I420
//! conversion, and H.264 encoding. Screen capture itself needs a display and
//! is measured by `holdfast-bench` under Xvfb.

use criterion::{criterion_group, criterion_main, Criterion};
use holdfast_media::change::ChangeDetector;
use holdfast_media::encode::{EncoderSettings, H264Encoder, Tuning};
use holdfast_media::scale::Downscaler;
use holdfast_media::synthetic::SyntheticSource;
use holdfast_media::{FrameSource, I420Image};

fn stages(c: &mut Criterion) {
    let mut src = SyntheticSource::new(1920, 1080);
    let mut g = c.benchmark_group("1080p");
    g.sample_size(30);

    g.bench_function("change_detect_xxh3", |b| {
        let f = src.grab().unwrap().unwrap();
        let (data, w, h, s) = (f.data.to_vec(), f.width, f.height, f.stride);
        b.iter(|| {
            ChangeDetector::hash(&holdfast_media::BgraFrame {
                data: &data,
                width: w,
                height: h,
                stride: s,
                serial: None,
            })
        })
    });

    g.bench_function("convert_bgra_to_i420", |b| {
        let f = src.grab().unwrap().unwrap();
        let (data, w, h, s) = (f.data.to_vec(), f.width, f.height, f.stride);
        let mut img = I420Image::default();
        b.iter(|| {
            img.convert_from(&holdfast_media::BgraFrame {
                data: &data,
                width: w,
                height: h,
                stride: s,
                serial: None,
            })
            .unwrap()
        })
    });

    // Scaling down for slow links (half and a third of each side), which
    // runs before conversion on every frame a scaled lane encodes.
    for (name, w, h) in [("half", 960, 540), ("third", 640, 360)] {
        g.bench_function(format!("downscale_to_{name}"), |b| {
            let f = src.grab().unwrap().unwrap();
            let (data, fw, fh, s) = (f.data.to_vec(), f.width, f.height, f.stride);
            let mut scaler = Downscaler::default();
            b.iter(|| {
                let frame = holdfast_media::BgraFrame {
                    data: &data,
                    width: fw,
                    height: fh,
                    stride: s,
                    serial: None,
                };
                scaler.resize(&frame, w, h).unwrap().width
            })
        });
    }

    // Pre-rendered frames, so only conversion and encoding are timed.
    let frames: Vec<Vec<u8>> = (0..60).map(|_| src.grab().unwrap().unwrap().data.to_vec()).collect();
    let tunings = [("screen", Tuning::Screen), ("motion", Tuning::Motion)];
    for ((name, tuning), slices) in tunings.into_iter().flat_map(|t| [(t, 1), (t, 2)]) {
        g.bench_function(format!("convert_and_encode_changing_{name}_{slices}_slices"), |b| {
            let mut enc = H264Encoder::new(EncoderSettings {
                tuning,
                slices,
                ..EncoderSettings::default()
            })
            .unwrap();
            let mut img = I420Image::default();
            let mut i = 0;
            b.iter(|| {
                let data = &frames[i % frames.len()];
                i += 1;
                img.convert_from(&holdfast_media::BgraFrame {
                    data,
                    width: 1920,
                    height: 1080,
                    stride: 1920 * 4,
                    serial: None,
                })
                .unwrap();
                enc.encode(&img).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
