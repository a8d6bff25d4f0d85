//! Raw kernel throughput (no gallery, no top-k): `cargo run --release -p facegate-gallery
//! --example kernel_speed [rows]`. int8 rows (512 B) on one thread, and the high nibble
//! plane (256 B per row, what the gallery's exact scan streams) on one and two threads.
use facegate_gallery::kernels::{self, KernelKind};
use rayon::prelude::*;
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
    let time = |f: &mut dyn FnMut()| {
        f();
        let reps = 10;
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        t.elapsed().as_secs_f64() / reps as f64
    };
    for kind in [KernelKind::Avx2, KernelKind::Scalar] {
        let s = time(&mut || {
            for (c, o) in out.chunks_mut(2048).enumerate() {
                kernels::dots_i8(kind, &q, &db[c * 2048 * dim..], dim, o);
            }
        });
        println!(
            "int8 {kind:?}, 1 thread: {:.3} ms per scan of {rows} rows, {:.1} GB/s",
            s * 1e3,
            (rows * dim) as f64 / s / 1e9
        );
    }
    let nib: Vec<u8> = db[..rows * dim / 2].iter().map(|&b| b as u8).collect();
    for kind in [KernelKind::Avx512Vnni, KernelKind::Avx2] {
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let s = time(&mut || {
                pool.install(|| {
                    out.par_chunks_mut(2048).enumerate().for_each(|(c, o)| {
                        kernels::dots_nib(kind, &q, &nib[c * 2048 * dim / 2..], dim, o)
                    })
                })
            });
            println!(
                "nibble plane {kind:?}, {threads} threads: {:.3} ms per scan of {rows} rows, {:.1} GB/s",
                s * 1e3,
                (rows * dim / 2) as f64 / s / 1e9
            );
        }
    }
}
