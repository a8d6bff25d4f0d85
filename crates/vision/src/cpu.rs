//! Which CPU a figure was measured on: its model name and the instruction
//! set extensions the kernels (ONNX Runtime's MLAS, facegate's own) use.
//! Benchmarks print it with every figure, since speed differs by vendor
//! (subnormal handling) and by ISA (AVX2 / AVX-512 / VNNI / AMX paths).

/// The CPU's model name and the ISA features that matter for speed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CpuInfo {
    /// e.g. "AMD EPYC 9B14" or "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz".
    pub model: String,
    /// Logical CPUs this process may run on.
    pub logical_cpus: usize,
    /// The features present, of: sse4_2, avx, fma, avx2, avx512f, avx512bw,
    /// avx512_vnni, avx_vnni, avx512_bf16, amx_tile, amx_int8, amx_bf16.
    pub features: Vec<&'static str>,
}

const FEATURES: [&str; 12] = [
    "sse4_2",
    "avx",
    "fma",
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
];

impl CpuInfo {
    /// Reads `/proc/cpuinfo` (Linux); elsewhere the model is "unknown" and the
    /// features come from the CPUID checks the standard library has.
    pub fn detect() -> CpuInfo {
        let logical_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let model = field("model name").unwrap_or_else(|| "unknown".into());
        let features = match field("flags") {
            Some(flags) => {
                let have: std::collections::HashSet<&str> = flags.split_whitespace().collect();
                FEATURES
                    .into_iter()
                    .filter(|f| have.contains(f.replace('_', "").as_str()) || have.contains(f))
                    .collect()
            }
            None => Self::from_cpuid(),
        };
        CpuInfo {
            model,
            logical_cpus,
            features,
        }
    }

    #[allow(unreachable_code)]
    fn from_cpuid() -> Vec<&'static str> {
        #[cfg(target_arch = "x86_64")]
        {
            let mut v = vec![];
            macro_rules! check {
                ($($f:tt => $name:expr),*) => {
                    $(if std::arch::is_x86_feature_detected!($f) { v.push($name); })*
                };
            }
            check!("sse4.2" => "sse4_2", "avx" => "avx", "fma" => "fma", "avx2" => "avx2",
                   "avx512f" => "avx512f", "avx512bw" => "avx512bw",
                   "avx512vnni" => "avx512_vnni");
            return v;
        }
        vec![]
    }

    /// Whether the CPU is Intel's (its cores handle subnormal floats in microcode).
    pub fn is_intel(&self) -> bool {
        self.model.contains("Intel")
    }
}

impl std::fmt::Display for CpuInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CPU: {} ({} logical CPUs; {})",
            self.model,
            self.logical_cpus,
            if self.features.is_empty() {
                "no SIMD extensions detected".to_string()
            } else {
                self.features.join(" ")
            }
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_a_model_and_the_baseline_isa() {
        let c = super::CpuInfo::detect();
        println!("{c}");
        assert!(!c.model.is_empty());
        #[cfg(target_arch = "x86_64")]
        assert!(
            c.features.contains(&"sse4_2"),
            "every x86-64 server has SSE4.2: {c}"
        );
    }
}
