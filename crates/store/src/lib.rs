//! facegate-store: see ../../shared/DESIGN.md (work in progress).
