//! Raw kernel throughput on one thread (no gallery, no top-k): `cargo run --release
//! -p facegate-gallery --example kernel_speed [rows]`.
use facegate_gallery::kernels::{self, KernelKind};
use std::time::Instant;

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dim = 512;
    let db: Vec<i8> = (0..rows * dim)
        .map(|i| ((i * 7919) % 255) as i8 / 2)
        .collect();
    let q: Vec<i8> = (0..dim).map(|i| ((i * 31) % 255) as i8 / 2).collect();
    let mut out = vec![0i32; rows];
    for kind in [KernelKind::Avx2, KernelKind::Scalar] {
        let reps = 20;
        let t = Instant::now();
        for _ in 0..reps {
            for (c, o) in out.chunks_mut(2048).enumerate() {
                kernels::dots_i8(kind, &q, &db[c * 2048 * dim..], dim, o);
            }
        }
        let s = t.elapsed().as_secs_f64() / reps as f64;
        println!(
            "{kind:?}: {:.3} ms per scan of {rows} rows, {:.1} GB/s",
            s * 1e3,
            (rows * dim) as f64 / s / 1e9
        );
    }
}
