//! facegate-gallery: see ../../shared/DESIGN.md (work in progress).
