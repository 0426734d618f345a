//! Loopback fakes and shared test support.
