//! facegate-server: see ../../shared/DESIGN.md (work in progress).
