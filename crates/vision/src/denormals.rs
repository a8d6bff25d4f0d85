//! Flush-to-zero and denormals-are-zero for the threads that run models.
//!
//! Subnormal floats (|x| < 1.18e-38) cost about 100× a normal multiply on
//! Intel x86 cores (a microcode assist per operation); AMD cores take them in
//! stride. `fr_feature`'s activations go subnormal, so on an Intel Xeon its
//! convolutions ran 10× slower than on an AMD EPYC until the thread that runs
//! the session set MXCSR's FTZ (bit 15: results that would be subnormal are
//! written as 0) and DAZ (bit 6: subnormal inputs are read as 0).
//!
//! Where the bits are set:
//! - every model call ([`crate::Engine`]'s stages all go through one
//!   function, which sets them on the calling thread first: two instructions);
//! - ONNX Runtime's own intra-op threads, through its documented session
//!   option `session.set_denormal_as_zero`;
//! - threads a host creates for model work (tokio's blocking pool, rayon's
//!   workers): call [`set_flush_denormals`] from `on_thread_start` /
//!   `start_handler`, so that any float work there behaves the same.
//!
//! The bits are per thread and stay set; code that needs IEEE subnormals on
//! such a thread must clear them itself. Nothing in facegate does.

/// MXCSR flush-to-zero.
pub const FTZ: u32 = 1 << 15;
/// MXCSR denormals-are-zero.
pub const DAZ: u32 = 1 << 6;

/// The calling thread's MXCSR (0 on targets without one).
pub fn mxcsr() -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut v: u32 = 0;
        // SAFETY: stmxcsr stores the 32-bit control register to the given address.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack, preserves_flags));
        }
        v
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

#[cfg(target_arch = "x86_64")]
fn set_mxcsr(v: u32) {
    // SAFETY: ldmxcsr loads the control register; only the FTZ/DAZ bits are
    // changed by the callers, which enable no exception and change no rounding.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, readonly, preserves_flags));
    }
}

/// Sets flush-to-zero and denormals-are-zero on the calling thread (x86-64;
/// a no-op elsewhere). Cheap: call it at the top of any function that runs a
/// model, and from thread-start hooks (`tokio::runtime::Builder::on_thread_start`,
/// `rayon::ThreadPoolBuilder::start_handler`).
#[inline]
pub fn set_flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    {
        let v = mxcsr();
        if v & (FTZ | DAZ) != FTZ | DAZ {
            set_mxcsr(v | FTZ | DAZ);
        }
    }
}

/// Whether the calling thread flushes subnormals (always `true` off x86-64,
/// where this module does nothing).
pub fn flushing_denormals() -> bool {
    !cfg!(target_arch = "x86_64") || mxcsr() & (FTZ | DAZ) == FTZ | DAZ
}

/// Clears FTZ and DAZ on the calling thread: IEEE subnormals (for the tests
/// and the benchmark that compare against the unflushed path).
pub(crate) fn keep_denormals() {
    #[cfg(target_arch = "x86_64")]
    set_mxcsr(mxcsr() & !(FTZ | DAZ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_set_and_cleared_on_this_thread() {
        std::thread::spawn(|| {
            keep_denormals();
            let tiny = std::hint::black_box(f32::MIN_POSITIVE);
            assert!(
                std::hint::black_box(tiny / 4.0) > 0.0,
                "IEEE: a subnormal result"
            );
            set_flush_denormals();
            assert!(flushing_denormals());
            assert_eq!(std::hint::black_box(tiny) / 4.0, 0.0, "FTZ: flushed to 0");
            keep_denormals();
            assert!(!flushing_denormals() || !cfg!(target_arch = "x86_64"));
        })
        .join()
        .unwrap();
    }
}
