//! facegate-vision: see ../../shared/DESIGN.md (work in progress).
