//! facegate-policy: see ../../shared/DESIGN.md (work in progress).
